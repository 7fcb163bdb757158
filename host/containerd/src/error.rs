//! The crate's one error type. Every variant names the container, image or socket it is about
//! and what failed, so the engine can put it in an audit record without re-deriving context.

use std::path::PathBuf;

use crate::spec::Missing;

/// Everything that can go wrong while talking to containerd or patching a spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image name from CRI does not follow the reference grammar.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The containerd namespace cannot be sent as a gRPC header value.
    #[error("invalid containerd namespace {namespace:?}")]
    InvalidNamespace {
        /// The namespace as given.
        namespace: String,
    },
    /// The gRPC channel to containerd's socket could not be opened.
    #[error("cannot connect to containerd at {}: {source}", socket.display())]
    Connect {
        /// containerd's gRPC socket.
        socket: PathBuf,
        /// What the transport said.
        #[source]
        source: tonic::transport::Error,
    },
    /// A containerd call failed (other than "not found", which has its own variants).
    #[error("containerd {call} for {subject} failed: {} ({:?})", source.message(), source.code())]
    Rpc {
        /// The service method, e.g. `Containers.Update`.
        call: &'static str,
        /// The container id, image reference or digest the call was about.
        subject: String,
        /// The gRPC status.
        #[source]
        source: tonic::Status,
    },
    /// No container record with this id (yet): NRI CreateContainer runs before it is stored.
    #[error("container {container_id} not found")]
    ContainerNotFound {
        /// The container id.
        container_id: String,
    },
    /// The container record carries no OCI spec.
    #[error("container {container_id} has no stored spec")]
    NoSpec {
        /// The container id.
        container_id: String,
    },
    /// The stored spec is not JSON that parses as an OCI runtime spec.
    #[error("stored spec of container {container_id} does not decode: {source}")]
    SpecDecode {
        /// The container id.
        container_id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A patched spec could not be encoded back to JSON.
    #[error("patched spec of container {container_id} does not encode: {source}")]
    SpecEncode {
        /// The container id.
        container_id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The container already has a task: its process spec was read when the task was created,
    /// so a patch of the stored spec would verify but not take effect (NRI StartContainer is
    /// already too late; patch at PostCreateContainer).
    #[error("container {container_id} already has a task: a spec patch would not take effect")]
    TaskExists {
        /// The container id.
        container_id: String,
    },
    /// After Update, reading the spec back shows a requested change is not in effect.
    #[error("container {container_id}: hardening not in effect after update: {missing}")]
    NotApplied {
        /// The container id.
        container_id: String,
        /// The first requested change that is missing.
        missing: Missing,
    },
    /// containerd has no image under this name, digest or id.
    #[error("image {image} not found in containerd namespace {namespace}")]
    ImageNotFound {
        /// The image as asked for.
        image: String,
        /// The containerd namespace searched.
        namespace: String,
    },
    /// A manifest, index or config blob is missing, too large, corrupt or unparseable.
    #[error("image {image}: blob {digest}: {what}")]
    ImageContent {
        /// The image as asked for.
        image: String,
        /// The blob's digest.
        digest: String,
        /// What is wrong with it.
        what: String,
    },
    /// A multi-platform image has no manifest for the platform containers run on here.
    #[error("image {image}: index {digest} has no manifest for {platform}")]
    NoPlatform {
        /// The image as asked for.
        image: String,
        /// The index digest.
        digest: String,
        /// The platform looked for, `os/architecture`.
        platform: String,
    },
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
