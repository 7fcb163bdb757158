//! The one error type of `bulkhead-runtime`: every way loading or calling a plugin can fail.
//!
//! Each variant names the plugin (its file when loading, its declared name once loaded) so that
//! logs, audit records and `bulkhead plugin test` output say *which* plugin misbehaved and how.
//! The engine maps these to the plugin's failure policy; [`Error::kind`] gives a stable label for
//! metrics, audit records and case files' `expect.error`.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin could not be loaded, or one call to it did not produce a valid decision.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime itself could not be set up (engine config, pool, epoch thread).
    #[error("cannot set up the plugin runtime: {reason}")]
    Setup {
        /// What failed.
        reason: String,
    },
    /// The plugin file could not be read.
    #[error("plugin {path}: cannot read: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly component (a core module, garbage, or a compile error).
    #[error("plugin {path}: not a loadable WebAssembly component: {reason}")]
    NotAComponent {
        /// The plugin file.
        path: PathBuf,
        /// What wasmtime said.
        reason: String,
    },
    /// The component does not implement a world this host supports (wrong WIT version, missing
    /// export, mismatched types, or an import bulkhead does not provide).
    #[error(
        "plugin {path}: incompatible with bulkhead:plugin@0.3.0, @0.2.0 and @0.1.0 (the ABI versions this host runs): {reason}"
    )]
    Incompatible {
        /// The plugin file.
        path: PathBuf,
        /// Which import or export did not match.
        reason: String,
    },
    /// The plugin loaded but its `metadata` call failed or returned nonsense.
    #[error("plugin {path}: metadata() failed: {reason}")]
    Metadata {
        /// The plugin file.
        path: PathBuf,
        /// The underlying failure.
        reason: String,
    },
    /// The call ran past its time budget and was interrupted.
    #[error("plugin {plugin}: timed out after {elapsed:?} (budget {budget:?})")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The configured budget.
        budget: Duration,
        /// How long the call actually ran.
        elapsed: Duration,
    },
    /// The plugin tried to grow its memory past its cap.
    #[error("plugin {plugin}: exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The configured cap in bytes.
        limit: usize,
    },
    /// The plugin ran out of fuel.
    #[error("plugin {plugin}: ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// Plugin name.
        plugin: String,
        /// The configured fuel.
        fuel: u64,
    },
    /// The plugin trapped: a panic, `unreachable`, stack overflow, a denied WASI call, ...
    #[error("plugin {plugin}: trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap and, when the plugin logged one just before, its last error line (panic
        /// messages arrive that way through the SDK).
        message: String,
    },
    /// A fresh instance could not be created (for example the instance pool is exhausted).
    #[error("plugin {plugin}: cannot instantiate: {reason}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// What wasmtime said.
        reason: String,
    },
    /// The plugin answered with an error of its own (`result::err(plugin-error)`). Its WIT case
    /// is kept as [`Error::kind`], because "the operator's config is unusable" and "the plugin
    /// has a bug" call for different fixes.
    #[error("plugin {plugin}: reported an error: {message}")]
    Reported {
        /// Plugin name.
        plugin: String,
        /// The kind of error the plugin reported (`invalid-config`, `unsupported`, `internal`).
        kind: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin's decision failed validation (unknown capability, malformed seccomp, ...).
    #[error("plugin {plugin}: returned an invalid decision: {source}")]
    InvalidOutput {
        /// Plugin name.
        plugin: String,
        /// The rule the decision broke.
        source: bulkhead_core::Error,
    },
}

impl Error {
    /// Every label [`Error::kind`] can return, so tools that accept a kind by name (case files'
    /// `expect.error`) can refuse a misspelt one instead of never matching it. Keep in step with
    /// [`Error::kind`] (the `every_kind_is_listed` test builds one error of each variant).
    pub const KINDS: &'static [&'static str] = &[
        "setup",
        "read",
        "not-a-component",
        "incompatible",
        "metadata",
        "timeout",
        "memory-limit",
        "out-of-fuel",
        "trap",
        "instantiate",
        "invalid-config",
        "unsupported",
        "internal",
        "invalid-output",
    ];

    /// The kinds of [`Error::Reported`], one per case of the WIT `plugin-error` variant.
    pub const REPORTED_KINDS: &'static [&'static str] =
        &["invalid-config", "unsupported", "internal"];

    /// A stable, lower-case label for metrics and audit records (`timeout`, `trap`, ...). An
    /// error the plugin reported itself is labelled by its WIT case (`invalid-config`,
    /// `unsupported`, `internal`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Setup { .. } => "setup",
            Error::Read { .. } => "read",
            Error::NotAComponent { .. } => "not-a-component",
            Error::Incompatible { .. } => "incompatible",
            Error::Metadata { .. } => "metadata",
            Error::Timeout { .. } => "timeout",
            Error::MemoryLimit { .. } => "memory-limit",
            Error::OutOfFuel { .. } => "out-of-fuel",
            Error::Trap { .. } => "trap",
            Error::Instantiate { .. } => "instantiate",
            Error::Reported { kind, .. } => kind,
            Error::InvalidOutput { .. } => "invalid-output",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(kind: &'static str) -> Error {
        Error::Reported {
            plugin: "p".into(),
            kind,
            message: "m".into(),
        }
    }

    #[test]
    fn reported_errors_keep_their_wit_case_as_kind() {
        for kind in Error::REPORTED_KINDS {
            assert_eq!(reported(kind).kind(), *kind);
        }
    }

    #[test]
    fn every_kind_is_listed() {
        let path = PathBuf::from("p.wasm");
        let plugin = || "p".to_string();
        let errors = [
            Error::Setup { reason: "r".into() },
            Error::Read {
                path: path.clone(),
                source: std::io::Error::other("x"),
            },
            Error::NotAComponent {
                path: path.clone(),
                reason: "r".into(),
            },
            Error::Incompatible {
                path: path.clone(),
                reason: "r".into(),
            },
            Error::Metadata {
                path,
                reason: "r".into(),
            },
            Error::Timeout {
                plugin: plugin(),
                budget: Duration::ZERO,
                elapsed: Duration::ZERO,
            },
            Error::MemoryLimit {
                plugin: plugin(),
                limit: 0,
            },
            Error::OutOfFuel {
                plugin: plugin(),
                fuel: 0,
            },
            Error::Trap {
                plugin: plugin(),
                message: "m".into(),
            },
            Error::Instantiate {
                plugin: plugin(),
                reason: "r".into(),
            },
            reported("invalid-config"),
            reported("unsupported"),
            reported("internal"),
            Error::InvalidOutput {
                plugin: plugin(),
                source: bulkhead_core::Error::UnknownCapability {
                    name: "CAP_X".into(),
                },
            },
        ];
        let kinds: Vec<&str> = errors.iter().map(Error::kind).collect();
        assert_eq!(kinds, Error::KINDS);
    }
}
