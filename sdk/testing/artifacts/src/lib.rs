//! Paths of bulkhead's own test plugins, built as `wasm32-wasip2` components by this crate's
//! build script. Used as a dev-dependency by the runtime's tests and benchmarks and by
//! `bulkhead-sdk-testing`'s tests; never shipped.
//!
//! - [`NOOP`]: allows everything (the fixed cost of a call).
//! - [`REALISTIC`]: a small baseline policy over the whole view (the cost of a real call).
//! - [`HOSTILE`]: misbehaves as its config string says (`loop`, `grow-memory`, `recurse`,
//!   `panic`, `log-flood`, `bad-capability`, `bad-seccomp`, `report-error`, `read-clock`).
//! - [`SCRIPTED`]: name, decision points and answer from its JSON config (the e2e tests).
//! - [`WRONG_VERSION`]: built against `bulkhead:plugin@0.9.0`; must fail to load.
//! - [`SCRIPTED_V0_1`], [`SCRIPTED_V0_2`]: the scripted plugin as built against
//!   `bulkhead:plugin@0.1.0` and `@0.2.0`, kept (not rebuilt) to prove that components of earlier
//!   ABIs keep loading and deciding.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The scripted plugin built against `bulkhead:plugin@0.1.0` before 0.2.0 existed; kept in
/// `kept/` (see its README) and never rebuilt.
pub const SCRIPTED_V0_1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kept/scripted-0.1.0.wasm");

/// The scripted plugin built against `bulkhead:plugin@0.2.0` before 0.3.0 existed; kept in
/// `kept/` (see its README) and never rebuilt.
pub const SCRIPTED_V0_2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kept/scripted-0.2.0.wasm");
