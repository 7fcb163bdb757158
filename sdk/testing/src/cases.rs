//! Case files: container views with the decision a plugin must reach, run offline.
//!
//! This is what `bulkhead plugin test <plugin.wasm> <cases...>` runs, and plugin authors can run
//! the same files from a Rust test with [`run_case_files`]. A case file is JSON:
//!
//! ```json
//! {
//!   "config": "optional operator config string for the plugin",
//!   "cases": [
//!     {
//!       "name": "latest tag is denied",
//!       "container": { "image": { "reference": "nginx:latest", "tag": "latest" } },
//!       "expect": { "verdict": "deny", "reason-contains": "latest" }
//!     },
//!     {
//!       "name": "pinned image is hardened",
//!       "container": { "image": { "tag": "1.27" } },
//!       "expect": { "verdict": "allow", "mutations": ["set-no-new-privileges"] }
//!     }
//!   ]
//! }
//! ```
//!
//! `container` is a [`ContainerView`] (every field optional). `expect` holds either a `verdict`
//! (`"allow"` or `"deny"`, optionally `reason-contains`, and `mutations` — the exact list, in
//! order, as JSON [`Mutation`]s) or an `error` kind the call must fail with (`timeout`, `trap`,
//! `memory-limit`, `invalid-output`, `plugin-error`, ...). Unknown fields anywhere are errors that
//! name the file, the case and the field.

use std::path::{Path, PathBuf};

use bulkhead_core::decision::{Decision, Mutation, Verdict};
use bulkhead_core::view::ContainerView;
use bulkhead_runtime::{PluginLimits, Runtime};
use serde::Deserialize;

use crate::Error;

/// One parsed case file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaseFile {
    /// The operator config string the plugin is loaded with for these cases.
    #[serde(default)]
    pub config: Option<String>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One container view and what the plugin must answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Case {
    /// Shown in the output; defaults to `#<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// The view passed to `check-container`.
    #[serde(default)]
    pub container: ContainerView,
    /// The expected outcome.
    pub expect: Expectation,
}

/// The expected outcome of a case.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expectation {
    /// Expected verdict.
    #[serde(default)]
    pub verdict: Option<ExpectedVerdict>,
    /// A substring the deny reason must contain.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// The exact mutation list, when given.
    #[serde(default)]
    pub mutations: Option<Vec<Mutation>>,
    /// The error kind the call must fail with instead (see `bulkhead_runtime::Error::kind`).
    #[serde(default)]
    pub error: Option<String>,
}

/// A verdict without its reason (reasons are matched with `reason-contains`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedVerdict {
    /// The plugin must allow.
    Allow,
    /// The plugin must deny.
    Deny,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    /// The case file.
    pub file: PathBuf,
    /// The case name.
    pub name: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// All outcomes of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One per case, in file and case order.
    pub outcomes: Vec<CaseOutcome>,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_none()).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }

    /// `N passed, M failed` — the closing line CI systems read.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

impl CaseOutcome {
    /// One line for humans: `ok   file: name` or `FAIL file: name: why`.
    pub fn line(&self) -> String {
        match &self.failure {
            None => format!("ok    {}: {}", self.file.display(), self.name),
            Some(why) => format!("FAIL  {}: {}: {why}", self.file.display(), self.name),
        }
    }
}

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
    let fail = |case: String, reason: String| Error::CaseFile {
        path: path.to_owned(),
        case,
        reason,
    };
    // Parse in two steps so an error inside a case can name that case.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| fail(String::new(), e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(fail(
            String::new(),
            "expected a JSON object with `cases`".into(),
        ));
    };
    if let Some(field) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "config" | "cases"))
    {
        return Err(fail(
            String::new(),
            format!("unknown field `{field}`, expected `config` or `cases`"),
        ));
    }
    let config = match object.get("config") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(fail(String::new(), "`config` must be a string".into())),
    };
    let Some(raw_cases) = object.get("cases").and_then(|c| c.as_array()) else {
        return Err(fail(String::new(), "missing `cases` array".into()));
    };
    let mut cases = Vec::with_capacity(raw_cases.len());
    for (index, raw) in raw_cases.iter().enumerate() {
        let label = raw
            .get("name")
            .and_then(|n| n.as_str())
            .map(|n| format!("{n:?}"))
            .unwrap_or_else(|| format!("#{}", index + 1));
        let case = Case::deserialize(raw).map_err(|e| fail(label.clone(), e.to_string()))?;
        let e = &case.expect;
        match (&e.verdict, &e.error) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    label,
                    "`expect` has both `verdict` and `error`".into(),
                ));
            }
            (None, None) => return Err(fail(label, "`expect` needs `verdict` or `error`".into())),
            (None, Some(_)) if e.reason_contains.is_some() || e.mutations.is_some() => {
                return Err(fail(
                    label,
                    "`reason-contains` and `mutations` need a `verdict`".into(),
                ));
            }
            _ => {}
        }
        cases.push(case);
    }
    Ok(CaseFile { config, cases })
}

/// Compares one outcome with its expectation; `Some(reason)` on mismatch.
pub fn check(
    expect: &Expectation,
    result: &Result<Decision, bulkhead_runtime::Error>,
) -> Option<String> {
    match (result, &expect.error) {
        (Err(err), Some(kind)) if err.kind() == kind => None,
        (Err(err), Some(kind)) => Some(format!(
            "expected error `{kind}`, got `{}`: {err}",
            err.kind()
        )),
        (Ok(d), Some(kind)) => Some(format!("expected error `{kind}`, got decision {}", json(d))),
        (Err(err), None) => Some(format!("plugin failed: {err}")),
        (Ok(d), None) => {
            let verdict_ok = match (expect.verdict, &d.verdict) {
                (Some(ExpectedVerdict::Allow), Verdict::Allow)
                | (Some(ExpectedVerdict::Deny), Verdict::Deny(_)) => true,
                _ => expect.verdict.is_none(),
            };
            if !verdict_ok {
                let wanted = match expect.verdict {
                    Some(ExpectedVerdict::Deny) => "deny",
                    _ => "allow",
                };
                return Some(format!("expected {wanted}, got {}", json(d)));
            }
            if let Some(needle) = &expect.reason_contains {
                match &d.verdict {
                    Verdict::Deny(reason) if reason.contains(needle.as_str()) => {}
                    _ => {
                        return Some(format!(
                            "expected a deny reason containing {needle:?}, got {}",
                            json(d)
                        ));
                    }
                }
            }
            if let Some(mutations) = &expect.mutations
                && mutations != &d.mutations
            {
                return Some(format!(
                    "expected mutations {}, got {}",
                    serde_json::to_string(mutations).unwrap_or_default(),
                    serde_json::to_string(&d.mutations).unwrap_or_default()
                ));
            }
            None
        }
    }
}

fn json(d: &Decision) -> String {
    serde_json::to_string(d).unwrap_or_else(|_| format!("{d:?}"))
}

/// Loads `plugin` into `runtime` (once per distinct config) and runs every case of every file,
/// calling `on_outcome` as each case finishes. Load errors and malformed case files stop the run
/// with an error; case mismatches are reported in the [`Report`].
pub fn run_case_files(
    runtime: &Runtime,
    plugin: &Path,
    files: &[PathBuf],
    limits: &PluginLimits,
    mut on_outcome: impl FnMut(&CaseOutcome),
) -> Result<Report, Error> {
    let parsed = files
        .iter()
        .map(|f| Ok((f.clone(), load_case_file(f)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut report = Report::default();
    let mut loaded: Vec<(String, bulkhead_runtime::Plugin)> = Vec::new();
    for (file, case_file) in parsed {
        let config = case_file
            .config
            .clone()
            .unwrap_or_else(|| limits.config.clone());
        let plugin = match loaded.iter().find(|(c, _)| *c == config) {
            Some((_, p)) => p.clone(),
            None => {
                let p = runtime.load(
                    plugin,
                    PluginLimits {
                        config: config.clone(),
                        ..limits.clone()
                    },
                )?;
                loaded.push((config, p.clone()));
                p
            }
        };
        for (index, case) in case_file.cases.iter().enumerate() {
            let result = plugin.check_container(&case.container);
            let outcome = CaseOutcome {
                file: file.clone(),
                name: case
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("#{}", index + 1)),
                failure: check(&case.expect, &result),
            };
            on_outcome(&outcome);
            report.outcomes.push(outcome);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CaseFile, Error> {
        parse_case_file(Path::new("cases.json"), text)
    }

    #[test]
    fn minimal_case_parses() {
        let f = parse(r#"{"cases":[{"expect":{"verdict":"allow"}}]}"#).unwrap();
        assert_eq!(f.cases[0].container, ContainerView::default());
    }

    #[test]
    fn unknown_field_names_file_case_and_field() {
        let err = parse(r#"{"cases":[{"name":"web","container":{"pod":{"nmae":"x"}},"expect":{"verdict":"allow"}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cases.json: case \"web\": unknown field `nmae`"),
            "{err}"
        );
        let err = parse(r#"{"cases":[{"expect":{"verdict":"allow","reason":"x"}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cases.json: case #1: unknown field `reason`"),
            "{err}"
        );
        let err = parse(r#"{"casez":[]}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `casez`"), "{err}");
    }

    #[test]
    fn expectation_needs_exactly_one_of_verdict_and_error() {
        assert!(parse(r#"{"cases":[{"expect":{}}]}"#).is_err());
        assert!(parse(r#"{"cases":[{"expect":{"verdict":"deny","error":"trap"}}]}"#).is_err());
        assert!(parse(r#"{"cases":[{"expect":{"error":"timeout"}}]}"#).is_ok());
    }

    #[test]
    fn check_compares_verdict_reason_and_mutations() {
        let expect = |json: &str| serde_json::from_str::<Expectation>(json).unwrap();
        let deny = Ok(Decision::deny("image uses the latest tag"));
        assert_eq!(
            check(
                &expect(r#"{"verdict":"deny","reason-contains":"latest"}"#),
                &deny
            ),
            None
        );
        assert!(check(&expect(r#"{"verdict":"allow"}"#), &deny).is_some());
        assert!(
            check(
                &expect(r#"{"verdict":"deny","reason-contains":"root"}"#),
                &deny
            )
            .is_some()
        );
        let hardened = Ok(Decision {
            verdict: Verdict::Allow,
            mutations: vec![Mutation::SetNoNewPrivileges],
        });
        assert_eq!(
            check(
                &expect(r#"{"verdict":"allow","mutations":["set-no-new-privileges"]}"#),
                &hardened
            ),
            None
        );
        assert!(check(&expect(r#"{"verdict":"allow","mutations":[]}"#), &hardened).is_some());
        assert!(check(&expect(r#"{"error":"trap"}"#), &hardened).is_some());
    }

    #[test]
    fn summary_line_has_the_ci_form() {
        let mut r = Report::default();
        r.outcomes.push(CaseOutcome {
            file: "a.json".into(),
            name: "x".into(),
            failure: None,
        });
        r.outcomes.push(CaseOutcome {
            file: "a.json".into(),
            name: "y".into(),
            failure: Some("no".into()),
        });
        assert_eq!(r.summary(), "1 passed, 1 failed");
    }
}
