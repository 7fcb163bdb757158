//! `bulkhead eval --config bulkhead.toml --container view.json`: the configured chain over one
//! container view, offline, decided exactly as the daemon decides — for trying a policy (or a
//! change to one) before it reaches a node.
//!
//! The chain is the daemon's own: [`configuration::load_chain`] builds it from the configuration
//! (built-ins, paths, per-plugin config, limits, modes, failure policies, grants and
//! `[[secrets.grants]]`), [`Chain::run`] calls the plugins that want the view's decision point
//! under the deadline the NRI server would give them, [`Chain::judge`] holds every answer against
//! the plugin's grants, and the runs are merged as the engine merges them. A plugin that fails is
//! one run with its failure and the failure policy applied, never the end of the evaluation.
//! Without `--config` (and without `--plugin`) the built-in baseline is evaluated.
//!
//! `--plugin P.wasm` (repeatable) is the quick check it always was: every plugin is called
//! whatever its decision points, with `--plugin-config` and the limit flags, and the bare
//! decision (or each decision and the merge) is printed; the first failure ends it.
//!
//! What eval cannot see, because a view holds none of it: the container's current rlimits (the
//! grant checker is given this process's own limits, as the daemon uses its own for rlimits the
//! spec does not set), and the CreateContainer decisions the daemon carries to PostCreate (evaluate
//! the create-container view separately).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_core::config::{Config, PluginMode};
use bulkhead_core::decision::{Rlimit, Verdict};
use bulkhead_core::grants::{CurrentSpec, Subject};
use bulkhead_core::merge::{self, Merged};
use bulkhead_core::view::{ContainerView, DecisionPoint};
use bulkhead_daemon::engine::chain::{CallOutcome, Chain, PluginRun};
use bulkhead_daemon::{configuration, engine};
use bulkhead_nri::Deadline;
use serde::Serialize;

use super::LimitArgs;

/// Exit status when the merged verdict is a deny (1 stays for usage and load errors), so scripts
/// and CI can tell "the policy refuses this container" from "eval could not run".
pub const EXIT_DENIED: i32 = 2;

/// containerd's default NRI request timeout (`plugin_request_timeout`), in milliseconds.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;

/// Arguments of `bulkhead eval`.
#[derive(Debug, clap::Args)]
#[command(group(
    // With --config (or the baseline) each `[[plugins]]` entry sets its own limits and config.
    clap::ArgGroup::new("plugin_limits")
        .args(["plugin_config", "time_budget", "memory_limit"])
        .multiple(true)
        .requires("plugins")
))]
pub struct EvalArgs {
    /// The daemon's configuration file: its `[[plugins]]` chain is evaluated as `bulkhead run`
    /// would load it. Without it (and without --plugin), the built-in baseline.
    #[arg(long, value_name = "FILE", conflicts_with = "plugins")]
    pub config: Option<PathBuf>,
    /// Quick check of a plugin component, called whatever its decision points; repeat for
    /// several, in order. Prints the bare decision; the first failure ends the run.
    #[arg(long = "plugin", value_name = "WASM")]
    pub plugins: Vec<PathBuf>,
    /// The container view as JSON (`-` reads standard input). Its `event` (default
    /// `create-container`) is the decision point evaluated.
    #[arg(long, value_name = "FILE")]
    pub container: PathBuf,
    /// containerd's NRI request timeout, in milliseconds; the chain gets it minus a quarter, as
    /// in the daemon [default: 2000].
    #[arg(long, value_name = "MS", conflicts_with = "plugins")]
    pub request_timeout: Option<u64>,
    /// Show the plugins' log lines and each call's time on standard error (quiet without).
    #[arg(short, long)]
    pub verbose: bool,
    /// Limits and config for `--plugin` (with --config, each `[[plugins]]` entry sets its own).
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What `bulkhead eval --config` prints: the runs as the audit log records them, and their merge.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The decision point evaluated (the view's `event`).
    pub event: DecisionPoint,
    /// Each plugin that wants this point, in chain order, as the daemon serializes its run.
    pub plugins: Vec<PluginRun>,
    /// Plugins of the chain that do not want this decision point, so were not called.
    pub skipped: Vec<String>,
    /// The merged enforcing decisions: what the daemon would do with the container.
    pub merged: Merged,
    /// When the merged verdict is allow but the chain would have refused had every plugin
    /// enforced (audit-mode plugins): the reason the container would have got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_refuse: Option<String>,
}

/// Runs `bulkhead eval`; exits with [`EXIT_DENIED`] itself when the merged verdict is a deny.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.verbose {
        init_verbose_logging();
    }
    let view = read_view(&args.container)?;
    if !args.plugins.is_empty() {
        return run_plugins(&args, &view);
    }
    let config = match &args.config {
        Some(path) => configuration::load_config(path)?,
        None => Config::default(),
    };
    let timeout = Duration::from_millis(args.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS));
    if timeout.is_zero() {
        bail!("--request-timeout must be at least 1 ms");
    }
    let report = evaluate(config, &view, timeout)?;
    if args.verbose {
        for line in call_lines(&report) {
            eprintln!("{line}");
        }
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)
        .and_then(|()| stdout.flush())
        .context("while writing the result")?;
    if matches!(report.merged.verdict, Verdict::Deny(_)) {
        std::process::exit(EXIT_DENIED);
    }
    Ok(())
}

/// Loads the configured chain and runs it over `view` as the engine would at `view.event`.
///
/// The artifact cache is switched off: eval must not create or write the daemon's cache
/// directory (and, not running as its owner, would be refused it); only load time differs.
pub fn evaluate(
    mut config: Config,
    view: &ContainerView,
    request_timeout: Duration,
) -> anyhow::Result<Report> {
    config.sandbox.cache_dir = PathBuf::new();
    let chain = configuration::load_chain(&config).context("while loading the plugin chain")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("while starting the async runtime")?;
    let mut runs = runtime.block_on(async {
        // The NRI server's budget for a request arriving now, with no per-request timeout.
        let budget = bulkhead_nri::server::budget(tokio::time::Instant::now(), request_timeout, 0);
        chain
            .run(
                view,
                Deadline {
                    at: budget.decide_by,
                },
            )
            .await
    });
    let rlimits = bulkhead_daemon::engine::view::runtime_rlimits();
    chain.judge(&mut runs, &subject(view, &rlimits));
    let (merged, would_refuse) = outcome(&runs);
    Ok(Report {
        event: view.event,
        skipped: skipped(&chain, view.event),
        plugins: runs,
        merged,
        would_refuse,
    })
}

/// The container as the grant checker sees it: from PostCreateContainer on the view stands for
/// the stored spec (its seccomp profile and mounts, and `rlimits` for limits); at
/// CreateContainer there is no spec yet and only the rules that need none apply, as in the
/// engine.
fn subject<'a>(view: &'a ContainerView, rlimits: &'a BTreeMap<String, Rlimit>) -> Subject<'a> {
    Subject {
        namespace: &view.pod.namespace,
        spec: (view.event >= DecisionPoint::PostCreateContainer).then_some(CurrentSpec {
            seccomp: view.seccomp.as_ref(),
            mounts: &view.mounts,
            rlimits,
        }),
    }
}

/// The names of the chain's plugins that do not want `point`.
fn skipped(chain: &Chain, point: DecisionPoint) -> Vec<String> {
    chain
        .plugins()
        .iter()
        .filter(|p| !p.plugin.wants(point))
        .map(|p| p.plugin.name().to_string())
        .collect()
}

/// Merges judged runs as the engine does: enforcing runs' effective decisions decide; when they
/// allow, every run taken as enforced gives the would-be refusal of the audit-mode ones.
fn outcome(runs: &[PluginRun]) -> (Merged, Option<String>) {
    let merged = engine::merge_runs(runs);
    let would_refuse = engine::would_refuse(runs, &merged);
    (merged, would_refuse)
}

/// One stderr line per call (`-v`), and one per skipped plugin.
fn call_lines(report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .plugins
        .iter()
        .map(|run| {
            let mode = match run.mode {
                PluginMode::Enforce => "enforce",
                PluginMode::Audit => "audit",
            };
            format!(
                "eval: {} ({mode}) {} in {:.3} ms",
                run.name,
                describe(&run.outcome),
                run.duration_us as f64 / 1000.0
            )
        })
        .collect();
    lines.extend(report.skipped.iter().map(|name| {
        format!(
            "eval: {name} skipped: it does not want {}",
            point_name(report.event)
        )
    }));
    lines
}

fn describe(outcome: &CallOutcome) -> String {
    match outcome {
        CallOutcome::Decided(decision) => match &decision.verdict {
            Verdict::Allow => format!("allowed with {} mutation(s)", decision.mutations.len()),
            Verdict::Deny(reason) => format!("denied ({reason})"),
        },
        CallOutcome::Failed { kind, policy, .. } => {
            let policy = match policy {
                bulkhead_core::config::FailurePolicy::Deny => "deny",
                bulkhead_core::config::FailurePolicy::Allow => "allow",
            };
            format!("failed: {kind}, failure policy {policy}")
        }
    }
}

fn point_name(point: DecisionPoint) -> String {
    serde_json::to_value(point)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{point:?}"))
}

/// `-v`: plugin `log()` lines (the runtime logs them through `tracing`, target
/// `bulkhead_runtime`, with a `plugin` field) and the host's warnings on standard error.
/// `BULKHEAD_LOG` overrides the filter, as for `bulkhead run`.
fn init_verbose_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,bulkhead_runtime=trace,bulkhead_daemon=info")
    });
    // Only fails when a subscriber is already set, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

fn read_view(path: &Path) -> anyhow::Result<ContainerView> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("while reading the view from stdin")?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?
    };
    serde_json::from_str(&text)
        .with_context(|| format!("while parsing the container view {}", path.display()))
}

/// `--plugin`: each plugin called in order with the flags' limits and config; with one plugin
/// its bare decision is printed, with several each decision and the merge.
fn run_plugins(args: &EvalArgs, view: &ContainerView) -> anyhow::Result<()> {
    let limits = args.limits.limits();
    let runtime = super::runtime(&limits)?;
    let mut decisions = Vec::new();
    for path in &args.plugins {
        let plugin = runtime.load(path, limits.clone())?;
        let started = Instant::now();
        let decision = plugin.check_container(view)?;
        if args.verbose {
            eprintln!(
                "eval: {} {} in {:.3} ms",
                plugin.name(),
                describe(&CallOutcome::Decided(decision.clone())),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        decisions.push((plugin.name().to_owned(), decision));
    }
    let output = match decisions.as_slice() {
        [(_, only)] => serde_json::to_value(only)?,
        many => {
            let merged = merge::merge(many.iter().map(|(name, d)| (name.as_str(), d)));
            serde_json::json!({
                "plugins": many
                    .iter()
                    .map(|(name, d)| serde_json::json!({ "plugin": name, "decision": d }))
                    .collect::<Vec<_>>(),
                "merged": merged,
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use bulkhead_core::config::FailurePolicy;
    use bulkhead_core::decision::{Decision, SeccompAction, SeccompProfile};
    use clap::Parser;

    use super::*;

    /// `EvalArgs` as the binary parses them.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: EvalArgs,
    }

    fn run_of(name: &str, mode: PluginMode, outcome: CallOutcome) -> PluginRun {
        PluginRun {
            name: name.into(),
            digest: "sha256:0".into(),
            mode,
            duration_us: 1500,
            outcome,
        }
    }

    fn denied(reason: &str) -> CallOutcome {
        CallOutcome::Decided(Decision::deny(reason))
    }

    #[test]
    fn config_and_plugin_are_mutually_exclusive() {
        let parsed = Cli::try_parse_from([
            "eval",
            "--config",
            "b.toml",
            "--plugin",
            "p.wasm",
            "--container",
            "v.json",
        ]);
        assert!(parsed.is_err());
        let parsed = Cli::try_parse_from(["eval", "--container", "v.json", "-v"]).unwrap();
        assert!(parsed.args.config.is_none() && parsed.args.plugins.is_empty());
        assert!(parsed.args.verbose);
    }

    #[test]
    fn limit_flags_need_plugin() {
        for flag in ["--plugin-config", "--time-budget", "--memory-limit"] {
            let parsed = Cli::try_parse_from(["eval", flag, "1", "--container", "v.json"]);
            assert!(parsed.is_err(), "{flag} without --plugin");
            let parsed = Cli::try_parse_from([
                "eval",
                flag,
                "1",
                "--plugin",
                "p.wasm",
                "--container",
                "v.json",
            ]);
            assert!(parsed.is_ok(), "{flag} with --plugin");
        }
    }

    #[test]
    fn request_timeout_belongs_to_the_configured_chain() {
        let parsed = Cli::try_parse_from([
            "eval",
            "--plugin",
            "p.wasm",
            "--request-timeout",
            "500",
            "--container",
            "v.json",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn audit_denial_is_a_would_refuse_not_a_deny() {
        let runs = [
            run_of(
                "enforcer",
                PluginMode::Enforce,
                CallOutcome::Decided(Decision::allow()),
            ),
            run_of("auditor", PluginMode::Audit, denied("auditor: too open")),
        ];
        let (merged, would_refuse) = outcome(&runs);
        assert_eq!(merged.verdict, Verdict::Allow);
        let would_refuse = would_refuse.expect("the audit run would refuse");
        assert!(would_refuse.starts_with("bulkhead: "), "{would_refuse}");
        assert!(would_refuse.contains("too open"), "{would_refuse}");
    }

    #[test]
    fn enforcing_denial_decides_and_hides_the_audit_reason() {
        let runs = [
            run_of("enforcer", PluginMode::Enforce, denied("enforcer: no")),
            run_of("auditor", PluginMode::Audit, denied("auditor: also no")),
        ];
        let (merged, would_refuse) = outcome(&runs);
        let Verdict::Deny(reason) = merged.verdict else {
            panic!("expected a deny");
        };
        assert!(
            reason.contains("enforcer: no") && !reason.contains("also no"),
            "{reason}"
        );
        assert_eq!(would_refuse, None);
    }

    #[test]
    fn failure_policy_decides_for_a_failed_run() {
        let failed = |policy| CallOutcome::Failed {
            kind: "timeout".into(),
            message: "plugin p: timed out".into(),
            policy,
            violation: None,
        };
        let open = [run_of(
            "p",
            PluginMode::Enforce,
            failed(FailurePolicy::Allow),
        )];
        assert_eq!(outcome(&open).0.verdict, Verdict::Allow);
        let closed = [run_of(
            "p",
            PluginMode::Enforce,
            failed(FailurePolicy::Deny),
        )];
        assert!(matches!(outcome(&closed).0.verdict, Verdict::Deny(_)));
    }

    #[test]
    fn spec_rules_apply_from_post_create_on() {
        let rlimits = BTreeMap::new();
        let mut view = ContainerView {
            seccomp: Some(SeccompProfile {
                default_action: SeccompAction::Errno,
                default_errno: None,
                architectures: Vec::new(),
                syscalls: Vec::new(),
            }),
            ..ContainerView::default()
        };
        view.pod.namespace = "team-a".into();
        assert_eq!(subject(&view, &rlimits).spec, None);
        assert_eq!(subject(&view, &rlimits).namespace, "team-a");
        for point in [
            DecisionPoint::PostCreateContainer,
            DecisionPoint::StartContainer,
        ] {
            view.event = point;
            let spec = subject(&view, &rlimits)
                .spec
                .expect("a spec from post-create on");
            assert_eq!(spec.seccomp, view.seccomp.as_ref());
        }
    }

    #[test]
    fn verbose_lines_give_each_call_and_each_skip() {
        let report = Report {
            event: DecisionPoint::PostCreateContainer,
            plugins: vec![run_of("p", PluginMode::Audit, denied("p: no"))],
            skipped: vec!["q".into()],
            merged: Merged::default(),
            would_refuse: None,
        };
        assert_eq!(
            call_lines(&report),
            [
                "eval: p (audit) denied (p: no) in 1.500 ms",
                "eval: q skipped: it does not want post-create-container",
            ]
        );
    }
}
