//! Tests the built component in the real bulkhead runtime, the way the node runs it: the crate
//! is compiled for wasm32-wasip2 from inside `cargo test`, and its config arrives as the JSON
//! document the daemon makes of the operator's `[plugins.config]` table.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulkhead_sdk_testing::{PluginLimits, TestPlugin};

fn component() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        bulkhead_sdk_testing::build_component(env!("CARGO_MANIFEST_DIR").as_ref()).unwrap()
    })
}

fn plugin(config: &str) -> TestPlugin {
    let limits = PluginLimits {
        config: config.into(),
        ..PluginLimits::default()
    };
    TestPlugin::load_with(component(), limits).unwrap()
}

#[test]
fn metadata_names_both_decision_points() {
    let p = plugin("{}");
    assert_eq!(p.plugin().name(), "image-policy");
    // A broken config is refused at load, by validate-config, naming the key.
    assert!(TestPlugin::assert_refuses_config(component(), "{\"nope\": 1}").contains("`nope`"));
}

#[test]
fn create_time_rules_decide() {
    let p = plugin(
        r#"{"allowed-registries": ["docker.io", "registry.k8s.io"], "deny-latest": true,
            "denied-repositories": ["docker.io/library/nginx*"]}"#,
    );
    let reason = p.assert_denies(
        r#"{"image": {"reference": "busybox", "registry": "docker.io",
            "repository": "library/busybox", "tag": "latest"}}"#,
    );
    assert_eq!(
        reason,
        r#"image-policy: tag "latest" is denied (rule deny-latest)"#
    );
    let reason = p.assert_denies(
        r#"{"image": {"reference": "quay.io/x/y:1", "registry": "quay.io", "repository": "x/y", "tag": "1"}}"#,
    );
    assert!(reason.ends_with("(rule allowed-registries)"), "{reason}");
    let reason = p.assert_denies(
        r#"{"image": {"reference": "nginx:1.27", "registry": "docker.io", "repository": "library/nginx", "tag": "1.27"}}"#,
    );
    assert!(reason.ends_with("(rule denied-repositories)"), "{reason}");
    p.assert_allows(
        r#"{"image": {"reference": "busybox:1.36", "registry": "docker.io",
            "repository": "library/busybox", "tag": "1.36"}}"#,
    );
}

#[test]
fn root_user_is_checked_after_create() {
    let p = plugin(r#"{"deny-root-user": true}"#);
    let root = r#"{"event": "post-create-container", "image": {"config": {"user": "root"}}}"#;
    let reason = p.assert_denies(root);
    assert!(reason.ends_with("(rule deny-root-user)"), "{reason}");
    p.assert_allows(
        r#"{"event": "post-create-container", "image": {"config": {"user": "root"}},
            "process": {"user": {"uid": 1000}}}"#,
    );
    p.assert_allows(r#"{"event": "create-container", "image": {"config": {"user": "root"}}}"#);
}

#[test]
fn bad_config_is_an_error_naming_the_key() {
    let err = TestPlugin::assert_refuses_config(component(), r#"{"deny-latest": "yes"}"#);
    assert!(err.contains("`deny-latest`"), "{err}");
}
