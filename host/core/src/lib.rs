//! bulkhead's pure domain: the pods, containers and lifecycle events the runtime reports, the
//! daemon's configuration, and the types every other crate speaks in.
//!
//! Nothing here does I/O. The NRI layer decodes wire messages *into* these types, the engine and
//! the Wasm runtime consume them, so a change of wire protocol never ripples into policy code.
//!
//! ```
//! use bulkhead_core::config::Config;
//!
//! let config = Config::from_toml("[nri]\nplugin-index = \"10\"\n").unwrap();
//! assert_eq!(config.nri.plugin_name, "bulkhead");
//! ```

pub mod config;
pub mod decision;
pub mod error;
pub mod event;
pub mod grants;
pub mod merge;
pub mod nri_level;
pub mod nri_validation;
pub mod seccomp_profiles;
pub mod text;
pub mod view;

pub use error::Error;
