//! The one error type of bulkhead-guard.
//!
//! No variant carries key material: a key file is only ever named by its path, its mode or its
//! length, so errors can be logged and shown to the CRI caller (a hook's stderr reaches it).

use std::io;
use std::path::PathBuf;

/// What can go wrong loading or creating the key, or reading what runc hands the hook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file could not be opened or read.
    #[error("cannot read guard key {path}: {source}")]
    KeyRead {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The key file is not a regular file (a directory, a device, a fifo...).
    #[error("guard key {path} is not a regular file")]
    KeyNotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is not owned by root: its owner could read or replace the key, so a
    /// non-root user could forge markers. Refused whatever its mode.
    #[error("guard key {path} is owned by uid {uid}, not root (chown root:root)")]
    KeyOwner {
        /// The key file.
        path: PathBuf,
        /// The uid that owns it.
        uid: u32,
    },
    /// The key file grants group or others any access: the key may already be known to a
    /// non-root user, so it is refused rather than trusted.
    #[error(
        "guard key {path} has mode {mode:04o}: group and others must have no access (chmod 600)"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold exactly [`crate::KEY_LEN`] bytes.
    #[error("guard key {path} holds {len} bytes, expected {expected}", expected = crate::KEY_LEN)]
    KeyLength {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// [`crate::GuardKey::generate`] found a file already there. Replacing a key in use would
    /// invalidate every marker already written and lock out created-but-unstarted containers.
    #[error("guard key {path} already exists; refusing to replace it")]
    KeyExists {
        /// The key file.
        path: PathBuf,
    },
    /// Writing a new key failed.
    #[error("cannot write guard key {path}: {source}")]
    KeyWrite {
        /// The key file (or the directory it goes in).
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("cannot get random bytes for a new guard key: {0}")]
    Random(getrandom::Error),
    /// The OCI state runc wrote to the hook's stdin could not be read or parsed.
    #[error("invalid OCI state on stdin: {source}")]
    State {
        /// The parse error.
        source: serde_json::Error,
    },
    /// The bundle's `config.json` could not be read.
    #[error("cannot read bundle config {path}: {source}")]
    BundleRead {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The bundle's `config.json` is not a valid OCI spec (as far as annotations go).
    #[error("invalid bundle config {path}: {source}")]
    BundleParse {
        /// The config file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
