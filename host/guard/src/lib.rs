//! bulkhead-guard: make containerd 2.1 fail closed when bulkhead is not running.
//!
//! containerd 2.1 has no "required NRI plugins" setting: while bulkhead is down (crashed,
//! upgrading, not yet started after boot), CRI containers start without any policy check. The
//! guard closes that gap with a static OCI hook installed through containerd's
//! `base_runtime_spec`, so it is part of every CRI container's spec whether bulkhead is up or
//! not. At task creation (`createRuntime`, before any process of the container runs) the hook
//! refuses every workload container that lacks a marker only bulkhead can write: annotation
//! [`MARKER_ANNOTATION`] holding [`marker`] — an HMAC-SHA256 of the container id under a
//! node-local key that only root can read. bulkhead adds it to the stored spec in NRI
//! PostCreateContainer, once it has admitted (and hardened) the container.
//!
//! - [`GuardKey`]: load (refusing a key others can read) and generate the key file;
//! - [`marker`] / [`verify`]: produce and check markers (constant-time);
//! - [`hook`]: the hook's decision on an OCI state;
//! - [`base_spec`]: the base runtime spec that installs the hook.
//!
//! The `bulkhead-guard` binary wraps these as `hook`, `init-key` and `print-base-spec`; see
//! `docs/guard.md` for installing it on a node.
//!
//! ```
//! use bulkhead_guard::{GuardKey, MARKER_ANNOTATION, marker, verify};
//!
//! # fn main() -> Result<(), bulkhead_guard::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("guard.key");
//! let key = GuardKey::generate(&path)?; // once per node: `bulkhead-guard init-key PATH`
//! let key = GuardKey::load(&path)?;     // the daemon at start-up
//! let id = "4a7d1ed414474e4033ac29ccb8653d9b";
//! let annotation = (MARKER_ANNOTATION, marker(&key, id)); // into the stored spec
//! assert!(verify(&key, id, &annotation.1));
//! assert!(!verify(&key, "another-container", &annotation.1));
//! # Ok(()) }
//! ```

pub mod base_spec;
mod error;
pub mod hook;
mod key;

pub use error::{Error, Result};
pub use key::{GuardKey, KEY_LEN, MARKER_LEN, marker, verify};

/// The annotation bulkhead writes into an admitted container's stored spec, holding
/// [`marker`] of the container id.
pub const MARKER_ANNOTATION: &str = "io.bulkhead.guard";

/// Where the key lives unless configured otherwise: root-only, read by bulkhead and the hook.
pub const DEFAULT_KEY_PATH: &str = "/etc/bulkhead/guard.key";
