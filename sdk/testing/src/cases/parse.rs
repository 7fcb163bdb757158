//! Reading case files: JSON text to a [`CaseFile`], refusing anything that would make a case
//! pass or fail for the wrong reason, with errors that name the file, the case and the field.

use std::path::Path;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Case, CaseFile, ExpectedVerdict};
use crate::Error;

/// The `expect.error` kind that matches any error the plugin reports itself, kept from before
/// the runtime told `invalid-config`, `unsupported` and `internal` apart.
pub(super) const ANY_REPORTED: &str = "plugin-error";

/// Reads and checks a case file. Errors name the file, the case and the offending field.
pub fn load_case_file(path: &Path) -> Result<CaseFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_case_file(path, &text)
}

/// Parses case-file text; `path` only names the file in errors.
pub fn parse_case_file(path: &Path, text: &str) -> Result<CaseFile, Error> {
    let fail = |case: &str, field: &str, reason: String| Error::CaseFile {
        path: path.to_owned(),
        case: case.to_owned(),
        field: field.to_owned(),
        reason,
    };
    // The file level is checked on a `Value`, the cases are then read from the text itself, so a
    // serde error inside a case carries its position, which `path_at` turns into a field path.
    let value: Value = serde_json::from_str(text).map_err(|e| fail("", "", e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(fail("", "", "expected a JSON object with `cases`".into()));
    };
    if let Some(field) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "config" | "cases"))
    {
        return Err(fail(
            "",
            field,
            format!("unknown field `{field}`, expected `config` or `cases`"),
        ));
    }
    let config = match object.get("config") {
        None => None,
        Some(raw) => config_text(raw).map_err(|e| fail("", "config", e.to_string()))?,
    };
    let raw_cases = match object.get("cases") {
        Some(Value::Array(cases)) => cases,
        Some(_) => return Err(fail("", "cases", "expected an array of cases".into())),
        None => return Err(fail("", "", "missing field `cases`".into())),
    };
    if raw_cases.is_empty() {
        return Err(fail(
            "",
            "cases",
            "no cases: a file that tests nothing would pass".into(),
        ));
    }
    let label = |index: usize| match raw_cases.get(index).and_then(|c| c.get("name")) {
        Some(Value::String(name)) => format!("#{} {name:?}", index + 1),
        _ => format!("#{}", index + 1),
    };

    /// The file with its cases typed; `config` was read above.
    #[derive(Deserialize)]
    struct Typed {
        cases: Vec<Case>,
    }
    let cases = match serde_json::from_str::<Typed>(text) {
        Ok(typed) => typed.cases,
        Err(e) => {
            let at = format!(" at line {} column {}", e.line(), e.column());
            let text_error = e.to_string();
            let message = text_error.strip_suffix(&at).unwrap_or(&text_error);
            let field = path_at(text, offset_of(text, e.line(), e.column()));
            return Err(match field.as_slice() {
                [Segment::Key(cases), Segment::Index(index), rest @ ..] if cases == "cases" => {
                    fail(&label(*index), &render(rest), message.to_owned())
                }
                other => fail("", &render(other), message.to_owned()),
            });
        }
    };
    for (index, case) in cases.iter().enumerate() {
        validate(case).map_err(|(field, reason)| fail(&label(index), field, reason))?;
    }
    Ok(CaseFile { config, cases })
}

/// Deserializes a `config` field: a JSON object becomes its JSON text (what the daemon hands a
/// plugin for its `[plugins.config]` table); a string (legacy) is kept as is.
pub(super) fn config_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let kind = match Value::deserialize(deserializer)? {
        Value::Null => return Ok(None),
        Value::String(text) => return Ok(Some(text)),
        object @ Value::Object(_) => return Ok(Some(object.to_string())),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
    };
    Err(serde::de::Error::custom(format!(
        "expected a JSON object (the plugin's `[plugins.config]` table) or, legacy, a string; got {kind}"
    )))
}

/// Expectations serde accepts but no call can meet, or that test nothing: `(field, why)`.
fn validate(case: &Case) -> Result<(), (&'static str, String)> {
    let e = &case.expect;
    match (&e.verdict, &e.error) {
        (Some(_), Some(_)) => {
            return Err((
                "expect",
                "has both `verdict` and `error`; a call either decides or fails".into(),
            ));
        }
        (None, None) => return Err(("expect", "needs `verdict` or `error`".into())),
        (None, Some(_)) if e.mutations.is_some() => {
            return Err((
                "expect.mutations",
                "needs a `verdict`: a failed call has no mutations".into(),
            ));
        }
        (Some(ExpectedVerdict::Allow), _) if e.reason_contains.is_some() => {
            return Err((
                "expect.reason-contains",
                "an allow has no reason; use it with `\"verdict\": \"deny\"` or `error`".into(),
            ));
        }
        _ => {}
    }
    if e.exact && e.mutations.is_none() {
        return Err(("expect.exact", "needs `mutations` to compare".into()));
    }
    if let Some(kind) = &e.error
        && kind != ANY_REPORTED
        && !bulkhead_runtime::Error::KINDS.contains(&kind.as_str())
    {
        return Err((
            "expect.error",
            format!(
                "unknown error kind `{kind}`; expected one of {}, or `{ANY_REPORTED}` for any error the plugin reports itself",
                bulkhead_runtime::Error::KINDS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `container.pod.name`, `expect.mutations[1]`; empty for the top level.
fn render(path: &[Segment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if text.is_empty() => text.push_str(key),
            Segment::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Segment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// The byte offset serde_json's `line`/`column` point at: the last byte it read (or, for an
/// error found by peeking, the byte it peeked at). Lines count from 1, columns are bytes.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column).saturating_sub(1)
}

/// The JSON path of the value being read at byte `end` of `text` (valid JSON): the keys and
/// indices of the containers open there, plus the key or element being read in the innermost.
/// serde_json reports an error just after the bad value, the unknown key, or at the `}` of an
/// object missing a field, so this is the path of the field at fault. Written here rather than
/// taking a path-tracking deserializer crate for this one message.
fn path_at(text: &str, end: usize) -> Vec<Segment> {
    enum Frame {
        Object { key: Option<String>, in_value: bool },
        Array { index: usize, started: bool },
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i <= end && i < bytes.len() {
        let byte = bytes[i];
        if let Some(Frame::Array { started, .. }) = stack.last_mut()
            && !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b',' | b']')
        {
            *started = true;
        }
        match byte {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    let raw = text.get(start..=i.min(bytes.len() - 1)).unwrap_or_default();
                    *key = Some(serde_json::from_str(raw).unwrap_or_else(|_| raw.to_string()));
                }
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array {
                index: 0,
                started: false,
            }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Array { index, started }) => {
                    *index += 1;
                    *started = false;
                }
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    stack
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Object { key, .. } => key.map(Segment::Key),
            Frame::Array { index, started } => started.then_some(Segment::Index(index)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::view::ContainerView;

    fn parse(text: &str) -> Result<CaseFile, Error> {
        parse_case_file(Path::new("cases.json"), text)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_case_parses() {
        let f = parse(r#"{"cases":[{"expect":{"verdict":"allow"}}]}"#).unwrap();
        assert_eq!(f.cases[0].container, ContainerView::default());
        assert_eq!(f.config, None);
        assert!(!f.cases[0].any_point && !f.cases[0].expect.exact);
    }

    #[test]
    fn config_objects_become_json_text_and_strings_stay() {
        let f = parse(
            r#"{"config": {"mode": "warn", "n": [1]}, "cases": [
                {"expect": {"verdict": "allow"}},
                {"config": {}, "expect": {"verdict": "allow"}},
                {"config": "legacy", "expect": {"verdict": "allow"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(f.config.as_deref(), Some(r#"{"mode":"warn","n":[1]}"#));
        assert_eq!(f.cases[0].config, None);
        assert_eq!(f.cases[1].config.as_deref(), Some("{}"));
        assert_eq!(f.cases[2].config.as_deref(), Some("legacy"));
        let err = error(r#"{"config": 3, "cases": [{"expect": {"verdict": "allow"}}]}"#);
        assert!(
            err.starts_with("cases.json: config: expected a JSON object"),
            "{err}"
        );
        let err = error(r#"{"cases": [{"config": [1], "expect": {"verdict": "allow"}}]}"#);
        assert!(
            err.starts_with("cases.json: case #1: config: expected a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_names_file_case_and_field_path() {
        let err = error(
            r#"{"cases":[{"name":"web","container":{"pod":{"nmae":"x"}},"expect":{"verdict":"allow"}}]}"#,
        );
        assert!(
            err.starts_with(
                "cases.json: case #1 \"web\": container.pod.nmae: unknown field `nmae`"
            ),
            "{err}"
        );
        let err = error(r#"{"cases":[{"expect":{"verdict":"allow","reason":"x"}}]}"#);
        assert!(
            err.starts_with("cases.json: case #1: expect.reason: unknown field `reason`"),
            "{err}"
        );
        let err = error(r#"{"casez":[]}"#);
        assert!(
            err.starts_with("cases.json: casez: unknown field `casez`"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let ok = r#"{"expect":{"verdict":"allow"}}"#;
        let err = error(&format!(
            r#"{{"cases":[{ok},{{"name":"n","container":{{"pod":{{"name":7}}}},"expect":{{"verdict":"allow"}}}}]}}"#
        ));
        assert!(
            err.starts_with(
                "cases.json: case #2 \"n\": container.pod.name: invalid type: integer `7`"
            ),
            "{err}"
        );
        let err = error(
            r#"{"cases":[{"container":{"mounts":[{"destination":"/a"},{"destination":false}]},"expect":{"verdict":"allow"}}]}"#,
        );
        assert!(
            err.starts_with("cases.json: case #1: container.mounts[1].destination: invalid type"),
            "{err}"
        );
        let err = error(
            r#"{"cases":[{"expect":{"verdict":"allow","mutations":["set-no-new-privileges",{"add-env":{"name":"A"}}]}}]}"#,
        );
        assert!(
            err.starts_with(
                "cases.json: case #1: expect.mutations[1].add-env: missing field `value`"
            ),
            "{err}"
        );
        let err =
            error(r#"{"cases":[{"container":{"event":"create"},"expect":{"verdict":"allow"}}]}"#);
        assert!(
            err.starts_with("cases.json: case #1: container.event: unknown variant `create`"),
            "{err}"
        );
        let err = error(r#"{"cases":[{"name":"x"}]}"#);
        assert!(
            err.starts_with("cases.json: case #1 \"x\": missing field `expect`"),
            "{err}"
        );
        let err = error(r#"{"cases": {}}"#);
        assert!(
            err.starts_with("cases.json: cases: expected an array"),
            "{err}"
        );
    }

    #[test]
    fn path_at_follows_keys_indices_and_closed_objects() {
        let text = r#"{"a": {"b\"c": [1, {"d": true}], "e": "x,y"}}"#;
        let path = |needle: &str| render(&path_at(text, text.find(needle).unwrap()));
        assert_eq!(path("1"), "a.b\"c[0]");
        assert_eq!(path("true"), "a.b\"c[1].d");
        // At the `}` that closes an object: the object itself.
        assert_eq!(path("}]"), "a.b\"c[1]");
        assert_eq!(path(r#""e""#), "a.e");
        assert_eq!(path("y"), "a.e");
        assert_eq!(offset_of("ab\ncd", 2, 2), 4);
    }

    #[test]
    fn empty_case_file_is_an_error() {
        let err = error(r#"{"cases": []}"#);
        assert!(err.contains("no cases"), "{err}");
        assert!(error(r#"{"config": {}}"#).contains("missing field `cases`"));
    }

    #[test]
    fn expectation_needs_exactly_one_of_verdict_and_error() {
        assert!(parse(r#"{"cases":[{"expect":{}}]}"#).is_err());
        assert!(parse(r#"{"cases":[{"expect":{"verdict":"deny","error":"trap"}}]}"#).is_err());
        assert!(parse(r#"{"cases":[{"expect":{"error":"timeout"}}]}"#).is_ok());
    }

    #[test]
    fn reason_contains_goes_with_an_error_but_not_with_allow() {
        assert!(
            parse(r#"{"cases":[{"expect":{"error":"invalid-config","reason-contains":"mode"}}]}"#)
                .is_ok()
        );
        let err = error(r#"{"cases":[{"expect":{"verdict":"allow","reason-contains":"x"}}]}"#);
        assert!(
            err.starts_with("cases.json: case #1: expect.reason-contains:"),
            "{err}"
        );
        let err = error(r#"{"cases":[{"expect":{"error":"trap","mutations":[]}}]}"#);
        assert!(err.contains("expect.mutations: needs a `verdict`"), "{err}");
    }

    #[test]
    fn error_kinds_are_checked_by_name() {
        for kind in [
            "plugin-error",
            "invalid-config",
            "unsupported",
            "internal",
            "timeout",
        ] {
            let text = format!(r#"{{"cases":[{{"expect":{{"error":"{kind}"}}}}]}}"#);
            assert!(parse(&text).is_ok(), "{kind}");
        }
        let err = error(r#"{"cases":[{"expect":{"error":"timout"}}]}"#);
        assert!(
            err.contains("expect.error: unknown error kind `timout`"),
            "{err}"
        );
    }

    #[test]
    fn exact_needs_mutations() {
        let err = error(r#"{"cases":[{"expect":{"verdict":"allow","exact":true}}]}"#);
        assert!(err.contains("expect.exact: needs `mutations`"), "{err}");
        assert!(
            parse(r#"{"cases":[{"expect":{"verdict":"allow","mutations":[],"exact":true}}]}"#)
                .is_ok()
        );
    }
}
