//! Writing the audit record of a decision — including the refusals no plugin run made (a
//! missed decision, the engine's own deadline) and the would-be refusals of audit-mode chains.

use bulkhead_core::decision::Verdict;
use bulkhead_core::event::{EventKind, LifecycleEvent, Pod};
use bulkhead_core::merge::Merged;
use bulkhead_core::view::DecisionPoint;

use super::audit::{self, Applied, AuditRecord, ImageSubject, PodSubject, ResultRecord, Subject};
use super::chain::{CallOutcome, Chain, PluginRun};
use super::view::{self, Context};
use super::{Engine, would_refuse};
use bulkhead_nri::Outcome;

impl Engine {
    /// Records a refusal that no plugin run made (a missed decision, a deadline, a decision
    /// recorded at PostCreate and enforced now): `enforced` says whether the container was
    /// refused, or (audit-only chains) would have been.
    pub(super) fn record_refusal(&self, event: &LifecycleEvent, reason: &str, enforced: bool) {
        let (merged, applied) = if enforced {
            let merged = Merged {
                verdict: Verdict::Deny(reason.to_string()),
                ..Merged::default()
            };
            let applied = Applied {
                action: "refused".into(),
                ..Applied::default()
            };
            (merged, applied)
        } else {
            let applied = Applied {
                action: "allowed".into(),
                would_refuse: Some(reason.to_string()),
                ..Applied::default()
            };
            (Merged::default(), applied)
        };
        self.record(
            event,
            &Context::default(),
            None,
            Vec::new(),
            merged,
            applied,
        );
    }

    /// What to answer, and record, when the decision at `event` did not finish before the
    /// deadline: a refusal where the runtime honours one and an enforcing plugin wanted the
    /// point; otherwise the container proceeds (at PostCreate the start is then refused).
    pub(super) fn missed_deadline(&self, chain: &Chain, event: &LifecycleEvent) -> Outcome {
        let point = match event.kind {
            EventKind::CreateContainer => DecisionPoint::CreateContainer,
            EventKind::StartContainer => DecisionPoint::StartContainer,
            _ => DecisionPoint::PostCreateContainer,
        };
        let reason = "bulkhead: no decision within the runtime's deadline; refused (fail closed)";
        let enforced = chain.enforcing_wants(point)
            || (point == DecisionPoint::PostCreateContainer && self.marker.is_some());
        tracing::error!(event = %event.kind, enforced, "no decision before the deadline");
        self.record_refusal(event, reason, enforced);
        if let Some(container) = &event.container
            && event.kind == EventKind::CreateContainer
            && enforced
        {
            self.tracked(|t| t.remove(&container.id));
        }
        if enforced && event.kind.can_refuse() {
            Outcome::Refuse {
                reason: reason.into(),
            }
        } else {
            Outcome::Allow
        }
    }

    pub(super) fn record(
        &self,
        event: &LifecycleEvent,
        context: &Context,
        context_error: Option<String>,
        plugins: Vec<PluginRun>,
        merged: Merged,
        applied: Applied,
    ) {
        let container = event.container.clone().unwrap_or_default();
        let point = match event.kind {
            EventKind::PostCreateContainer => DecisionPoint::PostCreateContainer,
            EventKind::StartContainer => DecisionPoint::StartContainer,
            _ => DecisionPoint::CreateContainer,
        };
        // The full view is built again only when the operator wants it in the record.
        let recorded_view = self
            .record_views
            .then(|| audit::redacted(view::container_view(event, point, context)));
        let image = view::image_view(
            container.image_as_written().unwrap_or_default(),
            context.image.as_ref(),
        );
        let mut applied = applied;
        if applied.would_refuse.is_none() {
            applied.would_refuse = would_refuse(&plugins, &merged);
        }
        self.count_decision(event, &merged, &applied);
        self.audit.write(AuditRecord {
            time: audit::now(),
            event: event.kind.name().into(),
            container: Subject {
                id: container.id,
                name: container.name,
            },
            pod: pod_subject(&event.pod),
            image: ImageSubject {
                reference: image.reference,
                normalized: image.normalized,
                digest: image.digest,
            },
            context_error,
            plugins,
            result: ResultRecord {
                verdict: merged.verdict,
                mutations: merged.mutations,
                conflicts: merged.conflicts,
            },
            applied,
            view: recorded_view,
        });
    }
}

impl Engine {
    /// Counts one decision in `bulkhead_decisions_total`, whether or not it is recorded.
    pub(super) fn count_decision(
        &self,
        event: &LifecycleEvent,
        merged: &Merged,
        applied: &Applied,
    ) {
        let verdict = match merged.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny(_) => "deny",
        };
        let action = match applied.action.as_str() {
            "refused" => "refused",
            "refused-at-start" => "refused-at-start",
            _ if applied.would_refuse.is_some() => "would-refuse",
            _ => "allowed",
        };
        self.telemetry
            .metrics
            .decision(event.kind.name(), verdict, action);
    }

    /// Counts plugin calls (`calls`: these runs were made now, not carried from an earlier
    /// event) and every mutation the grant checker refused.
    pub(super) fn count_runs(&self, runs: &[PluginRun], calls: bool) {
        let metrics = &self.telemetry.metrics;
        for run in runs {
            let outcome = match &run.outcome {
                CallOutcome::Decided(decision) => match decision.verdict {
                    Verdict::Allow => "allow",
                    Verdict::Deny(_) => "deny",
                },
                CallOutcome::Failed { kind, .. } => kind.as_str(),
            };
            if calls {
                metrics.plugin_call(
                    &run.name,
                    outcome,
                    std::time::Duration::from_micros(run.duration_us),
                );
            }
            if let CallOutcome::Failed {
                violation: Some(violation),
                ..
            } = &run.outcome
            {
                metrics.refused_mutation(&run.name, violation.kind());
            }
        }
    }
}

fn pod_subject(pod: &Pod) -> PodSubject {
    PodSubject {
        id: pod.id.clone(),
        name: pod.name.clone(),
        namespace: pod.namespace.clone(),
        uid: pod.uid.clone(),
    }
}
