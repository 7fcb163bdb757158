//! Tests the built component in the real bulkhead runtime, the way the node runs it: the crate
//! is compiled for wasm32-wasip2 from inside `cargo test`, and its config arrives as the JSON
//! document the daemon makes of the operator's `[plugins.config]` table.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulkhead_core::decision::SecretMount;
use bulkhead_sdk_testing::{Mutation, PluginLimits, TestPlugin};

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

const GRANTS: &str = r#"{"grants": [{"namespaces": ["team-a"], "secrets": ["db-password"]}, {"namespaces": ["*"], "secrets": ["ca-bundle"]}]}"#;

#[test]
fn granted_secret_is_mounted_read_only_for_the_owner() {
    let p = plugin(GRANTS);
    assert_eq!(p.plugin().name(), "secrets");
    let d = p.assert_allows(
        r#"{"event": "post-create-container", "pod": {"namespace": "team-a",
            "annotations": {"secrets.bulkhead.dev/db-password": "/run/secrets/db"}}}"#,
    );
    assert_eq!(
        d.mutations,
        [Mutation::MountSecret(SecretMount {
            secret: "db-password".into(),
            target: "/run/secrets/db".into(),
            mode: 0o400,
        })]
    );
    assert!(
        p.assert_allows(r#"{"event": "post-create-container", "pod": {"namespace": "team-a"}}"#)
            .mutations
            .is_empty()
    );
}

#[test]
fn ungranted_or_malformed_requests_are_denied() {
    let p = plugin(GRANTS);
    let reason = p.assert_denies(
        r#"{"event": "post-create-container", "pod": {"namespace": "team-b",
            "annotations": {"secrets.bulkhead.dev/db-password": "/run/secrets/db"}}}"#,
    );
    assert_eq!(
        reason,
        r#"secrets: secret "db-password" is not granted to namespace "team-b""#
    );
    let reason = p.assert_denies(
        r#"{"event": "post-create-container", "pod": {"namespace": "team-a",
            "annotations": {"secrets.bulkhead.dev/db-password": "../etc/shadow"}}}"#,
    );
    assert!(reason.contains("absolute file path"), "{reason}");
}

#[test]
fn bad_config_is_an_error_naming_the_key() {
    let err = TestPlugin::assert_refuses_config(
        component(),
        r#"{"grants": [{"namespaces": ["a"], "secrets": ["Bad/Name"]}]}"#,
    );
    assert!(err.contains("`grants[0].secrets`"), "{err}");
}
