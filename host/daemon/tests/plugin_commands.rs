//! `bulkhead plugin test` and `bulkhead eval` as a user runs them: the real binary, real
//! components, case files on disk.

use std::path::Path;
use std::process::{Command, Output};

use bulkhead_test_plugins::{HOSTILE, REALISTIC};

fn bulkhead(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .output()
        .expect("runs bulkhead")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn plugin_test_reports_each_case_and_the_summary_last() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "cases.json",
        r#"{"cases": [
            {"name": "privileged is denied", "container": {"name": "web", "privileged": true},
             "expect": {"verdict": "deny", "reason-contains": "privileged"}},
            {"name": "wrong on purpose", "container": {"privileged": true}, "expect": {"verdict": "allow"}}
        ]}"#,
    );
    let out = bulkhead(&["plugin", "test", REALISTIC, &cases]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("ok ") && lines[0].contains("privileged is denied"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("FAIL") && lines[1].contains("wrong on purpose"),
        "{stdout}"
    );
    assert_eq!(lines[2], "1 passed, 1 failed");
    assert!(!out.status.success());
}

#[test]
fn plugin_test_passes_with_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "ok.json",
        r#"{"config": "loop", "cases": [{"name": "loops", "expect": {"error": "timeout"}}]}"#,
    );
    let out = bulkhead(&["plugin", "test", "--time-budget", "50", HOSTILE, &cases]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );
    assert!(out.status.success());
}

#[test]
fn unknown_case_field_is_named_with_file_and_case() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "typo.json",
        r#"{"cases": [{"name": "typo", "container": {"privilegd": true}, "expect": {"verdict": "allow"}}]}"#,
    );
    let out = bulkhead(&["plugin", "test", REALISTIC, &cases]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("typo.json") && stderr.contains("\"typo\"") && stderr.contains("privilegd"),
        "{stderr}"
    );
}

#[test]
fn load_error_names_the_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "c.json",
        r#"{"cases": [{"expect": {"verdict": "allow"}}]}"#,
    );
    let junk = write(dir.path(), "junk.wasm", "not wasm");
    let out = bulkhead(&["plugin", "test", &junk, &cases]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.wasm"));
}

#[test]
fn eval_prints_the_decision_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let view = write(
        dir.path(),
        "view.json",
        r#"{"name": "web", "privileged": true}"#,
    );
    let out = bulkhead(&["eval", "--plugin", REALISTIC, "--container", &view]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["verdict"]["deny"], "container web is privileged");

    // Two plugins: each decision and the merge.
    let out = bulkhead(&[
        "eval",
        "--plugin",
        REALISTIC,
        "--plugin",
        REALISTIC,
        "--container",
        &view,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(both["plugins"].as_array().map(Vec::len), Some(2));
    assert!(both["merged"]["verdict"]["deny"].is_string(), "{both}");
}
