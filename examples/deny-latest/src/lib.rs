//! deny-latest: a bulkhead plugin that refuses images tagged `latest` unless the pod opts out.
//!
//! This file is only the export glue; the policy lives in [`policy`] where it unit-tests natively.

pub mod policy;

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// The plugin type handed to [`bulkhead_sdk::export_plugin!`].
pub struct DenyLatest;

impl Plugin for DenyLatest {
    fn metadata() -> PluginInfo {
        // CreateContainer is where a deny stops the container before it exists.
        PluginInfo::new(
            "deny-latest",
            env!("CARGO_PKG_VERSION"),
            [DecisionPoint::CreateContainer],
        )
    }

    fn validate_config(config: &str) -> Result<(), PluginError> {
        // Called once at load: a mistyped key fails `bulkhead check-config`, not every container.
        policy::Mode::from_config(config).map(drop)
    }

    fn check_container(container: Container) -> Result<Decision, PluginError> {
        let mode = policy::Mode::from_config(&bulkhead_sdk::config())?;
        Ok(policy::judge(&container, mode))
    }
}

bulkhead_sdk::export_plugin!(DenyLatest);
