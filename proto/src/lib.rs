//! Wire messages for bulkhead's conversation with containerd over NRI.
//!
//! Two protobuf packages, compiled from this crate's own `.proto` files by prost:
//! - [`nri`]: the NRI API messages (wire format of NRI v0.8, as containerd 2.0/2.1 speak it, with
//!   newer fields declared so later runtimes decode too);
//! - [`ttrpc`]: the request/response envelopes of the ttrpc protocol that carries them.
//!
//! The services are hand-dispatched by the daemon's `nri` module, so only messages are generated.
//!
//! ```
//! use prost::Message;
//! use bulkhead_proto::nri::RegisterPluginRequest;
//!
//! let request = RegisterPluginRequest {
//!     plugin_name: "bulkhead".into(),
//!     plugin_idx: "50".into(),
//!     ..Default::default()
//! };
//! let bytes = request.encode_to_vec();
//! assert_eq!(RegisterPluginRequest::decode(bytes.as_slice()).unwrap(), request);
//! ```

/// NRI API messages (`nri.pkg.api.v1alpha1`).
#[allow(
    missing_docs,
    clippy::doc_lazy_continuation,
    clippy::enum_variant_names
)]
pub mod nri {
    include!(concat!(env!("OUT_DIR"), "/nri.pkg.api.v1alpha1.rs"));

    /// Fully qualified name of the service bulkhead serves on mux connection 1.
    pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";
    /// Fully qualified name of the service containerd serves on mux connection 2.
    pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
}

/// ttrpc envelope messages (`ttrpc`).
#[allow(missing_docs)]
pub mod ttrpc {
    include!(concat!(env!("OUT_DIR"), "/ttrpc.rs"));
}
