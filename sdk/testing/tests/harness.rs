//! The harness and the case runner against bulkhead's own test plugins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bulkhead_sdk_testing::cases::run_case_files;
use bulkhead_sdk_testing::{Mutation, PluginLimits, Runtime, RuntimeOptions, TestPlugin};
use bulkhead_test_plugins::{HOSTILE, REALISTIC};

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
    let err = run_case_files(
        &runtime,
        Path::new("/nope.wasm"),
        &[],
        &PluginLimits::default(),
        |_| {},
    );
    // No case files: nothing is loaded, nothing fails.
    assert_eq!(err.unwrap().summary(), "0 passed, 0 failed");
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
