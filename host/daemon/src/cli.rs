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
    /// Print, as JSON, the container view bulkhead gives plugins for an existing container, read
    /// from containerd: a real input for a case file's `container` or `bulkhead eval
    /// --container`. Gaps (an image that no longer resolves, a sandbox that is gone) are
    /// reported on standard error.
    View(ViewArgs),
    /// Print the JSON Schema of a container view, a decision or a case file (for editors and
    /// tools; the same schemas are in sdk/schema/).
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        schema: SchemaArg,
    },
}

/// Options of `bulkhead view`.
#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    /// The container's full id (`crictl ps --no-trunc`).
    pub container_id: String,
    /// containerd's gRPC socket.
    #[arg(long, value_name = "PATH", default_value = bulkhead_core::config::DEFAULT_CONTAINERD_SOCKET)]
    pub containerd_socket: PathBuf,
    /// containerd namespace of the container (CRI's is `k8s.io`).
    #[arg(long, value_name = "NAME", default_value = bulkhead_containerd::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// The decision point to show the view at: `create-container` leaves out what only the
    /// stored spec tells (capabilities, seccomp, user...), as the daemon does.
    #[arg(long, value_enum, default_value = "post-create-container")]
    pub event: ViewPoint,
}

/// `bulkhead view --event` values: the decision points plugins are called at.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[allow(
    clippy::enum_variant_names,
    reason = "the decision points' own names, as the view's `event` spells them"
)]
pub enum ViewPoint {
    /// Before the container record exists.
    CreateContainer,
    /// The record and its spec exist.
    PostCreateContainer,
    /// The task exists, no process has run.
    StartContainer,
}

impl From<ViewPoint> for bulkhead_core::view::DecisionPoint {
    fn from(point: ViewPoint) -> Self {
        use bulkhead_core::view::DecisionPoint;
        match point {
            ViewPoint::CreateContainer => DecisionPoint::CreateContainer,
            ViewPoint::PostCreateContainer => DecisionPoint::PostCreateContainer,
            ViewPoint::StartContainer => DecisionPoint::StartContainer,
        }
    }
}

/// `bulkhead schema` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaArg {
    /// A container view (`container` in case files, `bulkhead eval --container`).
    ContainerView,
    /// A plugin's decision.
    Decision,
    /// A case file (`bulkhead plugin test`).
    CaseFile,
}

impl From<SchemaArg> for bulkhead_daemon::schema::Schema {
    fn from(arg: SchemaArg) -> Self {
        use bulkhead_daemon::schema::Schema;
        match arg {
            SchemaArg::ContainerView => Schema::ContainerView,
            SchemaArg::Decision => Schema::Decision,
            SchemaArg::CaseFile => Schema::CaseFile,
        }
    }
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
    /// Where /metrics, /healthz and /readyz are served: ip:port (port 0 picks a free one, which
    /// the log names), a unix socket path, or "" for none [default: 127.0.0.1:9464].
    #[arg(long, value_name = "ADDRESS")]
    pub metrics_address: Option<String>,
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
