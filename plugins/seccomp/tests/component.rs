//! Tests the built component in the real bulkhead runtime, the way the node runs it: the crate
//! is compiled for wasm32-wasip2 from inside `cargo test`, and its config arrives as the JSON
//! document the daemon makes of the operator's `[plugins.config]` table. The plugin names
//! profiles the host holds, and the host resolves the names.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bulkhead_core::decision::{SeccompAction, SeccompProfile};
use bulkhead_sdk_testing::{
    Decision, HeldProfiles, Mutation, PluginLimits, RuntimeOptions, SeccompConfig, TestPlugin,
};

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

fn seccomp(decision: &Decision) -> Option<&SeccompProfile> {
    decision.mutations.iter().find_map(|m| match m {
        Mutation::SetSeccomp(p) => Some(&**p),
        _ => None,
    })
}

fn allowed(profile: &SeccompProfile) -> Vec<&str> {
    profile
        .syscalls
        .iter()
        .filter(|r| r.action == SeccompAction::Allow)
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect()
}

#[test]
fn unconfined_container_gets_the_default_profile() {
    let p = plugin("{}");
    assert_eq!(p.plugin().name(), "seccomp");
    let d = p.assert_allows(r#"{"event": "post-create-container"}"#);
    let profile = seccomp(&d).expect("a seccomp mutation");
    assert_eq!(profile.default_action, SeccompAction::Errno);
    assert_eq!(profile.default_errno, Some(1));
    assert_eq!(profile.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let allowed = allowed(profile);
    assert!(allowed.contains(&"execve") && allowed.contains(&"socket"));
    assert!(!allowed.contains(&"unshare") && !allowed.contains(&"mount"));
}

#[test]
fn existing_profile_is_kept_and_namespaces_pick_profiles() {
    let p = plugin(r#"{"namespace-profiles": {"batch": "strict"}}"#);
    let d = p.assert_allows(
        r#"{"event": "post-create-container", "seccomp": {"default-action": "SCMP_ACT_ALLOW"}}"#,
    );
    assert!(d.mutations.is_empty());
    let d = p.assert_allows(r#"{"event": "post-create-container", "pod": {"namespace": "batch"}}"#);
    assert!(!allowed(seccomp(&d).unwrap()).contains(&"socket"), "strict");
}

#[test]
fn operator_profile_held_by_the_host_and_annotation() {
    let seccomp_config: SeccompConfig = toml::from_str(
        r#"[profiles.web]
        default-action = "SCMP_ACT_ALLOW"
        syscalls = [{ names = ["ptrace", "bpf"], action = "SCMP_ACT_ERRNO", errno = 1 }]"#,
    )
    .unwrap();
    let options = RuntimeOptions {
        seccomp_profiles: Arc::new(HeldProfiles::from_config(&seccomp_config).unwrap()),
        ..RuntimeOptions::default()
    };
    let limits = PluginLimits {
        config: r#"{"annotation": "seccomp.bulkhead.dev/profile", "allowed-annotation-profiles": ["web"]}"#.into(),
        ..PluginLimits::default()
    };
    let p = TestPlugin::load_in(component(), options, limits).unwrap();
    let d = p.assert_allows(
        r#"{"event": "post-create-container",
            "pod": {"annotations": {"seccomp.bulkhead.dev/profile": "web"}}}"#,
    );
    assert_eq!(seccomp(&d).unwrap().default_action, SeccompAction::Allow);
    let reason = p.assert_denies(
        r#"{"event": "post-create-container",
            "pod": {"annotations": {"seccomp.bulkhead.dev/profile": "strict"}}}"#,
    );
    assert!(
        reason.ends_with("(rule allowed-annotation-profiles)"),
        "{reason}"
    );
}

#[test]
fn a_profile_the_host_does_not_hold_stops_the_plugin_from_loading() {
    // Only the built-ins are held here: `web` is a typo or a profile missing from this node.
    let err = TestPlugin::assert_refuses_config(component(), r#"{"default-profile": "web"}"#);
    assert!(
        err.contains("`default-profile`") && err.contains("it holds: default, strict"),
        "{err}"
    );
}

#[test]
fn the_default_profile_is_the_one_the_host_holds_shared_not_copied() {
    let held = HeldProfiles::default();
    let options = RuntimeOptions {
        seccomp_profiles: Arc::new(held.clone()),
        ..RuntimeOptions::default()
    };
    let p = TestPlugin::load_in(component(), options.clone(), PluginLimits::default()).unwrap();
    let d = p.assert_allows(r#"{"event": "post-create-container"}"#);
    let Some(Mutation::SetSeccomp(profile)) = d.mutations.first() else {
        panic!("expected a seccomp mutation: {d:?}");
    };
    assert!(Arc::ptr_eq(
        profile,
        &options.seccomp_profiles.get("default").unwrap().profile
    ));
    assert_eq!(profile.digest(), held.get("default").unwrap().digest);
}
