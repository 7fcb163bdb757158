//! The one error type of `bulkhead-runtime`: every way loading or calling a plugin can fail.
//!
//! Each variant names the plugin (its file when loading, its declared name once loaded) so that
//! logs, audit records and `bulkhead plugin test` output say *which* plugin misbehaved and how.
//! The engine maps these to the plugin's failure policy; [`Error::kind`] gives a stable label for
//! metrics.

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
    #[error("plugin {path}: incompatible with bulkhead:plugin@0.1.0: {reason}")]
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
    /// The plugin answered with an error of its own (`result::err(plugin-error)`).
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
    /// A stable, lower-case label for metrics and audit records (`timeout`, `trap`, ...).
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
            Error::Reported { .. } => "plugin-error",
            Error::InvalidOutput { .. } => "invalid-output",
        }
    }
}
