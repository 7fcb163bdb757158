//! Host bindings generated from `sdk/wit`, the one definition of the plugin ABI.
//!
//! Kept private to the crate: the rest of bulkhead speaks `bulkhead-core` types, and `convert`
//! is the only place that touches the generated ones.

wasmtime::component::bindgen!({
    path: "../../sdk/wit",
    world: "security-plugin",
});
