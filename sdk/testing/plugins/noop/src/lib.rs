//! The smallest possible plugin: allows everything, changes nothing. It measures the fixed cost
//! of a call (fresh instance, passing the view in, reading the decision out).

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// Allows every container.
pub struct Noop;

impl Plugin for Noop {
    fn metadata() -> PluginInfo {
        PluginInfo::new("noop", "0.1.0", [DecisionPoint::CreateContainer])
    }

    fn check_container(_container: Container) -> Result<Decision, PluginError> {
        Ok(Decision::allow())
    }
}

bulkhead_sdk::export_plugin!(Noop);
