//! capabilities: a first-party bulkhead plugin that refuses privileged and over-capable
//! containers and trims the capabilities the rest run with.
//!
//! This file is only the export glue; the rules live in [`policy`], where they unit-test
//! natively. Operator docs: `docs/plugins/capabilities.md`.

pub mod policy;

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// The plugin type handed to [`bulkhead_sdk::export_plugin!`].
pub struct Capabilities;

impl Plugin for Capabilities {
    fn metadata() -> PluginInfo {
        // Static on purpose: metadata must never fail, so it does not read the config.
        // post-create-container is the first point where the capability sets are known, and the
        // only one where they can still be changed.
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

bulkhead_sdk::export_plugin!(Capabilities);
