//! The `bulkhead-guard` binary as runc and an operator run it: exit codes, stderr, files.
//! No containerd needed (see `guard_e2e.rs` for that).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bulkhead_guard::{GuardKey, MARKER_ANNOTATION, marker};
use serde_json::json;

const GUARD: &str = env!("CARGO_BIN_EXE_bulkhead-guard");

/// Runs `bulkhead-guard hook --key KEY` with `state` on stdin, as runc does.
fn hook(key: &Path, state: &serde_json::Value) -> Output {
    let mut child = Command::new(GUARD)
        .args(["hook", "--key"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(state).unwrap())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn state(id: &str, annotations: serde_json::Value) -> serde_json::Value {
    json!({"ociVersion": "1.0.2-dev", "id": id, "status": "creating", "pid": 1,
           "bundle": "/nonexistent", "annotations": annotations})
}

#[test]
fn hook_exit_codes_follow_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("guard.key");
    let init = Command::new(GUARD)
        .arg("init-key")
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = GuardKey::load(&key_path).unwrap();

    let sandbox = hook(
        &key_path,
        &state("s1", json!({"io.kubernetes.cri.container-type": "sandbox"})),
    );
    assert_eq!(sandbox.status.code(), Some(0), "{sandbox:?}");
    assert!(sandbox.stderr.is_empty());

    let workload = json!({"io.kubernetes.cri.container-type": "container"});
    let refused = hook(&key_path, &state("c1", workload.clone()));
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("bulkhead-guard: refusing container c1: no io.bulkhead.guard"),
        "{stderr}"
    );

    let mut marked = workload;
    marked[MARKER_ANNOTATION] = json!(marker(&key, "c1"));
    let allowed = hook(&key_path, &state("c1", marked.clone()));
    assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");
    let borrowed = hook(&key_path, &state("c2", marked));
    assert_eq!(borrowed.status.code(), Some(1), "{borrowed:?}");
}

#[test]
fn init_key_never_replaces_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("guard.key");
    std::fs::write(&key_path, b"existing").unwrap();
    let again = Command::new(GUARD)
        .arg("init-key")
        .arg(&key_path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&key_path).unwrap(), b"existing");
}

#[test]
fn print_base_spec_names_this_binary_and_the_key() {
    let output = Command::new(GUARD)
        .args([
            "print-base-spec",
            "--key",
            "/etc/bulkhead/test.key",
            "--strict",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let spec: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let hook = &spec["hooks"]["createRuntime"][0];
    assert_eq!(
        Path::new(hook["path"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        Path::new(GUARD).canonicalize().unwrap()
    );
    assert_eq!(
        hook["args"],
        json!([
            "bulkhead-guard",
            "hook",
            "--key",
            "/etc/bulkhead/test.key",
            "--strict"
        ])
    );
    assert!(spec["process"].get("rlimits").is_none());

    let relative = Command::new(GUARD)
        .args(["print-base-spec", "--hook-path", "bin/bulkhead-guard"])
        .output()
        .unwrap();
    assert_eq!(relative.status.code(), Some(2));
}

#[test]
fn unknown_commands_fail_with_usage() {
    let output = Command::new(GUARD).arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage:"));
}
