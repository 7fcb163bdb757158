//! Host bindings generated from `proto/wit`, the one definition of the plugin ABI, for every
//! version this host runs.
//!
//! Kept private to the crate: the rest of bulkhead speaks `bulkhead-core` types, and `convert`
//! is the only place that touches the generated ones.
//!
//! - [`current`]: `bulkhead:plugin@0.3.0` (`proto/wit`), what the SDK builds today.
//! - [`v0_2`]: `bulkhead:plugin@0.2.0` (`proto/wit/0.2.0`). 0.3.0 added a `mutation` case, so
//!   its `types` are its own, converted by the same code as the current ones (`convert`).
//! - [`v0_1`]: `bulkhead:plugin@0.1.0` (`proto/wit/0.1.0`). Its `types` interface is the same as
//!   0.2.0's, so it is bound to those Rust types (`with`): component-model values are checked
//!   structurally when a component is linked, so one set of conversions serves both. Only its
//!   `host` interface is its own.

/// `bulkhead:plugin@0.3.0`.
pub mod current {
    wasmtime::component::bindgen!({
        path: "../../proto/wit",
        world: "security-plugin",
    });
}

/// `bulkhead:plugin@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../proto/wit/0.2.0",
        world: "security-plugin",
    });
}

/// `bulkhead:plugin@0.1.0`, with 0.2.0's types.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../proto/wit/0.1.0",
        world: "security-plugin",
        with: {
            "bulkhead:plugin/types@0.1.0": super::v0_2::bulkhead::plugin::types,
        },
    });
}

pub use current::bulkhead::plugin::types;
