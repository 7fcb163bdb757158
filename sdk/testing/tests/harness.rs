//! The harness and the case runner against bulkhead's own test plugins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bulkhead_sdk_testing::Error;
use bulkhead_sdk_testing::cases::Report;
use bulkhead_sdk_testing::cases::run_case_files;
use bulkhead_sdk_testing::{Mutation, PluginLimits, Runtime, RuntimeOptions, TestPlugin};
use bulkhead_test_plugins::{HOSTILE, REALISTIC, SCRIPTED};

#[test]
fn assertions_on_the_realistic_plugin() {
    let plugin = TestPlugin::load(REALISTIC).unwrap();
    assert_eq!(plugin.plugin().name(), "baseline");
    let reason = plugin.assert_denies(r#"{"name": "web", "privileged": true}"#);
    assert_eq!(reason, "container web is privileged");
    let d = plugin.assert_allows(
        r#"{"no-new-privileges": true, "seccomp": {"default-action": "SCMP_ACT_ALLOW"}}"#,
    );
    assert_eq!(
        d.mutations,
        vec![Mutation::AddAnnotation {
            key: "bulkhead.dev/checked-by".into(),
            value: "baseline".into()
        }]
    );
}

#[test]
fn case_files_report_passes_failures_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(
        &file,
        r#"{"config": "loop", "cases": [
            {"name": "times out", "expect": {"error": "timeout"}},
            {"name": "wrongly expects allow", "expect": {"verdict": "allow"}}
        ]}"#,
    )
    .unwrap();
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let limits = PluginLimits {
        time_budget: Duration::from_millis(100),
        ..PluginLimits::default()
    };
    let mut lines = Vec::new();
    let report = run_case_files(&runtime, Path::new(HOSTILE), &[file], &limits, |o| {
        lines.push(o.line())
    })
    .unwrap();
    assert_eq!(report.summary(), "1 passed, 1 failed");
    assert!(lines[0].starts_with("ok "), "{lines:?}");
    assert!(
        lines[1].starts_with("FAIL") && lines[1].contains("timed out"),
        "{lines:?}"
    );
}

#[test]
fn missing_plugin_is_a_load_error() {
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("c.json");
    std::fs::write(&file, r#"{"cases": [{"expect": {"verdict": "allow"}}]}"#).unwrap();
    let err = run_case_files(
        &runtime,
        Path::new("/nope.wasm"),
        &[file],
        &PluginLimits::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nope.wasm"), "{err}");
}

#[test]
fn no_case_files_or_no_cases_is_an_error() {
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let err = run_case_files(
        &runtime,
        Path::new(HOSTILE),
        &[],
        &PluginLimits::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoCaseFiles), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.json");
    std::fs::write(&file, r#"{"cases": []}"#).unwrap();
    let err = run_case_files(
        &runtime,
        Path::new(HOSTILE),
        &[file],
        &PluginLimits::default(),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("empty.json") && err.contains("no cases"),
        "{err}"
    );
}

/// Runs one case file's text against `plugin` with default limits.
fn run(plugin: &str, cases: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, cases).unwrap();
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    run_case_files(
        &runtime,
        Path::new(plugin),
        &[file],
        &PluginLimits::default(),
        |_| {},
    )
    .unwrap()
}

fn failures(report: &Report) -> Vec<(&str, &str)> {
    report
        .outcomes
        .iter()
        .filter_map(|o| Some((o.name.as_str(), o.failure.as_deref()?)))
        .collect()
}

#[test]
fn object_configs_reach_the_plugin_as_json_and_a_case_overrides_the_file() {
    // The scripted plugin parses its config as JSON, as it would from the daemon.
    let report = run(
        SCRIPTED,
        r#"{"config": {"points": ["create-container"], "deny": "the file's config"}, "cases": [
            {"name": "file config", "expect": {"verdict": "deny", "reason-contains": "the file's config"}},
            {"name": "case config", "config": {"points": ["create-container"], "no-new-privileges": true},
             "expect": {"verdict": "allow", "mutations": ["set-no-new-privileges"]}}
        ]}"#,
    );
    assert_eq!(
        report.summary(),
        "2 passed, 0 failed",
        "{:?}",
        failures(&report)
    );
}

#[test]
fn mutations_match_in_any_order_unless_exact() {
    let report = run(
        SCRIPTED,
        r#"{"config": {"points": ["create-container"], "drop": ["CAP_NET_RAW"], "no-new-privileges": true},
            "cases": [
            {"name": "any order", "expect": {"verdict": "allow",
             "mutations": ["set-no-new-privileges", {"drop-capabilities": ["CAP_NET_RAW"]}]}},
            {"name": "exact order", "expect": {"verdict": "allow", "exact": true,
             "mutations": ["set-no-new-privileges", {"drop-capabilities": ["CAP_NET_RAW"]}]}}
        ]}"#,
    );
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "exact order");
    assert!(
        failed[0]
            .1
            .contains("expected mutations (exactly, in order)")
            && failed[0].1.contains("got"),
        "{failed:?}"
    );
}

#[test]
fn cases_at_undeclared_decision_points_fail_unless_any_point() {
    // With no `points` the scripted plugin declares only post-create-container.
    let report = run(
        SCRIPTED,
        r#"{"config": {}, "cases": [
            {"name": "default point", "expect": {"verdict": "allow"}},
            {"name": "declared point", "container": {"event": "post-create-container"}, "expect": {"verdict": "allow"}},
            {"name": "forced", "any-point": true, "expect": {"verdict": "allow"}}
        ]}"#,
    );
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "default point");
    assert!(
        failed[0].1.contains("never called at create-container"),
        "{failed:?}"
    );
}

#[test]
fn reported_errors_have_their_own_kinds_and_messages() {
    let report = run(
        HOSTILE,
        r#"{"config": "report-error", "cases": [
            {"name": "kind and message", "expect": {"error": "invalid-config", "reason-contains": "different config"}},
            {"name": "any reported error", "expect": {"error": "plugin-error"}},
            {"name": "wrong kind", "expect": {"error": "internal"}},
            {"name": "wrong message", "expect": {"error": "invalid-config", "reason-contains": "namespace"}}
        ]}"#,
    );
    let failed = failures(&report);
    assert_eq!(
        failed.iter().map(|f| f.0).collect::<Vec<_>>(),
        ["wrong kind", "wrong message"],
        "{failed:?}"
    );
    assert!(
        failed[0]
            .1
            .starts_with("expected error `internal`, got `invalid-config`"),
        "{failed:?}"
    );
}
