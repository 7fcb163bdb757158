//! The `bulkhead` binary: parses the command line, sets up logging and hands over to
//! `bulkhead_daemon`.

mod cli;
mod commands;

use std::process::ExitCode;

use anyhow::Context;
use bulkhead_core::config::{Config, LogFormat};
use bulkhead_daemon::configuration::{self, ConfigSource, Overrides};
use bulkhead_daemon::daemon;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, RunArgs, ViewArgs};

fn main() -> ExitCode {
    // Usage errors exit 1, like every other error: exit 2 is `bulkhead eval`'s "denied".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::CheckConfig { file } => check_config(file.as_deref()),
        Command::Plugin(command) => commands::plugin(command),
        Command::Eval(args) => commands::eval::run(args),
        Command::View(args) => view(args),
        Command::Schema { schema } => {
            print!(
                "{}",
                bulkhead_daemon::schema::Schema::from(schema).generate()
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bulkhead: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let source = ConfigSource {
        path: args.config,
        overrides: Overrides {
            nri_socket: args.nri_socket,
            containerd_socket: args.containerd_socket,
            log_format: args.log_format.map(Into::into),
            metrics_address: args.metrics_address,
        },
    };
    let loaded = source.load()?;
    init_logging(loaded.config.log.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(daemon::run(source, loaded, shutdown_signal()))
}

/// Validates a configuration and loads (compiles) every plugin it names, connecting to nothing;
/// prints the effective configuration and what each plugin declares.
fn check_config(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (config, what) = match path {
        Some(path) => (
            configuration::load_config(path)?,
            path.display().to_string(),
        ),
        None => (Config::default(), "the built-in baseline".to_string()),
    };
    let chain = configuration::load_chain(&config)?;
    let effective = toml::to_string_pretty(&config).context("cannot print the configuration")?;
    println!("# {what} is valid; effective configuration:\n{effective}");
    println!("# plugins, in chain order:");
    for entry in chain.plugins() {
        let info = entry.plugin.info();
        let points: Vec<String> = info
            .decision_points
            .iter()
            .map(|p| format!("{p:?}"))
            .collect();
        println!(
            "#   {} {} ({:?}, failure policy {:?}) at {} — {}",
            info.name,
            info.version,
            entry.mode,
            entry.failure_policy,
            points.join(", "),
            entry.plugin.digest()
        );
        for line in grant_lines(entry, &config.secrets.grants) {
            println!("#       {line}");
        }
    }
    // The same profiles `load_chain` gave the sandbox: the config was validated above.
    let held = bulkhead_core::seccomp_profiles::HeldProfiles::from_config(&config.seccomp)?;
    println!("# seccomp profiles held for plugins (use-seccomp-profile):");
    for profile in held.iter() {
        let origin = if profile.builtin {
            "built-in"
        } else {
            "[seccomp.profiles]"
        };
        println!(
            "#   {} ({origin}, rules: {}) {}",
            profile.name,
            profile.profile.syscalls.len(),
            profile.digest
        );
    }
    Ok(())
}

/// What `check-config` says a plugin may ask for: its effective grants, one line per scope.
fn grant_lines(
    entry: &bulkhead_daemon::engine::chain::ChainPlugin,
    secret_grants: &[bulkhead_core::config::SecretGrant],
) -> Vec<String> {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let name = entry.plugin.name();
    let secrets: Vec<String> = secret_grants
        .iter()
        .filter(|g| g.plugins.iter().any(|p| p == name))
        .map(|g| format!("{} in {}", g.secrets.join("|"), g.namespaces.join("|")))
        .collect();
    vec![
        format!(
            "may tighten: {}",
            list(entry.kinds.iter().map(|k| k.name().to_string()).collect())
        ),
        format!("may set env: {}", list(entry.grants.env.clone())),
        format!(
            "may set annotations under: {}",
            list(entry.grants.annotations.clone())
        ),
        format!(
            "may bind-mount: {}",
            list(
                entry
                    .grants
                    .mounts
                    .iter()
                    .map(|m| format!(
                        "{} ({})",
                        m.source,
                        if m.writable {
                            "as asked"
                        } else {
                            "forced ro,nosuid,nodev"
                        }
                    ))
                    .collect()
            )
        ),
        format!("may mount secrets: {}", list(secrets)),
    ]
}

/// Prints the view plugins get for an existing container, rebuilt from containerd; what could
/// not be read goes to standard error, so standard output stays a usable view.
fn view(args: ViewArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stored = runtime.block_on(async {
        let containerd =
            bulkhead_containerd::Containerd::connect_in(&args.containerd_socket, &args.namespace)
                .await?;
        anyhow::Ok(
            bulkhead_daemon::engine::view::stored_view(
                &containerd,
                &args.container_id,
                args.event.into(),
            )
            .await?,
        )
    })?;
    for gap in &stored.gaps {
        eprintln!("bulkhead: warning: {gap}");
    }
    let json = serde_json::to_string_pretty(&stored.view).context("cannot print the view")?;
    println!("{json}");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("BULKHEAD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
