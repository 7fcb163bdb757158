//! The configured plugin chain and one run of it over a container view.
//!
//! Plugins run one after another in configuration order (a later plugin's seccomp profile is
//! compared with the earlier one's, so order is part of the policy). The chain runs in one
//! blocking section, each call inside the plugin's own time budget; before each call the engine
//! checks the time left until the runtime's deadline, and a plugin that cannot get its full
//! budget is not started: its failure policy is applied by the host, as for a timeout.
//!
//! A plugin's decision is only a request: [`Chain::judge`] holds every run against the
//! plugin's grants (see `bulkhead_core::grants`) before anything is merged, and a decision that
//! asks for more than the grants becomes a failure of kind `not-granted`. Plugin-supplied text
//! (deny reasons, error messages) is cut and escaped as it enters a run, so nothing downstream
//! — the audit log, the daemon's log, the CRI caller — ever holds more than a few KiB of it.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_core::config::{FailurePolicy, Grants, PluginMode, SecretGrant};
use bulkhead_core::decision::{Decision, MutationKind, Verdict};
use bulkhead_core::grants::{self, Allowance, Subject, Violation};
use bulkhead_core::text::{MAX_RECORD_TEXT, bounded};
use bulkhead_core::view::{ContainerView, DecisionPoint};
use bulkhead_runtime::{Plugin, PreparedView};
use serde::Serialize;

use tokio::runtime::{Handle, RuntimeFlavor};

use bulkhead_nri::Deadline;

/// One plugin in the chain, with the operator's settings for it.
#[derive(Clone)]
pub struct ChainPlugin {
    /// The loaded component.
    pub plugin: Plugin,
    /// Enforce or audit only.
    pub mode: PluginMode,
    /// What a failure of this plugin means.
    pub failure_policy: FailurePolicy,
    /// The tightening kinds it may return.
    pub kinds: BTreeSet<MutationKind>,
    /// Its scoped grants (env, annotations, host mounts).
    pub grants: Grants,
}

impl ChainPlugin {
    /// A chain entry with the grants of a plugin loaded by path and no `[plugins.grants]`:
    /// tightening only.
    pub fn tightening_only(
        plugin: Plugin,
        mode: PluginMode,
        failure_policy: FailurePolicy,
    ) -> Self {
        ChainPlugin {
            plugin,
            mode,
            failure_policy,
            kinds: bulkhead_core::config::TIGHTENING.into_iter().collect(),
            grants: Grants::default(),
        }
    }
}

/// The plugin chain.
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Arc<Vec<ChainPlugin>>,
    secret_grants: Arc<Vec<SecretGrant>>,
}

/// How one plugin's call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallOutcome {
    /// The plugin decided.
    Decided(Decision),
    /// The plugin failed, or could not run; its failure policy decides.
    Failed {
        /// Stable label: `timeout`, `trap`, `memory-limit`, `invalid-output`, `no-budget`,
        /// `not-granted`, ...
        kind: String,
        /// What happened, naming the plugin.
        message: String,
        /// The policy that was applied.
        policy: FailurePolicy,
        /// For `not-granted`: the mutation refused and the grant it lacked.
        #[serde(skip_serializing_if = "Option::is_none")]
        violation: Option<Violation>,
    },
}

/// One plugin's part in a chain run, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginRun {
    /// The plugin's declared name.
    pub name: String,
    /// sha256 of the component.
    pub digest: String,
    /// Enforce or audit.
    pub mode: PluginMode,
    /// Wall-clock time of the call, in microseconds.
    pub duration_us: u64,
    /// The result.
    pub outcome: CallOutcome,
}

impl PluginRun {
    /// The decision this run contributes when merging: the plugin's own (borrowed: a seccomp
    /// profile is hundreds of strings), or the one its failure policy implies. `None` for
    /// audit-mode plugins, which never affect the container.
    pub fn effective_decision(&self) -> Option<Cow<'_, Decision>> {
        if self.mode == PluginMode::Audit {
            return None;
        }
        Some(self.decision_if_enforced())
    }

    /// The decision this run would contribute in enforce mode: what an audit-mode plugin would
    /// have done to the container.
    pub fn decision_if_enforced(&self) -> Cow<'_, Decision> {
        match &self.outcome {
            CallOutcome::Decided(decision) => Cow::Borrowed(decision),
            CallOutcome::Failed {
                policy: FailurePolicy::Allow,
                ..
            } => Cow::Owned(Decision::allow()),
            CallOutcome::Failed {
                policy: FailurePolicy::Deny,
                violation: Some(violation),
                ..
            } => Cow::Owned(Decision::deny(format!(
                "asked for what it was not granted ({violation}) and its failure policy is deny"
            ))),
            CallOutcome::Failed {
                policy: FailurePolicy::Deny,
                kind,
                ..
            } => Cow::Owned(Decision::deny(format!(
                "plugin failed ({kind}) and its failure policy is deny"
            ))),
        }
    }
}

impl Chain {
    /// A chain of `plugins`, in order, with no secret grants.
    pub fn new(plugins: Vec<ChainPlugin>) -> Chain {
        Chain {
            plugins: Arc::new(plugins),
            secret_grants: Arc::default(),
        }
    }

    /// The host's `[[secrets.grants]]`, which every `mount-secret` is judged against.
    pub fn with_secret_grants(mut self, grants: Vec<SecretGrant>) -> Chain {
        self.secret_grants = Arc::new(grants);
        self
    }

    /// Whether any plugin wants to be called at `point`.
    pub fn wants(&self, point: DecisionPoint) -> bool {
        self.plugins.iter().any(|p| p.plugin.wants(point))
    }

    /// Whether an enforcing plugin wants to be called at `point`: only then can a missed
    /// decision there refuse a container.
    pub fn enforcing_wants(&self, point: DecisionPoint) -> bool {
        self.plugins
            .iter()
            .any(|p| p.mode == PluginMode::Enforce && p.plugin.wants(point))
    }

    /// Holds each decided run against its plugin's grants and `subject`: a decision within them
    /// stays (normalized, e.g. mounts forced read-only), one asking for more becomes a failure
    /// of kind `not-granted`, and the plugin's failure policy applies.
    pub fn judge(&self, runs: &mut [PluginRun], subject: &Subject<'_>) {
        for run in runs {
            let placeholder = CallOutcome::Decided(Decision::allow());
            let decision = match std::mem::replace(&mut run.outcome, placeholder) {
                CallOutcome::Decided(decision) => decision,
                failed => {
                    run.outcome = failed;
                    continue;
                }
            };
            let entry = self.plugins.iter().find(|p| p.plugin.name() == run.name);
            let judged = match entry {
                Some(entry) => grants::judge(
                    &Allowance {
                        plugin: &run.name,
                        kinds: &entry.kinds,
                        grants: &entry.grants,
                        secrets: &self.secret_grants,
                    },
                    subject,
                    decision,
                ),
                None => Err(Violation {
                    mutation: "decision".into(),
                    missing: "the plugin is not in the chain".into(),
                }),
            };
            match judged {
                Ok(decision) => run.outcome = CallOutcome::Decided(decision),
                Err(violation) => {
                    let policy = entry.map_or(FailurePolicy::Deny, |e| e.failure_policy);
                    let message = bounded(
                        &format!("plugin {}: {violation}", run.name),
                        MAX_RECORD_TEXT,
                    );
                    tracing::warn!(plugin = %run.name, ?policy, "{message}");
                    run.outcome = CallOutcome::Failed {
                        kind: "not-granted".into(),
                        message,
                        policy,
                        violation: Some(violation),
                    };
                }
            }
        }
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> &[ChainPlugin] {
        &self.plugins
    }

    /// `run` turned into a failure of `kind` under its plugin's failure policy (a carried
    /// decision that can no longer be judged).
    pub fn fail_run(&self, run: PluginRun, kind: &str, message: &str) -> PluginRun {
        let policy = self
            .plugins
            .iter()
            .find(|p| p.plugin.name() == run.name)
            .map_or(FailurePolicy::Deny, |p| p.failure_policy);
        PluginRun {
            outcome: CallOutcome::Failed {
                kind: kind.to_string(),
                message: bounded(&format!("plugin {}: {message}", run.name), MAX_RECORD_TEXT),
                policy,
                violation: None,
            },
            ..run
        }
    }

    /// The failure outcome of every plugin wanting `point`, for when the view itself could not
    /// be built (the plugins cannot decide without it).
    pub fn fail_all(&self, point: DecisionPoint, kind: &str, message: &str) -> Vec<PluginRun> {
        self.plugins
            .iter()
            .filter(|p| p.plugin.wants(point))
            .map(|p| failed_run(p, Duration::ZERO, kind, message.to_string()))
            .collect()
    }

    /// Runs every plugin wanting the view's decision point, in order, within `deadline`.
    ///
    /// The whole chain runs in one blocking section, on a view converted for the guests once: on
    /// the calling worker thread in a multi-threaded runtime, else on one blocking thread.
    pub async fn run(&self, view: &ContainerView, deadline: Deadline) -> Vec<PluginRun> {
        let point = view.event;
        let wanting: Vec<usize> = (0..self.plugins.len())
            .filter(|&i| self.plugins[i].plugin.wants(point))
            .collect();
        if wanting.is_empty() {
            return Vec::new();
        }
        let run_all = move |plugins: &[ChainPlugin], indices: &[usize], view: &ContainerView| {
            let prepared = PreparedView::new(view);
            indices
                .iter()
                .map(|&i| run_one(&plugins[i], &prepared, deadline))
                .collect::<Vec<_>>()
        };
        let runs = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
            // On this very thread: no hand-over to a pool thread that may have to be woken up
            // first. Tokio moves this worker's other tasks elsewhere meanwhile. Each plugin is
            // stopped at its own budget and none starts without its full budget, so the section
            // ends by the deadline.
            tokio::task::block_in_place(|| run_all(&self.plugins, &wanting, view))
        } else {
            let plugins = self.plugins.clone();
            let indices = wanting.clone();
            let view = view.clone();
            let call = tokio::task::spawn_blocking(move || run_all(&plugins, &indices, &view));
            // This outer limit only guards against a blocking pool that is itself starved.
            let started = Instant::now();
            match tokio::time::timeout(deadline.remaining(), call).await {
                Ok(Ok(runs)) => runs,
                Ok(Err(join)) => self.fail_each(&wanting, started.elapsed(), "panic", |name| {
                    format!("plugin {name}: host task failed: {join}")
                }),
                Err(_) => self.fail_each(&wanting, started.elapsed(), "deadline", |name| {
                    format!("plugin {name}: no answer before the runtime's deadline")
                }),
            }
        };
        for run in &runs {
            if let CallOutcome::Failed {
                kind,
                message,
                policy,
                ..
            } = &run.outcome
            {
                tracing::warn!(plugin = %run.name, kind, ?policy, "{message}");
            }
        }
        runs
    }

    /// A failure of `kind` for each plugin at `indices`, with `message(name)`.
    fn fail_each(
        &self,
        indices: &[usize],
        elapsed: Duration,
        kind: &str,
        message: impl Fn(&str) -> String,
    ) -> Vec<PluginRun> {
        indices
            .iter()
            .map(|&i| {
                let entry = &self.plugins[i];
                failed_run(entry, elapsed, kind, message(entry.plugin.name()))
            })
            .collect()
    }
}

/// One plugin's call on a blocking thread: not started when the time left before the runtime's
/// deadline is less than its budget.
fn run_one(entry: &ChainPlugin, view: &PreparedView, deadline: Deadline) -> PluginRun {
    let budget = entry.plugin.limits().time_budget;
    if deadline.remaining() < budget {
        return failed_run(
            entry,
            Duration::ZERO,
            "no-budget",
            format!(
                "plugin {}: not started, {:?} left before the runtime's deadline is less than its {budget:?} budget",
                entry.plugin.name(),
                deadline.remaining()
            ),
        );
    }
    let started = Instant::now();
    let result = entry.plugin.check_prepared(view);
    let elapsed = started.elapsed();
    match result {
        Ok(decision) => PluginRun {
            name: entry.plugin.name().to_string(),
            digest: entry.plugin.digest().to_string(),
            mode: entry.mode,
            duration_us: elapsed.as_micros() as u64,
            outcome: CallOutcome::Decided(bounded_reason(decision)),
        },
        Err(error) => failed_run(entry, elapsed, error.kind(), error.to_string()),
    }
}

fn failed_run(entry: &ChainPlugin, elapsed: Duration, kind: &str, message: String) -> PluginRun {
    PluginRun {
        name: entry.plugin.name().to_string(),
        digest: entry.plugin.digest().to_string(),
        mode: entry.mode,
        duration_us: elapsed.as_micros() as u64,
        outcome: CallOutcome::Failed {
            kind: kind.to_string(),
            message: bounded(&message, MAX_RECORD_TEXT),
            policy: entry.failure_policy,
            violation: None,
        },
    }
}

/// `decision` with its deny reason cut and escaped for records and logs.
fn bounded_reason(mut decision: Decision) -> Decision {
    if let Verdict::Deny(reason) = &decision.verdict {
        decision.verdict = Verdict::Deny(bounded(reason, MAX_RECORD_TEXT));
    }
    decision
}
