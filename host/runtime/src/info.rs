//! What a plugin says about itself, in the host's types: the one thing both the loader and the
//! conversions from every ABI version's bindings produce.

use bulkhead_core::view::DecisionPoint;

/// What a plugin says about itself in `metadata()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Stable name, used in logs, metrics, audit records and errors.
    pub name: String,
    /// The plugin's version text.
    pub version: String,
    /// Decision points the plugin wants to be called at.
    pub decision_points: Vec<DecisionPoint>,
}
