//! Test bulkhead plugins against the real runtime, without containerd.
//!
//! [`TestPlugin`] loads a built component into `bulkhead-runtime` — the same code, limits and
//! sandbox the daemon uses — so a passing test means the node will decide the same way.
//! [`cases`] runs JSON case files (what `bulkhead plugin test` runs in CI), and
//! [`build_component`] builds a plugin crate for `wasm32-wasip2` from inside `cargo test`.
//!
//! ```no_run
//! use bulkhead_sdk_testing::TestPlugin;
//!
//! let wasm = bulkhead_sdk_testing::build_component(env!("CARGO_MANIFEST_DIR").as_ref()).unwrap();
//! let plugin = TestPlugin::load(&wasm).unwrap();
//! let decision = plugin.check_json(r#"{"image": {"tag": "latest"}}"#).unwrap();
//! assert!(decision.is_deny());
//! ```

mod build;
pub mod cases;
mod error;

use std::path::Path;

pub use build::{TARGET, build_component};
pub use bulkhead_core::config::SeccompConfig;
pub use bulkhead_core::decision::{Capability, Decision, Mutation, Verdict};
pub use bulkhead_core::seccomp_profiles::HeldProfiles;
pub use bulkhead_core::view::ContainerView;
pub use bulkhead_runtime::{Plugin, PluginLimits, Runtime, RuntimeOptions};
pub use error::Error;

/// A plugin loaded into its own runtime, ready for assertions.
#[derive(Debug)]
pub struct TestPlugin {
    plugin: Plugin,
    // Declared after `plugin`: dropped last.
    _runtime: Runtime,
}

impl TestPlugin {
    /// Loads the component at `path` with default limits.
    pub fn load(path: impl AsRef<Path>) -> Result<TestPlugin, Error> {
        TestPlugin::load_with(path, PluginLimits::default())
    }

    /// Loads the component at `path` with `limits` (for example a config string).
    pub fn load_with(path: impl AsRef<Path>, limits: PluginLimits) -> Result<TestPlugin, Error> {
        TestPlugin::load_in(
            path,
            RuntimeOptions {
                max_instances: 8,
                ..RuntimeOptions::default()
            },
            limits,
        )
    }

    /// Loads the component at `path` with `limits` into a runtime built with `options`: for
    /// example the seccomp profiles a node's host holds (`seccomp_profiles`, from
    /// [`HeldProfiles::from_config`]), for plugins that name them.
    pub fn load_in(
        path: impl AsRef<Path>,
        options: RuntimeOptions,
        limits: PluginLimits,
    ) -> Result<TestPlugin, Error> {
        let runtime = Runtime::new(options)?;
        let plugin = runtime.load(path.as_ref(), limits)?;
        Ok(TestPlugin {
            plugin,
            _runtime: runtime,
        })
    }

    /// Asserts the component at `path` refuses `config` (its JSON config) when loaded — its
    /// `validate-config` answer, which an operator sees at `bulkhead check-config` — and returns
    /// the error message (to check it names the key).
    #[track_caller]
    pub fn assert_refuses_config(path: impl AsRef<Path>, config: &str) -> String {
        let limits = PluginLimits {
            config: config.into(),
            ..PluginLimits::default()
        };
        match TestPlugin::load_with(path, limits) {
            Ok(loaded) => panic!("{} accepted config {config}", loaded.plugin.name()),
            Err(err) => {
                let message = err.to_string();
                assert!(
                    message.contains("config key") || message.contains("invalid-config"),
                    "not a config refusal: {message}"
                );
                message
            }
        }
    }

    /// The loaded plugin (name, metadata, digest).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Runs `check-container` on `view`.
    pub fn check(&self, view: &ContainerView) -> Result<Decision, Error> {
        Ok(self.plugin.check_container(view)?)
    }

    /// Runs `check-container` on a view written as JSON (any field may be left out).
    pub fn check_json(&self, view: &str) -> Result<Decision, Error> {
        let view: ContainerView = serde_json::from_str(view).map_err(Error::View)?;
        self.check(&view)
    }

    /// Asserts the plugin allows `view` and returns the decision (to check its mutations).
    #[track_caller]
    pub fn assert_allows(&self, view: &str) -> Decision {
        match self.check_json(view) {
            Ok(d) if !d.is_deny() => d,
            other => panic!(
                "expected {} to allow {view}, got {other:?}",
                self.plugin.name()
            ),
        }
    }

    /// Asserts the plugin denies `view` and returns the reason.
    #[track_caller]
    pub fn assert_denies(&self, view: &str) -> String {
        match self.check_json(view) {
            Ok(Decision {
                verdict: Verdict::Deny(reason),
                ..
            }) => reason,
            other => panic!(
                "expected {} to deny {view}, got {other:?}",
                self.plugin.name()
            ),
        }
    }
}
