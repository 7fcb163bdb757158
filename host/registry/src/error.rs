//! Everything that can go wrong moving a component to or from a registry, in terms an operator
//! can act on: which reference, which digest, what was expected.

use thiserror::Error;

/// A registry operation that failed.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("{reference:?} is not an OCI reference: {reason}")]
    Reference {
        /// As written.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry could not be reached or refused the request.
    #[error("{reference}: {operation} failed: {reason}")]
    Registry {
        /// The reference.
        reference: String,
        /// `pull`, `push`, ...
        operation: &'static str,
        /// The client's error.
        reason: String,
    },
    /// Content did not have the digest that names it.
    #[error("{reference}: the {what} has digest {actual}, not {expected}: refused")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// `manifest` or `wasm layer`.
        what: &'static str,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// The artifact is not a Wasm component in the expected layout.
    #[error("{reference}: not a Wasm plugin artifact: {reason}")]
    NotAComponent {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cache directory cannot be used.
    #[error("plugin cache {path}: {reason}")]
    Cache {
        /// The file or directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The credentials file cannot be read.
    #[error("registry credentials {path}: {reason}")]
    Auth {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}
