//! Tests the built component in the real bulkhead runtime, the way the node runs it: the crate
//! is compiled for wasm32-wasip2 from inside `cargo test`, and its config arrives as the JSON
//! document the daemon makes of the operator's `[plugins.config]` table.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulkhead_sdk_testing::{Capability, Mutation, PluginLimits, TestPlugin};

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

const ORDINARY: &str = r#"{"event": "post-create-container", "pod": {"namespace": "team-a"},
    "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]}}"#;

#[test]
fn privileged_and_added_capabilities_are_denied() {
    let p = plugin("{}");
    assert_eq!(p.plugin().name(), "capabilities");
    let reason = p.assert_denies(
        r#"{"event": "post-create-container", "name": "debug", "privileged": true}"#,
    );
    assert_eq!(
        reason,
        r#"capabilities: privileged container "debug" is denied (rule deny-privileged)"#
    );
    let reason = p.assert_denies(
        r#"{"event": "post-create-container", "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}}"#,
    );
    assert!(
        reason.ends_with("(rule deny-added-capabilities)"),
        "{reason}"
    );
    assert!(p.assert_allows(ORDINARY).mutations.is_empty());
}

#[test]
fn exempt_namespace_keeps_drops_and_restricted_profile_applies() {
    let p = plugin(
        r#"{"exempt-namespaces": ["kube-system"], "drop": ["NET_RAW"], "profile": "restricted",
            "restricted-namespaces": ["team-a"]}"#,
    );
    let d = p.assert_allows(
        r#"{"event": "post-create-container", "privileged": true, "pod": {"namespace": "kube-system"}}"#,
    );
    assert_eq!(
        d.mutations,
        [Mutation::DropCapabilities(vec![Capability::NetRaw])]
    );
    let d = p.assert_allows(ORDINARY);
    assert_eq!(
        d.mutations,
        [
            Mutation::DropCapabilities(vec![Capability::NetRaw]),
            Mutation::KeepOnlyCapabilities(vec![Capability::NetBindService]),
            Mutation::SetNoNewPrivileges,
        ]
    );
}

#[test]
fn bad_config_is_an_error_naming_the_key() {
    let err = TestPlugin::assert_refuses_config(component(), r#"{"drop": ["CAP_FLY"]}"#);
    assert!(err.contains("`drop`") && err.contains("CAP_FLY"), "{err}");
}
