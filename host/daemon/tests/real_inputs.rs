//! `bulkhead schema` and `bulkhead view` as plugin authors run them, without containerd: the
//! schemas printed are the committed ones, and `view` fails plainly when containerd is not
//! there (the real container path is covered by the e2e test `tests/tests/view.rs`).

use std::process::{Command, Output};

fn bulkhead(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .output()
        .expect("runs bulkhead")
}

#[test]
fn schema_prints_the_committed_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/schema");
    for name in ["container-view", "decision", "case-file"] {
        let out = bulkhead(&["schema", name]);
        assert!(out.status.success(), "{name}");
        let committed = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), committed, "{name}");
    }
    let out = bulkhead(&["schema", "config"]);
    assert!(!out.status.success());
}

#[test]
fn view_without_containerd_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("containerd.sock");
    let socket = socket.to_str().unwrap();
    let out = bulkhead(&["view", "abc", "--containerd-socket", socket]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(socket), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn view_refuses_an_unknown_decision_point() {
    let out = bulkhead(&["view", "abc", "--event", "update-container"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("post-create-container"), "{stderr}");
}
