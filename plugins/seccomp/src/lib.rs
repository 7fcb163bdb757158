//! seccomp: a first-party bulkhead plugin that gives every container running unconfined a seccomp
//! profile.
//!
//! Containers without a profile get bulkhead's built-in `default` allow-list, or the profile the
//! operator picks per namespace or lets a pod pick by annotation. The host holds the profiles
//! (its built-ins and the operator's `[seccomp.profiles]`); the plugin only names one, so no
//! profile crosses the sandbox boundary. This file is only the export glue; the choice lives in
//! [`policy`], where it unit-tests natively. Operator docs: `docs/plugins/seccomp.md`.

pub mod policy;

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// The plugin type handed to [`bulkhead_sdk::export_plugin!`].
pub struct Seccomp;

impl Plugin for Seccomp {
    fn metadata() -> PluginInfo {
        // Static on purpose: metadata must never fail, so it does not read the config.
        // post-create-container is where the spec's seccomp field is known and can be set.
        PluginInfo::new(
            policy::NAME,
            env!("CARGO_PKG_VERSION"),
            [DecisionPoint::PostCreateContainer],
        )
    }

    fn validate_config(config: &str) -> Result<(), PluginError> {
        // Every reference is checked against what the host holds once, here, at load.
        policy::Config::from_json(config)?.validate(&bulkhead_sdk::seccomp_profiles())
    }

    fn check_container(container: Container) -> Result<Decision, PluginError> {
        // The host loaded the plugin only after `validate_config` accepted this same text, and
        // resolves the name itself: parsing is all a call needs.
        let config = policy::Config::from_json(&bulkhead_sdk::config())?;
        Ok(policy::judge(&container, &config))
    }
}

bulkhead_sdk::export_plugin!(Seccomp);
