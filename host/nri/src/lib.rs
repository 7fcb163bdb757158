//! bulkhead's side of NRI: the protocol containerd uses to consult plugins on every pod and
//! container lifecycle event.
//!
//! Layers, bottom up:
//! - [`mux`]: logical connections over one unix socket (outgoing frames ≤ 4096 bytes);
//! - [`ttrpc`]: message framing and reassembly on one logical connection;
//! - [`link`]: the live socket — reader and writer tasks, the ttrpc client on connection 2;
//! - [`server`]: the ttrpc server on connection 1, answering every request before its deadline;
//! - [`plugin_service`]: the NRI `Plugin` service (Configure, Synchronize, events);
//! - [`convert`]: wire messages into `bulkhead-core` types;
//! - [`session`]: registration, the handshake, and reconnection with capped backoff;
//! - [`status`]: readiness and reconnections, for the daemon's health endpoints and metrics.
//!
//! What happens *on* an event is up to an [`EventHandler`]; this crate only guarantees that the
//! handler is asked, and that containerd gets an answer in time. Which NRI level the runtime
//! speaks is learned at Configure (`RuntimeInfo::nri_level`): v0.12's RPC per event and older
//! runtimes' `StateChange` reach the handler as the same events, so nothing above this crate
//! knows wire versions.

pub mod convert;
pub mod handler;
pub mod link;
pub mod mux;
pub mod plugin_service;
pub mod server;
pub mod session;
pub mod status;
pub mod ttrpc;

pub use handler::{Adjustment, Deadline, EventHandler, ObserveOnly, Outcome, PendingAdjustment};
pub use session::{Registration, run, run_observed};
pub use status::SessionStatus;

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong talking NRI.
#[derive(Debug, Error)]
pub enum NriError {
    /// The NRI socket could not be reached.
    #[error("cannot connect to the NRI socket {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("NRI socket I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a mux frame larger than any valid message.
    #[error("mux frame on connection {connection} announces {length} bytes, more than allowed")]
    FrameTooLarge {
        /// Logical connection id.
        connection: u32,
        /// Announced payload length.
        length: usize,
    },
    /// The socket closed in the middle of a frame.
    #[error("mux frame on connection {connection} truncated (announced {length} bytes)")]
    TruncatedFrame {
        /// Logical connection id.
        connection: u32,
        /// Announced payload length.
        length: usize,
    },
    /// A ttrpc message is larger than the 4 MiB ttrpc allows.
    #[error("ttrpc message of {length} bytes exceeds the 4 MiB limit")]
    MessageTooLarge {
        /// Announced or actual payload length.
        length: usize,
    },
    /// A protobuf message could not be decoded.
    #[error("malformed {what}: {source}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// Cause.
        source: prost::DecodeError,
    },
    /// The runtime answered a call with an error status.
    #[error("{method} failed with status {code}: {message}")]
    Status {
        /// Method called.
        method: String,
        /// gRPC status code.
        code: i32,
        /// The runtime's message.
        message: String,
    },
    /// The runtime refused to register bulkhead; retrying will not help.
    #[error(
        "containerd rejected the registration of plugin {name:?} with index {index:?}: {message}"
    )]
    RegistrationRejected {
        /// Plugin name sent.
        name: String,
        /// Plugin index sent.
        index: String,
        /// containerd's message.
        message: String,
    },
    /// A call got no answer in time.
    #[error("{method}: no answer from the runtime within {timeout_ms} ms")]
    Timeout {
        /// Method called.
        method: String,
        /// How long bulkhead waited.
        timeout_ms: u128,
    },
    /// The handshake did not complete in time.
    #[error("the runtime did not configure and synchronize bulkhead within {timeout_ms} ms")]
    HandshakeTimeout {
        /// How long bulkhead waited.
        timeout_ms: u128,
    },
    /// The connection closed while a call was waiting for its answer.
    #[error("the NRI connection closed")]
    Closed,
}
