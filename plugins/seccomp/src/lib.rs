//! seccomp: a first-party bulkhead plugin that gives every container running unconfined a seccomp
//! profile.
//!
//! Containers without a profile get bulkhead's built-in `default` allow-list (see [`builtin`]),
//! or the profile the operator picks per namespace or lets a pod pick by annotation. This file is
//! only the export glue; the choice lives in [`policy`], where it unit-tests natively. Operator
//! docs: `docs/plugins/seccomp.md`.

pub mod builtin;
pub mod policy;
pub mod profile;
pub mod syscalls;

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
        // The same parse as every call: a mistake is caught at load, naming the key.
        policy::Config::from_json(config).map(drop)
    }

    fn check_container(container: Container) -> Result<Decision, PluginError> {
        let config = policy::Config::from_json(&bulkhead_sdk::config())?;
        policy::judge(&container, &config)
    }
}

bulkhead_sdk::export_plugin!(Seccomp);
