//! Host bindings generated from `proto/wit`, the one definition of the plugin ABI, for every
//! version this host runs.
//!
//! Kept private to the crate: the rest of bulkhead speaks `bulkhead-core` types, and `convert`
//! is the only place that touches the generated ones.
//!
//! - [`current`]: `bulkhead:plugin@0.2.0` (`proto/wit`), what the SDK builds today.
//! - [`v0_1`]: `bulkhead:plugin@0.1.0` (`proto/wit/0.1.0`). Its `types` interface is the same as
//!   0.2.0's, so it is bound to the current Rust types (`with`): component-model values are
//!   checked structurally when a component is linked, so one set of conversions serves both, and
//!   a 0.1.0 component runs exactly as before. Only its `host` interface is its own.

/// `bulkhead:plugin@0.2.0`.
pub mod current {
    wasmtime::component::bindgen!({
        path: "../../proto/wit",
        world: "security-plugin",
    });
}

/// `bulkhead:plugin@0.1.0`, with the current version's types.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../proto/wit/0.1.0",
        world: "security-plugin",
        with: {
            "bulkhead:plugin/types@0.1.0": super::current::bulkhead::plugin::types,
        },
    });
}

pub use current::bulkhead::plugin::types;
