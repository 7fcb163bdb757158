//! Wasm plugin components in OCI registries, as the Wasm OCI artifact layout has them (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), so components
//! published by other tools load and bulkhead's load elsewhere.
//!
//! - [`artifact`]: what a Wasm plugin artifact's manifest must hold, and its limits;
//! - [`transfer`]: push a component, pull one — every byte checked against the digests that
//!   name it before it is handed on;
//! - [`cache`]: the content-addressed store on disk a pulled component is kept in, verified
//!   again on every read, so a node without registry access still starts;
//! - [`signatures`]: cosign signatures stored next to a component, fetched and pushed;
//! - [`auth`]: credentials from a docker-style `config.json`;
//! - [`transport`]: which registries may be spoken to in plain HTTP (loopback, or the ones the
//!   operator names).

pub mod artifact;
pub mod auth;
pub mod cache;
mod error;
pub mod signatures;
pub mod transfer;
pub mod transport;

pub use error::RegistryError;
pub use transfer::{Component, Registry, RegistryOptions};

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
