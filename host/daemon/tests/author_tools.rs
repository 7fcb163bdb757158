//! The author tools as a newcomer uses them: `bulkhead plugin new` makes a crate that builds
//! into a component and passes its own case file under `bulkhead plugin test`; `plugin bench`
//! reports latency and memory for it.

use std::path::Path;
use std::process::{Command, Output};

fn bulkhead(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("runs bulkhead")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_new_plugin_builds_passes_its_cases_and_benches() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("no-root");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust");
    let created = bulkhead(&[
        "plugin",
        "new",
        "no-root",
        "--dir",
        crate_dir.to_str().unwrap(),
        "--sdk-path",
        sdk.to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{}", text(&created));

    let wasm = bulkhead_sdk_testing::build_component(&crate_dir).expect("the new crate builds");
    let wasm = wasm.to_str().unwrap();
    let cases = crate_dir.join("cases.json");
    let tested = bulkhead(&["plugin", "test", wasm, cases.to_str().unwrap()]);
    let report = text(&tested);
    assert!(tested.status.success(), "{report}");
    assert!(
        report.trim_end().ends_with("4 passed, 0 failed"),
        "{report}"
    );

    let view = dir.path().join("view.json");
    std::fs::write(
        &view,
        r#"{"event": "post-create-container", "process": {"user": {"uid": 1000}}}"#,
    )
    .unwrap();
    let benched = bulkhead(&[
        "plugin",
        "bench",
        wasm,
        "--container",
        view.to_str().unwrap(),
        "--iterations",
        "50",
    ]);
    let report = text(&benched);
    assert!(benched.status.success(), "{report}");
    assert!(report.contains("p99"), "{report}");
    assert!(report.contains("MiB of the 16.0 MiB limit"), "{report}");
}

#[test]
fn plugin_new_refuses_a_bad_name() {
    let out = bulkhead(&["plugin", "new", "Not_A_Name"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a plugin name"), "{}", text(&out));
}
