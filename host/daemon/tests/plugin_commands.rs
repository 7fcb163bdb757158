//! `bulkhead plugin test` and `bulkhead eval` as a user runs them: the real binary, real
//! components, case files on disk.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use bulkhead_test_plugins::{HOSTILE, REALISTIC, SCRIPTED};

fn bulkhead(args: &[&str]) -> Output {
    bulkhead_in(args, Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Runs bulkhead with `XDG_CACHE_HOME` set to `cache_home`, so the compile cache of
/// `bulkhead plugin test` never lands in the home directory of whoever runs the tests.
fn bulkhead_in(args: &[&str], cache_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .env("XDG_CACHE_HOME", cache_home)
        .output()
        .expect("runs bulkhead")
}

/// The compiled artifacts in a cache directory.
fn artifacts(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default()
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
            {"name": "privileged is denied",
             "container": {"event": "post-create-container", "name": "web", "privileged": true},
             "expect": {"verdict": "deny", "reason-contains": "privileged"}},
            {"name": "wrong on purpose", "container": {"event": "post-create-container", "privileged": true},
             "expect": {"verdict": "allow"}}
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
        stderr.contains("typo.json")
            && stderr.contains("case #1 \"typo\"")
            && stderr.contains("container.privilegd: unknown field"),
        "{stderr}"
    );
}

#[test]
fn type_error_names_file_case_and_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "types.json",
        r#"{"cases": [
            {"name": "fine", "expect": {"verdict": "allow"}},
            {"name": "bad uid", "container": {"process": {"user": {"uid": "root"}}}, "expect": {"verdict": "allow"}}
        ]}"#,
    );
    let out = bulkhead(&["plugin", "test", REALISTIC, &cases]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains("types.json: case #2 \"bad uid\": container.process.user.uid: invalid type"),
        "{stderr}"
    );
}

#[test]
fn empty_case_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(dir.path(), "empty.json", r#"{"cases": []}"#);
    let out = bulkhead(&["plugin", "test", REALISTIC, &cases]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("empty.json") && stderr.contains("no cases"),
        "{stderr}"
    );
}

#[test]
fn undeclared_decision_point_fails_the_case() {
    let dir = tempfile::tempdir().unwrap();
    // The realistic plugin declares post-create-container only.
    let cases = write(
        dir.path(),
        "points.json",
        r#"{"cases": [
            {"name": "at create", "container": {"privileged": true}, "expect": {"verdict": "deny"}},
            {"name": "forced", "any-point": true, "container": {"privileged": true}, "expect": {"verdict": "deny"}}
        ]}"#,
    );
    let out = bulkhead(&["plugin", "test", REALISTIC, &cases]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL")
            && stdout.contains("at create: the plugin is never called at create-container"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 1 failed"),
        "{stdout}"
    );
    assert!(!out.status.success());
}

#[test]
fn per_case_object_config_is_handed_to_the_plugin_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "config.json",
        r#"{"config": {"points": ["create-container"]}, "cases": [
            {"name": "file config allows", "expect": {"verdict": "allow", "mutations": []}},
            {"name": "case config denies", "config": {"points": ["create-container"], "deny": "told to"},
             "expect": {"verdict": "deny", "reason-contains": "told to"}}
        ]}"#,
    );
    let out = bulkhead(&["plugin", "test", SCRIPTED, &cases]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("2 passed, 0 failed"),
        "{stdout}"
    );
    assert!(out.status.success());
}

#[test]
fn junit_format_writes_xml_with_a_testcase_per_case() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "cases.json",
        r#"{"cases": [
            {"name": "privileged <is> \"denied\" & logged",
             "container": {"event": "post-create-container", "name": "web", "privileged": true},
             "expect": {"verdict": "deny"}},
            {"name": "wrong on purpose", "container": {"event": "post-create-container", "privileged": true},
             "expect": {"verdict": "allow"}}
        ]}"#,
    );
    let out = bulkhead(&["plugin", "test", "--format", "junit", REALISTIC, &cases]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.starts_with("<?xml version=\"1.0\""), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "<testsuite name=\"{REALISTIC}\" tests=\"2\" failures=\"1\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "<testcase name=\"privileged &lt;is&gt; &quot;denied&quot; &amp; logged\" classname=\""
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("<testcase ").count(), 2, "{stdout}");
    assert_eq!(
        stdout
            .matches("<failure message=\"expected allow, got ")
            .count(),
        1,
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("</testsuites>"), "{stdout}");
    assert!(!stdout.contains("passed,"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 passed, 1 failed"));
}

#[test]
fn compiled_plugins_are_cached_in_a_private_dir() {
    let dir = tempfile::tempdir().unwrap();
    // Two configs: the second load must come from the cache, so there is one artifact.
    let cases = write(
        dir.path(),
        "cases.json",
        r#"{"config": {"points": ["create-container"]}, "cases": [
            {"expect": {"verdict": "allow"}},
            {"config": {"points": ["create-container"], "deny": "x"}, "expect": {"verdict": "deny"}}
        ]}"#,
    );
    // Default: under $XDG_CACHE_HOME, created 0700.
    let xdg = dir.path().join("xdg");
    let out = bulkhead_in(&["plugin", "test", SCRIPTED, &cases], &xdg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = xdg.join("bulkhead");
    assert_eq!(artifacts(&cache).len(), 1, "{:?}", artifacts(&cache));
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // --cache-dir names another one.
    let explicit = dir.path().join("explicit");
    let explicit_arg = explicit.display().to_string();
    let out = bulkhead(&[
        "plugin",
        "test",
        "--cache-dir",
        &explicit_arg,
        SCRIPTED,
        &cases,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(artifacts(&explicit).len(), 1);
    // --no-cache writes nothing.
    let untouched = dir.path().join("untouched");
    let out = bulkhead_in(
        &["plugin", "test", "--no-cache", SCRIPTED, &cases],
        &untouched,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!untouched.exists());
}

#[test]
fn a_cache_dir_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "cases.json",
        r#"{"cases": [{"any-point": true, "expect": {"verdict": "allow"}}]}"#,
    );
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let open_arg = open.display().to_string();
    let out = bulkhead(&["plugin", "test", "--cache-dir", &open_arg, SCRIPTED, &cases]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
