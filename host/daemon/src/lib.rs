//! The bulkhead node agent as a library: the binary in `main.rs` parses the command line and
//! calls in here, and tests and benchmarks drive the same code.
//!
//! - [`engine`]: what happens on an event — context, plugin chain, merge, enforcement, audit;
//! - [`secrets`]: granted secrets materialized on a private tmpfs and bind-mounted read-only;
//! - [`configuration`]: where the configuration comes from, and the chain it describes;
//! - [`daemon`]: `bulkhead run` — configuration, preflight checks, loading plugins, the session
//!   loop;
//! - [`telemetry`]: Prometheus metrics, liveness and readiness on `[metrics] address`;
//! - [`reload`]: a new configuration put in effect on SIGHUP or a file change, between events;
//! - [`schema`]: the JSON Schemas of the container view, decisions and case files
//!   (`bulkhead schema`).
//!
//! The NRI protocol — how containerd tells bulkhead about pods and containers — is its own
//! crate, `bulkhead-nri`; the engine implements its `EventHandler`.

pub mod configuration;
pub mod daemon;
pub mod engine;
pub mod reload;
pub mod schema;
pub mod secrets;
pub mod telemetry;
