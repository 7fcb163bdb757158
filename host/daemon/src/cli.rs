//! The command line of the `bulkhead` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// bulkhead: container security enforced at the runtime, by sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "bulkhead", version, about, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: register with containerd over NRI and handle pod and container events.
    Run(RunArgs),
    /// Validate a configuration file without connecting to anything; prints the effective
    /// configuration.
    CheckConfig {
        /// The TOML configuration file; without one, the built-in baseline is checked.
        file: Option<PathBuf>,
    },
    /// Work with plugin components offline (test them against case files).
    #[command(subcommand)]
    Plugin(crate::commands::PluginCommand),
    /// Run the configured plugin chain over one container view (JSON), offline, as the daemon
    /// would, and print each plugin's run and the merged decision as JSON. Exits 0 when the
    /// merged verdict allows, 2 when it denies (`--plugin` quick checks: always 0), 1 on usage or
    /// load errors.
    Eval(crate::commands::eval::EvalArgs),
}

/// Options of `bulkhead run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file (defaults apply to everything it does not set).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// containerd's NRI socket [default: /var/run/nri/nri.sock].
    #[arg(long, value_name = "PATH")]
    pub nri_socket: Option<PathBuf>,
    /// containerd's gRPC socket [default: /run/containerd/containerd.sock].
    #[arg(long, value_name = "PATH")]
    pub containerd_socket: Option<PathBuf>,
    /// Log line format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for bulkhead_core::config::LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => bulkhead_core::config::LogFormat::Text,
            LogFormatArg::Json => bulkhead_core::config::LogFormat::Json,
        }
    }
}
