//! Offline subcommands for plugin authors and operators: `bulkhead plugin test` and
//! `bulkhead eval`. They run plugins through `bulkhead-runtime`, exactly as the daemon does, but
//! never connect to containerd.

pub mod eval;
pub mod plugin_test;

use std::time::Duration;

use bulkhead_runtime::{DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_BUDGET, PluginLimits};

/// `bulkhead plugin ...`
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Run a plugin against JSON case files and report `N passed, M failed`; exits non-zero on
    /// any failure. Made for plugin authors' CI.
    Test(plugin_test::TestArgs),
}

/// Limits shared by the offline commands, mirroring a plugin's per-plugin config.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// The operator config string handed to the plugin (a case file's `config` overrides it).
    #[arg(long, value_name = "STRING", default_value = "")]
    pub plugin_config: String,
    /// Time budget per call, in milliseconds [default: 100].
    #[arg(long, value_name = "MS")]
    pub time_budget: Option<u64>,
    /// Memory cap per instance, in MiB [default: 16].
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<usize>,
}

impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            time_budget: self
                .time_budget
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIME_BUDGET),
            memory_limit: self
                .memory_limit
                .map(|m| m << 20)
                .unwrap_or(DEFAULT_MEMORY_LIMIT),
            config: self.plugin_config.clone(),
            ..PluginLimits::default()
        }
    }
}

/// Runs a `bulkhead plugin` subcommand.
pub fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Test(args) => plugin_test::run(args),
    }
}

/// A runtime sized for the offline commands, able to hold any memory cap given on the command
/// line.
pub fn runtime(limits: &PluginLimits) -> anyhow::Result<bulkhead_runtime::Runtime> {
    let options = bulkhead_runtime::RuntimeOptions {
        max_instances: 4,
        max_memory: limits
            .memory_limit
            .max(bulkhead_runtime::RuntimeOptions::default().max_memory),
        ..bulkhead_runtime::RuntimeOptions::default()
    };
    Ok(bulkhead_runtime::Runtime::new(options)?)
}
