//! Write bulkhead security plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`], exported with [`export_plugin!`] and built for
//! `wasm32-wasip2`. The types ([`Container`], [`Decision`], [`Mutation`], ...) are generated from
//! the same WIT (`proto/wit`, `bulkhead:plugin@0.3.0`) the host uses, so they cannot drift from what bulkhead sends and
//! expects. On top of them this crate adds builders ([`Decision::deny`],
//! [`Decision::drop_capabilities`], [`SeccompBuilder`]), a [`Capability`] enum and lookup helpers
//! on [`Container`].
//!
//! Plugin logic compiles and unit-tests natively with plain `cargo test`: the generated types are
//! ordinary Rust structs, and [`log`]/[`config`] fall back to stderr and a test-settable value
//! off Wasm.
//!
//! With the `config-json` feature, `parse_config` reads a plugin's JSON config into its serde
//! `Config` type, with errors that name the key at fault.
//!
//! ```
//! use bulkhead_sdk::{Capability, Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo};
//!
//! struct NoRaw;
//!
//! impl Plugin for NoRaw {
//!     fn metadata() -> PluginInfo {
//!         PluginInfo::new("no-raw", "0.1.0", [DecisionPoint::PostCreateContainer])
//!     }
//!
//!     fn check_container(container: Container) -> Result<Decision, PluginError> {
//!         if container.privileged {
//!             return Ok(Decision::deny("privileged containers are not allowed"));
//!         }
//!         Ok(Decision::allow().drop_capabilities([Capability::NetRaw]))
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib", "rlib"]):
//! // bulkhead_sdk::export_plugin!(NoRaw);
//! ```

mod capability;
#[cfg(feature = "config-json")]
mod config_json;
mod container;
mod decision;
mod host;
mod seccomp;

/// Bindings generated from `proto/wit` by `wit-bindgen`. Most plugins only need the re-exports at
/// the crate root.
#[allow(
    missing_docs,
    reason = "generated modules and traits; every WIT type is documented"
)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "security-plugin",
        pub_export_macro: true,
        default_bindings_module: "bulkhead_sdk::bindings",
    });
}

pub use bindings::bulkhead::plugin::types::{
    Capabilities, Container, Decision, DecisionPoint, HostNamespaces, Image, ImageConfig, LogLevel,
    Mount, Mutation, PluginError, PluginInfo, Pod, Process, Rlimit, SeccompAction, SeccompArg,
    SeccompOperator, SeccompProfile, SeccompSyscall, SecretMount, User, Verdict,
};
pub use capability::{Capability, UnknownCapability};
#[cfg(feature = "config-json")]
pub use config_json::parse_config;
pub use host::{config, log, seccomp_profiles, with_config, with_seccomp_profiles};
pub use seccomp::SeccompBuilder;

/// A security plugin. Every function is called in a fresh instance each time: keep no state
/// between calls (it would not survive anyway).
pub trait Plugin {
    /// Name, version and the decision points the plugin wants. Read once at load.
    fn metadata() -> PluginInfo;

    /// Checks the operator's config (`config` is the JSON object of the plugin's
    /// `[plugins.config]` table, `{}` when absent), once, when the host loads the plugin. Return
    /// `PluginError::InvalidConfig` naming the key at fault: the host then refuses to load the
    /// plugin (`bulkhead check-config` and `bulkhead run` fail at start) instead of the plugin
    /// refusing every container later. The default accepts any config.
    fn validate_config(config: &str) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Judges one container. Return `Err` only when the plugin cannot judge (bad config,
    /// unsupported input); the operator's failure policy then decides.
    fn check_container(container: Container) -> Result<Decision, PluginError>;
}

/// Exports a [`Plugin`] implementation as the component's `metadata`, `validate-config` and
/// `check-container`.
///
/// Use it once, at the root of the plugin crate: `bulkhead_sdk::export_plugin!(MyPlugin);`.
/// It also installs a panic hook that sends the panic message to the host log, so a panicking
/// plugin's trap comes with its message.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __BulkheadExport;

        impl $crate::bindings::Guest for __BulkheadExport {
            fn metadata() -> $crate::PluginInfo {
                $crate::__private::install_panic_hook();
                <$plugin as $crate::Plugin>::metadata()
            }

            fn validate_config(
                config: ::std::string::String,
            ) -> ::core::result::Result<(), $crate::PluginError> {
                $crate::__private::install_panic_hook();
                <$plugin as $crate::Plugin>::validate_config(&config)
            }

            fn check_container(
                container: $crate::Container,
            ) -> ::core::result::Result<$crate::Decision, $crate::PluginError> {
                $crate::__private::install_panic_hook();
                <$plugin as $crate::Plugin>::check_container(container)
            }
        }

        $crate::bindings::export!(__BulkheadExport with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    /// Routes panic messages to the host log at error level (instead of stderr, which a plugin
    /// does not have).
    pub fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::log(crate::LogLevel::Error, &format!("plugin panicked: {info}"));
            }));
        });
    }
}

impl PluginInfo {
    /// Builds plugin metadata.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        decision_points: impl IntoIterator<Item = DecisionPoint>,
    ) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            decision_points: decision_points.into_iter().collect(),
        }
    }
}
