//! image-policy: a first-party bulkhead plugin that decides which images may run.
//!
//! At `create-container` it checks the image's registry, repository, tag and digest against the
//! operator's lists; at `post-create-container`, where the process user is known, it refuses
//! images that would run as root. This file is only the export glue; the rules live in
//! [`policy`], where they unit-test natively. Operator docs: `docs/plugins/image-policy.md`.

pub mod policy;

use bulkhead_sdk::{Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};

/// The plugin type handed to [`bulkhead_sdk::export_plugin!`].
pub struct ImagePolicy;

impl Plugin for ImagePolicy {
    fn metadata() -> PluginInfo {
        // Static on purpose: metadata must never fail, so it does not read the config.
        // create-container refuses an image before the container exists; post-create-container
        // is the first point where the process user (pod override) is known.
        PluginInfo::new(
            policy::NAME,
            env!("CARGO_PKG_VERSION"),
            [
                DecisionPoint::CreateContainer,
                DecisionPoint::PostCreateContainer,
            ],
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

bulkhead_sdk::export_plugin!(ImagePolicy);
