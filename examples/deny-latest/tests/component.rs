//! Tests the built component (not just the Rust logic) in the real bulkhead runtime, the way
//! the node will run it: the crate is compiled for wasm32-wasip2 from inside `cargo test`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulkhead_sdk_testing::cases::run_case_files;
use bulkhead_sdk_testing::{PluginLimits, Runtime, RuntimeOptions, TestPlugin};

fn component() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        bulkhead_sdk_testing::build_component(env!("CARGO_MANIFEST_DIR").as_ref()).unwrap()
    })
}

#[test]
fn denies_latest_and_allows_pinned() {
    let plugin = TestPlugin::load(component()).unwrap();
    assert_eq!(plugin.plugin().name(), "deny-latest");
    let reason =
        plugin.assert_denies(r#"{"image": {"reference": "nginx:latest", "tag": "latest"}}"#);
    assert!(reason.contains("pin a version"), "{reason}");
    plugin.assert_allows(r#"{"image": {"reference": "nginx:1.27", "tag": "1.27"}}"#);
}

#[test]
fn bad_config_is_reported_by_the_plugin() {
    let limits = PluginLimits {
        config: r#"{"mode": "maybe"}"#.into(),
        ..PluginLimits::default()
    };
    // Refused when loaded if the plugin validates its config then, else on the first call.
    let err = match TestPlugin::load_with(component(), limits) {
        Ok(plugin) => plugin.check_json("{}").unwrap_err(),
        Err(err) => err,
    };
    assert!(err.to_string().contains("unknown variant `maybe`"), "{err}");
}

#[test]
fn case_file_passes() {
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases.json");
    let report = run_case_files(
        &runtime,
        component(),
        &[cases],
        &PluginLimits::default(),
        |o| println!("{}", o.line()),
    )
    .unwrap();
    assert_eq!(report.summary(), "8 passed, 0 failed");
}
