//! The one error type of `bulkhead-core`: everything a pure parse or validation can reject.
//!
//! Configuration, plugins' output, case files and `bulkhead eval` input all pass through these
//! checks, so the messages name the offending key or value and say what would have been accepted.

/// A value that does not satisfy bulkhead's domain rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration file is not valid TOML for the schema.
    #[error("{0}")]
    ConfigSyntax(String),
    /// A configuration value breaks a rule the schema cannot express.
    #[error("{key}: {reason}")]
    InvalidConfig {
        /// The kebab-case key path, e.g. `nri.plugin-index`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A capability name the kernel does not define.
    #[error("unknown capability `{name}` (expected a kernel name such as CAP_NET_RAW)")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },
    /// A seccomp profile that the runtime would reject or misread.
    #[error("invalid seccomp profile: {reason}")]
    InvalidSeccomp {
        /// What is wrong, naming the rule or field.
        reason: String,
    },
    /// A decision larger than the host accepts (too many mutations or too much text).
    #[error("oversized decision: {reason}")]
    OversizedDecision {
        /// Which limit was passed, and by how much.
        reason: String,
    },
    /// A mutation whose payload makes no sense (relative path, empty name, ...).
    #[error("invalid {mutation} mutation: {reason}")]
    InvalidMutation {
        /// The mutation kind, in its kebab-case name.
        mutation: &'static str,
        /// What is wrong.
        reason: String,
    },
}
