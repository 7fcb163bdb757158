//! Case files: container views with the decision a plugin must reach, run offline.
//!
//! This is what `bulkhead plugin test <plugin.wasm> <cases...>` runs, and plugin authors can run
//! the same files from a Rust test with [`run_case_files`]. A case file is JSON:
//!
//! ```json
//! {
//!   "config": {"allowed-namespaces": ["kube-system"]},
//!   "cases": [
//!     {
//!       "name": "latest tag is denied",
//!       "container": { "image": { "reference": "nginx:latest", "tag": "latest" } },
//!       "expect": { "verdict": "deny", "reason-contains": "latest" }
//!     },
//!     {
//!       "name": "pinned image is hardened",
//!       "container": { "event": "post-create-container", "image": { "tag": "1.27" } },
//!       "expect": { "verdict": "allow",
//!                   "mutations": ["set-no-new-privileges", {"drop-capabilities": ["CAP_NET_RAW"]}] }
//!     },
//!     {
//!       "name": "a bad config is reported",
//!       "config": {"allowed-namespaces": "kube-system"},
//!       "expect": { "error": "invalid-config", "reason-contains": "allowed-namespaces" }
//!     }
//!   ]
//! }
//! ```
//!
//! - `config` (file-level default, overridden by a case's own `config`) is what the plugin's
//!   `config` import returns. Write it as a JSON object: the daemon hands every plugin its
//!   `[plugins.config]` table serialized as a JSON object (`{}` when the table is absent), and the
//!   runner serializes the object the same way. A plain string is still accepted and passed as
//!   is (legacy: the daemon never passes one). Without any `config`, the caller's
//!   [`PluginLimits::config`] is used (`bulkhead plugin test --plugin-config`, default `{}`).
//! - `container` is a [`ContainerView`] (every field optional). Its `event` is the decision point
//!   (default `create-container`). A case at a point the plugin's metadata does not declare fails,
//!   because the daemon would never call the plugin there — unless the case sets
//!   `"any-point": true`.
//! - `expect` holds either a `verdict` or an `error`:
//!   - `verdict` is `"allow"` or `"deny"`; `reason-contains` is a substring of the deny reason;
//!     `mutations` is the list of JSON [`Mutation`]s, compared as a multiset (same mutations, any
//!     order) unless `"exact": true` asks for the same list in the same order.
//!   - `error` is the kind the call must fail with (see `bulkhead_runtime::Error::KINDS`:
//!     `timeout`, `trap`, `memory-limit`, `invalid-output`, and for errors the plugin returns
//!     itself `invalid-config`, `unsupported`, `internal`; `plugin-error` matches any of those
//!     three). `reason-contains` is then a substring of the error message. A plugin that
//!     refuses the case's config when it is loaded gives the case that error.
//!
//! Unknown fields, wrong types and impossible expectations are errors that name the file, the
//! case (`#index` and name) and the field path (`container.pod.name`). A file without cases, or a
//! run without files, is an error too: a CI step that tests nothing must not pass.

mod check;
mod junit;
mod parse;
mod schema;

use std::path::{Path, PathBuf};

use bulkhead_core::decision::Mutation;
use bulkhead_core::view::{ContainerView, DecisionPoint};
use bulkhead_runtime::{PluginInfo, PluginLimits, Runtime};
use schemars::JsonSchema;
use serde::Deserialize;

pub use check::check;
pub use parse::{load_case_file, parse_case_file};

use crate::Error;

/// One parsed case file.
// Its JSON Schema (`bulkhead schema case-file`) is derived from these types; what serde cannot
// say (the `config` forms, which expectations go together) is written out in `schema.rs`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    title = "bulkhead case file",
    description = "Container views and the answer a plugin must give for each, run by `bulkhead plugin test`."
)]
pub struct CaseFile {
    /// The text the plugin's `config` import returns for cases without their own `config`: a JSON
    /// object in the file, serialized; a string (legacy), as is.
    #[serde(default, deserialize_with = "parse::config_text")]
    #[schemars(schema_with = "schema::config")]
    pub config: Option<String>,
    /// The cases; never empty.
    #[schemars(length(min = 1))]
    pub cases: Vec<Case>,
}

/// One container view and what the plugin must answer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Case {
    /// Shown in the output; defaults to `#<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// This case's config text, overriding the file's (same forms as [`CaseFile::config`]), so one
    /// file can cover several operator configs.
    #[serde(default, deserialize_with = "parse::config_text")]
    #[schemars(
        schema_with = "schema::config",
        description = "This case's config, overriding the file's (same forms), so one file can cover several operator configs."
    )]
    pub config: Option<String>,
    /// The view passed to `check-container`; its `event` is the decision point.
    #[serde(default)]
    // The default view, written out, would bury the schema; `{}` means the same.
    #[schemars(extend("default" = {}))]
    pub container: ContainerView,
    /// Run the case even at a decision point the plugin does not declare. Off by default: the
    /// daemon never makes such a call, so a passing case there would prove nothing.
    #[serde(default)]
    pub any_point: bool,
    /// The expected outcome.
    pub expect: Expectation,
}

/// The expected outcome of a case.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(transform = schema::expectation_rules)]
pub struct Expectation {
    /// Expected verdict.
    #[serde(default)]
    pub verdict: Option<ExpectedVerdict>,
    /// A substring of the deny reason, or of the error message when `error` is set.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// The mutations, when given; compared as a multiset unless [`Expectation::exact`].
    #[serde(default)]
    #[schemars(
        description = "The mutations, when given; compared as a multiset unless `exact` is true."
    )]
    pub mutations: Option<Vec<Mutation>>,
    /// Compare `mutations` as a list: same mutations in the same order. Order rarely matters to
    /// the daemon (it merges and applies by kind), so the default lets a plugin reorder freely.
    #[serde(default)]
    pub exact: bool,
    /// The error kind the call must fail with instead (one of `bulkhead_runtime::Error::KINDS`,
    /// or `plugin-error` for any error the plugin reports itself).
    #[serde(default)]
    #[schemars(schema_with = "schema::error_kind")]
    pub error: Option<String>,
}

/// A verdict without its reason (reasons are matched with `reason-contains`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
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

/// Why `case` must not run against a plugin declaring `info`: the daemon only calls a plugin at
/// the decision points its metadata declares, so a case at another point would test a call that
/// never happens. `None` when the point is declared or the case sets `any-point`.
pub fn point_mismatch(info: &PluginInfo, case: &Case) -> Option<String> {
    let point = case.container.event;
    if case.any_point || info.decision_points.contains(&point) {
        return None;
    }
    let declared = if info.decision_points.is_empty() {
        "no decision points".to_string()
    } else {
        let names: Vec<String> = info
            .decision_points
            .iter()
            .map(|p| point_name(*p))
            .collect();
        names.join(", ")
    };
    Some(format!(
        "the plugin is never called at {} (the case's `container.event`; it declares {declared}); \
         set `container.event` to a declared point, or `\"any-point\": true` to run it anyway",
        point_name(point)
    ))
}

/// The kebab-case name of a decision point, as case files and the WIT spell it.
fn point_name(point: DecisionPoint) -> String {
    match serde_json::to_value(point) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{point:?}"),
    }
}

/// A plugin's refusal of a config at load, kept to answer every case with that config.
struct Refusal {
    plugin: String,
    kind: &'static str,
    message: String,
}

impl Refusal {
    fn error(&self) -> bulkhead_runtime::Error {
        bulkhead_runtime::Error::Reported {
            plugin: self.plugin.clone(),
            kind: self.kind,
            message: self.message.clone(),
        }
    }
}

/// Loads `plugin` into `runtime` (once per distinct config) and runs every case of every file,
/// calling `on_outcome` as each case finishes. `limits.config` is the config of cases that set
/// none. No files, an empty file, a malformed file or a load error stop the run with an error,
/// except the plugin refusing a config when loaded: that is the outcome of the cases with that
/// config (match it with `expect.error`). Case mismatches are reported in the [`Report`].
pub fn run_case_files(
    runtime: &Runtime,
    plugin: &Path,
    files: &[PathBuf],
    limits: &PluginLimits,
    mut on_outcome: impl FnMut(&CaseOutcome),
) -> Result<Report, Error> {
    if files.is_empty() {
        return Err(Error::NoCaseFiles);
    }
    let parsed = files
        .iter()
        .map(|f| Ok((f.clone(), load_case_file(f)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut report = Report::default();
    // Loaded once per config: with the runtime's artifact cache, later loads skip compiling.
    let mut loaded: Vec<(String, Result<bulkhead_runtime::Plugin, Refusal>)> = Vec::new();
    for (file, case_file) in parsed {
        for (index, case) in case_file.cases.iter().enumerate() {
            let config = case
                .config
                .as_ref()
                .or(case_file.config.as_ref())
                .unwrap_or(&limits.config);
            let at = match loaded.iter().position(|(c, _)| c == config) {
                Some(at) => at,
                None => {
                    let limits = PluginLimits {
                        config: config.clone(),
                        ..limits.clone()
                    };
                    let result = match runtime.load(plugin, limits) {
                        Ok(p) => Ok(p),
                        // The plugin refused this config when loaded (its config validation):
                        // the daemon would not run it, and that is the case's outcome.
                        Err(bulkhead_runtime::Error::Reported {
                            plugin,
                            kind,
                            message,
                        }) => Err(Refusal {
                            plugin,
                            kind,
                            message,
                        }),
                        Err(other) => return Err(other.into()),
                    };
                    loaded.push((config.clone(), result));
                    loaded.len() - 1
                }
            };
            let failure = match &loaded[at].1 {
                Ok(plugin) => point_mismatch(plugin.info(), case)
                    .or_else(|| check(&case.expect, &plugin.check_container(&case.container))),
                Err(refusal) => check(&case.expect, &Err(refusal.error())),
            };
            let outcome = CaseOutcome {
                file: file.clone(),
                name: case
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("#{}", index + 1)),
                failure,
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

    fn case(json: &str) -> Case {
        serde_json::from_str(json).unwrap()
    }

    fn info(points: &[DecisionPoint]) -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: "0.1.0".into(),
            decision_points: points.to_vec(),
        }
    }

    #[test]
    fn undeclared_decision_point_fails_unless_any_point() {
        let post = info(&[DecisionPoint::PostCreateContainer]);
        let default_point = case(r#"{"expect":{"verdict":"allow"}}"#);
        let why = point_mismatch(&post, &default_point).unwrap();
        assert!(
            why.contains("never called at create-container")
                && why.contains("declares post-create-container")
                && why.contains("any-point"),
            "{why}"
        );
        assert_eq!(
            point_mismatch(
                &post,
                &case(
                    r#"{"container":{"event":"post-create-container"},"expect":{"verdict":"allow"}}"#
                )
            ),
            None
        );
        assert_eq!(
            point_mismatch(
                &post,
                &case(r#"{"any-point":true,"expect":{"verdict":"allow"}}"#)
            ),
            None
        );
        let none = point_mismatch(&info(&[]), &default_point).unwrap();
        assert!(none.contains("declares no decision points"), "{none}");
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
