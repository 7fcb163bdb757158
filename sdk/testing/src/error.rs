//! The one error type of `bulkhead-sdk-testing`.

use std::path::PathBuf;

/// Why a plugin could not be built, loaded or tested.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime refused the plugin or a call failed.
    #[error(transparent)]
    Runtime(#[from] bulkhead_runtime::Error),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A case file is malformed. `case` is empty for file-level problems.
    #[error("{path}: {}{reason}", if case.is_empty() { String::new() } else { format!("case {case}: ") })]
    CaseFile {
        /// The case file.
        path: PathBuf,
        /// The case's name (or `#index` when it has none).
        case: String,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A JSON container view given inline could not be parsed.
    #[error("invalid container view: {0}")]
    View(serde_json::Error),
    /// Building the plugin component with cargo failed.
    #[error("building the plugin component failed: {reason}")]
    Build {
        /// What went wrong (cargo's exit status, or the missing artifact).
        reason: String,
    },
}
