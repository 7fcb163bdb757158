//! Per-plugin limits the operator sets, each with a default that is safe for a node agent.
//!
//! The defaults leave room inside NRI's 2 s request timeout for a chain of several plugins and
//! the host's own work, and cap memory well below what a typical policy needs.

use std::time::Duration;

/// Default wall-clock budget of one call.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_millis(100);
/// Default cap on a plugin instance's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 16 << 20;
/// Default number of log lines a plugin may write per call before lines are dropped.
pub const DEFAULT_LOG_LINES_PER_CALL: u32 = 32;
/// Longest log line kept; the rest is cut (a plugin cannot flood the log with one huge line).
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// What one plugin may consume per call, and the config it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Wall-clock budget for one call (instantiate + run). Enforced by epoch interruption, so a
    /// plugin in an infinite loop is stopped within about one epoch tick of the budget.
    pub time_budget: Duration,
    /// Maximum linear memory of one instance, in bytes. Must not exceed the runtime's
    /// [`crate::RuntimeOptions::max_memory`].
    pub memory_limit: usize,
    /// Fuel per call when the runtime was built with fuel metering; ignored otherwise.
    pub fuel: Option<u64>,
    /// Log lines allowed per call.
    pub log_lines_per_call: u32,
    /// The operator's opaque configuration string, returned by the `config` import.
    pub config: String,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            time_budget: DEFAULT_TIME_BUDGET,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            fuel: None,
            log_lines_per_call: DEFAULT_LOG_LINES_PER_CALL,
            config: String::new(),
        }
    }
}
