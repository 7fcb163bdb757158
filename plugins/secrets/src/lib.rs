//! secrets: a first-party bulkhead plugin that mounts the secrets a pod asks for by annotation,
//! when the operator granted them to the pod's namespace.
//!
//! The plugin sees secret names only, never values: it answers `mount-secret(name, target,
//! 0400)` and the host materializes the secret. This file is only the export glue; the rules
//! live in [`policy`], where they unit-test natively. Operator docs: `docs/plugins/secrets.md`.

pub mod policy;

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// The plugin type handed to [`bulkhead_sdk::export_plugin!`].
pub struct Secrets;

impl Plugin for Secrets {
    fn metadata() -> PluginInfo {
        // Static on purpose: metadata must never fail, so it does not read the config.
        // post-create-container is the only point where mounts can still be added.
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
        Ok(policy::judge(&container, &config))
    }
}

bulkhead_sdk::export_plugin!(Secrets);
