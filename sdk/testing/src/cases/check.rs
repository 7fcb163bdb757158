//! Comparing one call's outcome with a case's expectation, with a message that shows what was
//! expected and what came back.

use bulkhead_core::decision::{Decision, Mutation, Verdict};

use super::parse::ANY_REPORTED;
use super::{Expectation, ExpectedVerdict};

/// Compares one outcome with its expectation; `Some(reason)` on mismatch.
pub fn check(
    expect: &Expectation,
    result: &Result<Decision, bulkhead_runtime::Error>,
) -> Option<String> {
    match (result, &expect.error) {
        (Err(err), Some(kind)) => {
            if !kind_matches(kind, err.kind()) {
                return Some(format!(
                    "expected error `{kind}`, got `{}`: {err}",
                    err.kind()
                ));
            }
            let message = err.to_string();
            match &expect.reason_contains {
                Some(needle) if !message.contains(needle.as_str()) => Some(format!(
                    "expected an error message containing {needle:?}, got `{}`: {message}",
                    err.kind()
                )),
                _ => None,
            }
        }
        (Ok(d), Some(kind)) => Some(format!("expected error `{kind}`, got decision {}", json(d))),
        (Err(err), None) => Some(format!("plugin failed with `{}`: {err}", err.kind())),
        (Ok(d), None) => check_decision(expect, d),
    }
}

/// `plugin-error` stands for any error the plugin returned itself.
fn kind_matches(expected: &str, got: &str) -> bool {
    expected == got
        || (expected == ANY_REPORTED && bulkhead_runtime::Error::REPORTED_KINDS.contains(&got))
}

fn check_decision(expect: &Expectation, d: &Decision) -> Option<String> {
    let verdict_ok = matches!(
        (expect.verdict, &d.verdict),
        (Some(ExpectedVerdict::Allow), Verdict::Allow)
            | (Some(ExpectedVerdict::Deny), Verdict::Deny(_))
            | (None, _)
    );
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
    let expected = expect.mutations.as_ref()?;
    if expect.exact {
        return (expected != &d.mutations).then(|| {
            format!(
                "expected mutations (exactly, in order) {}, got {}",
                list(expected.iter()),
                list(d.mutations.iter())
            )
        });
    }
    let missing = unmatched(expected, &d.mutations);
    let unexpected = unmatched(&d.mutations, expected);
    if missing.is_empty() && unexpected.is_empty() {
        return None;
    }
    Some(format!(
        "expected mutations (any order) {}, got {}; missing {}, unexpected {}",
        list(expected.iter()),
        list(d.mutations.iter()),
        list(missing.into_iter()),
        list(unexpected.into_iter())
    ))
}

/// The items of `of` left over after pairing each with an equal, not yet paired item of
/// `against`: a multiset difference (duplicates count), without needing `Hash` or `Ord`.
fn unmatched<'a>(of: &'a [Mutation], against: &[Mutation]) -> Vec<&'a Mutation> {
    let mut used = vec![false; against.len()];
    of.iter()
        .filter(
            |m| match (0..against.len()).find(|&i| !used[i] && against[i] == **m) {
                Some(i) => {
                    used[i] = true;
                    false
                }
                None => true,
            },
        )
        .collect()
}

fn list<'a>(mutations: impl Iterator<Item = &'a Mutation>) -> String {
    let items: Vec<String> = mutations
        .map(|m| serde_json::to_string(m).unwrap_or_else(|_| format!("{m:?}")))
        .collect();
    format!("[{}]", items.join(","))
}

fn json(d: &Decision) -> String {
    serde_json::to_string(d).unwrap_or_else(|_| format!("{d:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::decision::Capability;

    fn expect(json: &str) -> Expectation {
        serde_json::from_str(json).unwrap()
    }

    fn allow(mutations: Vec<Mutation>) -> Result<Decision, bulkhead_runtime::Error> {
        Ok(Decision {
            verdict: Verdict::Allow,
            mutations,
        })
    }

    fn reported(kind: &'static str, message: &str) -> Result<Decision, bulkhead_runtime::Error> {
        Err(bulkhead_runtime::Error::Reported {
            plugin: "p".into(),
            kind,
            message: message.into(),
        })
    }

    fn drop_raw() -> Mutation {
        Mutation::DropCapabilities(vec![Capability::NetRaw])
    }

    #[test]
    fn check_compares_verdict_and_reason() {
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
        assert!(check(&expect(r#"{"error":"trap"}"#), &allow(vec![])).is_some());
    }

    #[test]
    fn mutations_match_in_any_order_by_default() {
        let got = allow(vec![Mutation::SetNoNewPrivileges, drop_raw()]);
        let reordered = r#"{"verdict":"allow","mutations":[{"drop-capabilities":["CAP_NET_RAW"]},"set-no-new-privileges"]}"#;
        assert_eq!(check(&expect(reordered), &got), None);
        // A multiset: a duplicate is not the same as the one mutation.
        let twice =
            r#"{"verdict":"allow","mutations":["set-no-new-privileges","set-no-new-privileges"]}"#;
        let why = check(&expect(twice), &got).unwrap();
        assert!(
            why.contains(r#"missing ["set-no-new-privileges"]"#)
                && why.contains(r#"unexpected [{"drop-capabilities":["CAP_NET_RAW"]}]"#),
            "{why}"
        );
        assert!(check(&expect(r#"{"verdict":"allow","mutations":[]}"#), &got).is_some());
    }

    #[test]
    fn exact_mutations_must_keep_their_order() {
        let got = allow(vec![Mutation::SetNoNewPrivileges, drop_raw()]);
        let reordered = r#"{"verdict":"allow","exact":true,"mutations":[{"drop-capabilities":["CAP_NET_RAW"]},"set-no-new-privileges"]}"#;
        let why = check(&expect(reordered), &got).unwrap();
        assert_eq!(
            why,
            r#"expected mutations (exactly, in order) [{"drop-capabilities":["CAP_NET_RAW"]},"set-no-new-privileges"], got ["set-no-new-privileges",{"drop-capabilities":["CAP_NET_RAW"]}]"#
        );
        let in_order = r#"{"verdict":"allow","exact":true,"mutations":["set-no-new-privileges",{"drop-capabilities":["CAP_NET_RAW"]}]}"#;
        assert_eq!(check(&expect(in_order), &got), None);
    }

    #[test]
    fn reported_errors_match_their_kind_or_plugin_error() {
        let err = reported("invalid-config", "unknown mode \"maybe\"");
        assert_eq!(check(&expect(r#"{"error":"invalid-config"}"#), &err), None);
        assert_eq!(check(&expect(r#"{"error":"plugin-error"}"#), &err), None);
        let why = check(&expect(r#"{"error":"internal"}"#), &err).unwrap();
        assert!(
            why.starts_with("expected error `internal`, got `invalid-config`"),
            "{why}"
        );
        let timeout = Err(bulkhead_runtime::Error::Timeout {
            plugin: "p".into(),
            budget: std::time::Duration::ZERO,
            elapsed: std::time::Duration::ZERO,
        });
        assert!(check(&expect(r#"{"error":"plugin-error"}"#), &timeout).is_some());
    }

    #[test]
    fn reason_contains_matches_the_error_message() {
        let err = reported("invalid-config", "unknown mode \"maybe\"");
        assert_eq!(
            check(
                &expect(r#"{"error":"invalid-config","reason-contains":"unknown mode"}"#),
                &err
            ),
            None
        );
        let why = check(
            &expect(r#"{"error":"invalid-config","reason-contains":"namespace"}"#),
            &err,
        )
        .unwrap();
        assert!(
            why.starts_with("expected an error message containing \"namespace\""),
            "{why}"
        );
    }
}
