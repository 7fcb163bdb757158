//! The decision engine: for each container event, gather context, run the plugin chain under
//! the runtime's deadline, merge, enforce, audit.
//!
//! Where decisions take effect on containerd 2.0/2.1 (DESIGN §3, FACTS §3):
//! - **CreateContainer**: plugins that want it decide on the NRI view plus the resolved image. A
//!   deny fails the CRI CreateContainer with PermissionDenied. Their mutations are carried to
//!   PostCreate, because the spec they change does not exist yet.
//! - **PostCreateContainer**: the stored OCI spec exists; plugins that want it decide on the full
//!   view. All mutations (carried and new) are patched into the stored spec and verified. A deny,
//!   a conflict or a failed patch cannot stop the container here (containerd only logs errors at
//!   this point), so it is recorded and enforced at StartContainer.
//! - **StartContainer**: the task exists but no process has run. Recorded refusals are returned
//!   (containerd kills the task), and plugins that want this point may still deny.
//!
//! Every plugin answer is judged against the plugin's grants before it is merged (see
//! [`chain::Chain::judge`]): at CreateContainer by the rules that need no spec, at PostCreate —
//! for the carried CreateContainer answers too — against the container's current spec.
//!
//! The engine fails closed, but only for what is enforced: a container whose PostCreate decision
//! did not complete (cut off at the deadline, or never seen because bulkhead was away) is
//! refused at start when an **enforcing** plugin (or the guard) needed that decision; with an
//! audit-only chain it starts, and the record says what would have happened. Every refusal, and
//! every would-be refusal of an audit-mode chain, is written to the audit log.

pub mod apply;
pub mod audit;
pub mod chain;
mod decide;
pub mod oci;
mod patch;
mod record;
pub mod view;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use bulkhead_containerd::{Containerd, ImageInfo};
use bulkhead_core::config::{PluginMode, ValidationConfig};
use bulkhead_core::decision::{Decision, Rlimit, Verdict};
use bulkhead_core::event::{
    Container, ContainerState, EventKind, EventMask, LifecycleEvent, Pod, RequestedSeccomp,
    RuntimeInfo,
};
use bulkhead_core::merge::{self, Merged};
use bulkhead_core::nri_validation;
use bulkhead_core::text::{MAX_CRI_TEXT, bounded};
use bulkhead_core::view::DecisionPoint;
use oci_spec::runtime::Spec;

use crate::secrets::SecretStore;
use crate::telemetry::Telemetry;
use bulkhead_nri::{Deadline, EventHandler, Outcome, PendingAdjustment};

use audit::{Applied, AuditLog};
use chain::{CallOutcome, Chain, PluginRun};
use decide::{Carried, Decided};
use view::Context;

/// What the engine remembers about a container between its events.
#[derive(Debug, Default)]
struct Tracked {
    /// Enforcing plugins' decided runs at CreateContainer, judged again against the spec and
    /// merged at PostCreate.
    create_runs: Vec<PluginRun>,
    /// The image as resolved at CreateContainer: the container's image cannot change after,
    /// so PostCreate uses it instead of asking containerd again.
    image: Option<ImageInfo>,
    /// The create-time decision was applied by the runtime as an NRI adjustment; its runs are
    /// carried only to be judged again if the image turns out to be misnamed.
    adjusted_at_create: bool,
    /// Refuse StartContainer with this reason.
    start_refusal: Option<String>,
    /// PostCreateContainer was handled to the end.
    post_create_done: bool,
}

/// Hook for extra spec changes every patched container gets (the fail-closed guard marker).
pub type SpecMarker = Box<dyn Fn(&str) -> Option<(String, String)> + Send + Sync>;

/// The engine; implements [`EventHandler`] for the NRI layer.
pub struct Engine {
    /// The chain in effect. Each event takes its own handle to it when it arrives, so a reload
    /// replaces it between events and never under one.
    chain: RwLock<Chain>,
    containerd: Containerd,
    audit: AuditLog,
    tracked: Mutex<HashMap<String, Tracked>>,
    marker: Option<SpecMarker>,
    secrets: Option<SecretStore>,
    /// Pod sandbox specs by sandbox id: they never change, and every container of a pod needs
    /// its sandbox's to see pod-level host namespaces.
    sandboxes: Mutex<HashMap<String, Arc<Spec>>>,
    /// The limits a container gets for rlimits its spec does not set (see
    /// [`view::runtime_rlimits`]); a plugin's rlimit must not exceed them.
    rlimit_defaults: BTreeMap<String, Rlimit>,
    /// Record the plugins' view with each decision (`[audit] include-view`).
    record_views: bool,
    /// The connected runtime may write another name of the image than the requested one into
    /// `io.kubernetes.cri.image-name` (NRI levels before v0.8, containerd 1.7): create-time decisions are then
    /// always carried to PostCreate, where the stored request is read and, if it names the image
    /// differently, they are judged again under the requested name.
    misnamed_images: AtomicBool,
    /// The connected runtime applies a seccomp profile set at CreateContainer (NRI v0.10+).
    native_seccomp: AtomicBool,
    /// `[nri.validation]` when on, with the name bulkhead registered under (its own
    /// adjustments are not judged again).
    validation: Option<(ValidationConfig, String)>,
    /// Decision counters and latencies.
    telemetry: Arc<Telemetry>,
}

/// Sandbox specs kept before the cache starts over (bounds memory on a busy node).
pub(super) const MAX_CACHED_SANDBOXES: usize = 1024;

impl Engine {
    /// An engine running `chain`, reading context from and patching specs through
    /// `containerd`, recording to `audit`.
    pub fn new(chain: Chain, containerd: Containerd, audit: AuditLog) -> Engine {
        Engine {
            chain: RwLock::new(chain),
            containerd,
            audit,
            tracked: Mutex::default(),
            marker: None,
            secrets: None,
            sandboxes: Mutex::default(),
            rlimit_defaults: view::runtime_rlimits(),
            record_views: false,
            misnamed_images: AtomicBool::new(false),
            native_seccomp: AtomicBool::new(false),
            validation: None,
            telemetry: Arc::default(),
        }
    }

    /// The chain in effect now (a cheap handle: the plugins are shared).
    pub fn chain(&self) -> Chain {
        self.chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `chain` in effect for every event that arrives from now on; events already being
    /// decided finish with the chain they started with. Refused, leaving the chain in effect,
    /// when `chain` needs events the session did not subscribe to (`subscribed`): the runtime
    /// fixes subscriptions at registration.
    pub fn replace_chain(&self, chain: Chain, subscribed: EventMask) -> Result<(), String> {
        let needed = Engine::events_for(&chain, self.marker.is_some());
        let missing: Vec<&str> = needed
            .kinds()
            .filter(|kind| !subscribed.contains(*kind))
            .map(|kind| kind.name())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the new chain decides at events bulkhead did not subscribe to when it registered ({}); restart bulkhead to apply it",
                missing.join(", ")
            ));
        }
        *self.chain.write().unwrap_or_else(PoisonError::into_inner) = chain;
        Ok(())
    }

    /// Counts decisions into `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Engine {
        self.telemetry = telemetry;
        self
    }

    /// The events this engine acts on with its chain and guard, and so the only ones bulkhead
    /// subscribes to: containerd makes every subscribed call while holding a node-wide lock, so
    /// an event bulkhead would only acknowledge would still cost every container a round trip
    /// inside that lock.
    ///
    /// - CreateContainer: plugins decide there, or PostCreate decisions need to know which
    ///   containers were seen being created;
    /// - PostCreateContainer: plugins decide there, create-time decisions are patched there, or
    ///   the guard marks every container there;
    /// - StartContainer: plugins decide there, or a PostCreate refusal (or a missed PostCreate
    ///   decision) is enforced there;
    /// - RemoveContainer and RemovePodSandbox, always: they free what bulkhead keeps.
    pub fn events(&self) -> EventMask {
        Engine::events_for(&self.chain(), self.marker.is_some())
    }

    /// The events `chain` (with the guard marker, if `marked`) needs.
    fn events_for(chain: &Chain, marked: bool) -> EventMask {
        let wants = |point| chain.wants(point);
        let post_create = wants(DecisionPoint::PostCreateContainer)
            || wants(DecisionPoint::CreateContainer)
            || marked;
        let mut kinds = vec![EventKind::RemoveContainer, EventKind::RemovePodSandbox];
        if wants(DecisionPoint::CreateContainer) || post_create {
            kinds.push(EventKind::CreateContainer);
        }
        if post_create {
            kinds.push(EventKind::PostCreateContainer);
        }
        if wants(DecisionPoint::StartContainer) || post_create {
            kinds.push(EventKind::StartContainer);
        }
        EventMask::of(kinds)
    }

    /// Records, with each decision, the view the plugins were given (env values redacted).
    pub fn with_recorded_views(mut self, record: bool) -> Engine {
        self.record_views = record;
        self
    }

    /// Materializes granted secrets from `store`; without one, secret requests fail (closed).
    pub fn with_secrets(mut self, store: SecretStore) -> Engine {
        self.secrets = Some(store);
        self
    }

    /// Adds an annotation to every container's patched spec (computed from its id).
    pub fn with_marker(mut self, marker: SpecMarker) -> Engine {
        self.marker = Some(marker);
        self
    }

    /// Judges other NRI plugins' adjustments by `config` on runtimes that have a validation
    /// phase; `own_name` is the name bulkhead registers under.
    pub fn with_validation(mut self, config: ValidationConfig, own_name: &str) -> Engine {
        self.validation = config.enabled.then(|| (config, own_name.to_string()));
        self
    }

    fn tracked<R>(&self, f: impl FnOnce(&mut HashMap<String, Tracked>) -> R) -> R {
        f(&mut self.tracked.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn at_create(
        &self,
        chain: &Chain,
        event: &LifecycleEvent,
        deadline: Deadline,
    ) -> Outcome {
        let Some(container) = &event.container else {
            return Outcome::Allow;
        };
        self.tracked(|t| t.insert(container.id.clone(), Tracked::default()));
        if !chain.wants(DecisionPoint::CreateContainer) {
            return Outcome::Allow;
        }
        let decided = self
            .decide(
                chain,
                event,
                DecisionPoint::CreateContainer,
                false,
                true,
                Carried::default(),
                deadline,
            )
            .await;
        let merged = merge_runs(&decided.runs);
        let outcome = match refusal(&merged) {
            Some(reason) => {
                // The container is never created, so no RemoveContainer will come for it.
                self.tracked(|t| t.remove(&container.id));
                Outcome::Refuse { reason }
            }
            None => match self.native_adjustment(chain, container, &merged) {
                // Everything the decision asks for, the runtime applies itself: nothing is
                // left for PostCreate, which then has no round trip to make — unless the
                // runtime may have judged the image under another name.
                Ok(Some(adjustment)) => {
                    if self.misnamed_images.load(Ordering::Relaxed) {
                        self.carry_to_post_create(&container.id, &decided, true);
                    }
                    Outcome::Adjust(adjustment)
                }
                Ok(None) => {
                    self.carry_to_post_create(&container.id, &decided, false);
                    Outcome::Allow
                }
                Err(error) => {
                    self.tracked(|t| t.remove(&container.id));
                    Outcome::Refuse {
                        reason: bounded(
                            &format!("bulkhead: required changes could not be applied: {error}"),
                            MAX_CRI_TEXT,
                        ),
                    }
                }
            },
        };
        let applied = Applied {
            action: match outcome {
                Outcome::Allow | Outcome::Adjust(_) => "allowed",
                Outcome::Refuse { .. } => "refused",
            }
            .into(),
            adjusted_at_create: matches!(outcome, Outcome::Adjust(_)),
            ..Applied::default()
        };
        self.record(
            event,
            &decided.context,
            decided.context_error,
            decided.runs,
            merged,
            applied,
        );
        outcome
    }

    async fn at_post_create(
        &self,
        chain: &Chain,
        event: &LifecycleEvent,
        deadline: Deadline,
    ) -> Outcome {
        let Some(container) = &event.container else {
            return Outcome::Allow;
        };
        // Until this handler completes `post_create_done` stays false, and the start is refused
        // if an enforcing plugin needed this decision.
        let carried = self.tracked(|t| {
            let tracked = t.entry(container.id.clone()).or_default();
            Carried {
                runs: std::mem::take(&mut tracked.create_runs),
                image: tracked.image.take(),
                adjusted: tracked.adjusted_at_create,
            }
        });
        let wants = chain.wants(DecisionPoint::PostCreateContainer);
        if !wants && carried.runs.is_empty() && self.marker.is_none() {
            self.finish_post_create(&container.id, None);
            return Outcome::Allow;
        }
        let mut decided = if wants || !carried.runs.is_empty() {
            self.decide(
                chain,
                event,
                DecisionPoint::PostCreateContainer,
                true,
                wants,
                carried,
                deadline,
            )
            .await
        } else {
            Decided {
                context: Context::default(),
                context_error: None,
                carried: carried.runs,
                runs: Vec::new(),
            }
        };
        let merged = merge_runs(decided.carried.iter().chain(&decided.runs));
        // The patch starts from the spec just read, moved rather than copied.
        let stored = decided.context.stored.take();
        let mut applied = Applied::default();
        let refusal = match refusal(&merged) {
            Some(reason) => Some(reason),
            None => match self
                .patch(&container.id, &merged, &decided.context, stored)
                .await
            {
                Ok(Some(elapsed)) => {
                    self.telemetry.metrics.spec_patch(elapsed);
                    applied.spec_patched = true;
                    applied.verified = Some(true);
                    applied.patch_us = Some(elapsed.as_micros() as u64);
                    None
                }
                Ok(None) => None,
                Err(error) => {
                    tracing::error!(%error, "hardening could not be applied; the start will be refused");
                    applied.verified = Some(false);
                    applied.error = Some(error.clone());
                    Some(bounded(
                        &format!("bulkhead: required hardening could not be applied: {error}"),
                        MAX_CRI_TEXT,
                    ))
                }
            },
        };
        applied.action = if refusal.is_some() {
            "refused-at-start"
        } else {
            "allowed"
        }
        .into();
        let refused = refusal.is_some();
        self.finish_post_create(&container.id, refusal);
        // Carried runs appear again only when the spec changed their fate.
        let mut runs = decided.runs;
        runs.extend(
            decided
                .carried
                .into_iter()
                .filter(|run| matches!(run.outcome, CallOutcome::Failed { .. })),
        );
        applied.image_annotated_as = decided.context.renamed_from.clone();
        if wants
            || refused
            || !merged.mutations.is_empty()
            || applied.spec_patched
            || applied.image_annotated_as.is_some()
        {
            self.record(
                event,
                &decided.context,
                decided.context_error,
                runs,
                merged,
                applied,
            );
        } else {
            self.count_decision(event, &merged, &applied);
        }
        Outcome::Allow
    }

    /// The CreateContainer adjustment for `merged`, when the runtime can apply all of it and
    /// nothing else will happen at PostCreate (no plugin decides there, no guard marker): the
    /// decision is then complete at CreateContainer. `Ok(None)`: carry it to PostCreate.
    /// A seccomp profile goes with it only on a runtime that applies one (NRI v0.10+), for a
    /// container that asked to run unconfined: the grant checker judged the profile at create
    /// against no profile, which is then exactly what it replaces. Any other container keeps
    /// its profile decision on the verified patch, judged against the profile it really has.
    fn native_adjustment(
        &self,
        chain: &Chain,
        container: &Container,
        merged: &Merged,
    ) -> Result<Option<bulkhead_nri::Adjustment>, String> {
        if chain.wants(DecisionPoint::PostCreateContainer) || self.marker.is_some() {
            return Ok(None);
        }
        let seccomp_natively = self.native_seccomp.load(Ordering::Relaxed)
            && container.requested_seccomp == Some(RequestedSeccomp::Unconfined);
        apply::native_adjustment(&merged.mutations, seccomp_natively)
    }

    /// Keeps the enforcing plugins' create-time decisions and the image for PostCreate.
    fn carry_to_post_create(&self, id: &str, decided: &Decided, adjusted: bool) {
        let carried: Vec<PluginRun> = decided
            .runs
            .iter()
            .filter(|run| {
                run.mode == PluginMode::Enforce && matches!(run.outcome, CallOutcome::Decided(_))
            })
            .cloned()
            .collect();
        let image = decided.context.image.clone();
        self.tracked(|t| {
            let tracked = t.entry(id.to_string()).or_default();
            tracked.create_runs = carried;
            tracked.image = image;
            tracked.adjusted_at_create = adjusted;
        });
    }

    fn finish_post_create(&self, id: &str, refusal: Option<String>) {
        self.tracked(|t| {
            let tracked = t.entry(id.to_string()).or_default();
            tracked.start_refusal = refusal;
            tracked.post_create_done = true;
        });
    }

    async fn at_start(&self, chain: &Chain, event: &LifecycleEvent, deadline: Deadline) -> Outcome {
        let Some(container) = &event.container else {
            return Outcome::Allow;
        };
        let tracked = self.tracked(|t| {
            t.get(&container.id)
                .map(|c| (c.start_refusal.clone(), c.post_create_done))
        });
        let missed = match tracked {
            Some((Some(reason), _)) => {
                self.record_refusal(event, &reason, true);
                return Outcome::Refuse { reason };
            }
            Some((None, true)) => None,
            Some((None, false)) => Some(
                "bulkhead: this container's PostCreateContainer decision did not complete, so it was not checked; recreate it",
            ),
            None => Some(
                "bulkhead: this container's creation was not seen, so it was not checked; recreate it",
            ),
        };
        if let Some(reason) = missed {
            if chain.enforcing_wants(DecisionPoint::PostCreateContainer) || self.marker.is_some() {
                self.record_refusal(event, reason, true);
                return Outcome::Refuse {
                    reason: reason.into(),
                };
            }
            if chain.wants(DecisionPoint::PostCreateContainer) {
                self.record_refusal(event, reason, false);
            }
        }
        if !chain.wants(DecisionPoint::StartContainer) {
            return Outcome::Allow;
        }
        let decided = self
            .decide(
                chain,
                event,
                DecisionPoint::StartContainer,
                true,
                true,
                Carried::default(),
                deadline,
            )
            .await;
        let merged = merge_runs(&decided.runs);
        let outcome = match refusal(&merged) {
            Some(reason) => Outcome::Refuse { reason },
            None => Outcome::Allow,
        };
        let applied = Applied {
            action: match outcome {
                Outcome::Allow | Outcome::Adjust(_) if merged.mutations.is_empty() => {
                    "allowed".into()
                }
                Outcome::Allow | Outcome::Adjust(_) => {
                    "allowed (mutations cannot be applied at StartContainer)".into()
                }
                Outcome::Refuse { .. } => "refused".into(),
            },
            ..Applied::default()
        };
        self.record(
            event,
            &decided.context,
            decided.context_error,
            decided.runs,
            merged,
            applied,
        );
        outcome
    }
}

/// Merges the decisions that count — enforcing runs' own, or their failure policy's — in chain
/// order, borrowing each plugin's decision rather than copying it.
pub fn merge_runs<'a>(runs: impl IntoIterator<Item = &'a PluginRun>) -> Merged {
    let decisions: Vec<(&str, Cow<'_, Decision>)> = runs
        .into_iter()
        .filter_map(|run| run.effective_decision().map(|d| (run.name.as_str(), d)))
        .collect();
    merge::merge(decisions.iter().map(|(name, d)| (*name, d.as_ref())))
}

/// Why the container would have been refused had every run been enforced, when `merged` (the
/// enforcing runs' result) lets it through: what audit-mode plugins would have done.
pub fn would_refuse(runs: &[PluginRun], merged: &Merged) -> Option<String> {
    if merged.verdict != Verdict::Allow {
        return None;
    }
    let as_if_enforced: Vec<(&str, Cow<'_, Decision>)> = runs
        .iter()
        .map(|run| (run.name.as_str(), run.decision_if_enforced()))
        .collect();
    match merge::merge(as_if_enforced.iter().map(|(name, d)| (*name, d.as_ref()))).verdict {
        Verdict::Deny(reason) => Some(bounded(&format!("bulkhead: {reason}"), MAX_CRI_TEXT)),
        Verdict::Allow => None,
    }
}

/// What the CRI caller is told when the merged verdict is a deny (cut to 1 KiB: several
/// plugins' reasons may be joined, and each came from a plugin).
fn refusal(merged: &Merged) -> Option<String> {
    match &merged.verdict {
        Verdict::Deny(reason) => Some(bounded(&format!("bulkhead: {reason}"), MAX_CRI_TEXT)),
        Verdict::Allow => None,
    }
}

impl EventHandler for Engine {
    fn validates_adjustments(&self) -> bool {
        self.validation.is_some()
    }

    async fn validate_adjustment(&self, pending: &PendingAdjustment) -> Option<String> {
        let (config, own_name) = self.validation.as_ref()?;
        nri_validation::judge(&pending.owned, config, own_name)
            .err()
            .map(|reason| format!("bulkhead: {reason}"))
    }

    async fn synchronized(&self, runtime: &RuntimeInfo, _pods: &[Pod], containers: &[Container]) {
        tracing::info!(
            runtime = %runtime.name,
            version = %runtime.version,
            nri_level = %runtime.nri_level(),
            plugins = self.chain().plugins().len(),
            "policy engine ready"
        );
        self.telemetry.metrics.set_info(|info| {
            info.runtime = runtime.name.clone();
            info.runtime_version = runtime.version.clone();
            info.nri_level = runtime.nri_level().to_string();
        });
        let misnamed = !runtime.nri_level().capabilities().annotates_requested_image;
        if misnamed {
            tracing::info!(
                "this runtime's image-name annotation may name another tag of the image: create-time decisions are judged again at PostCreate under the requested name"
            );
        }
        self.misnamed_images.store(misnamed, Ordering::Relaxed);
        self.native_seccomp.store(
            runtime.nri_level().capabilities().native_seccomp,
            Ordering::Relaxed,
        );
        let live: std::collections::HashSet<&str> =
            containers.iter().map(|c| c.id.as_str()).collect();
        if let Some(store) = &self.secrets {
            store.sweep(&live);
        }
        // Forget containers removed while bulkhead was disconnected.
        self.tracked(|t| t.retain(|id, _| live.contains(id.as_str())));
        // Containers already running were checked (or not) by whoever ran when they were created.
        // Ones created but not started were created while bulkhead was away: they stay unknown,
        // so their start is refused.
        self.tracked(|t| {
            for container in containers
                .iter()
                .filter(|c| c.state != ContainerState::Created)
            {
                t.entry(container.id.clone()).or_insert_with(|| Tracked {
                    post_create_done: true,
                    ..Tracked::default()
                });
            }
        });
    }

    async fn handle(&self, event: &LifecycleEvent, deadline: Deadline) -> Outcome {
        let arrived = Instant::now();
        // One chain for the whole event, whatever a reload does meanwhile.
        let chain = self.chain();
        let decision = async {
            match event.kind {
                EventKind::CreateContainer => self.at_create(&chain, event, deadline).await,
                EventKind::PostCreateContainer => {
                    self.at_post_create(&chain, event, deadline).await
                }
                _ => self.at_start(&chain, event, deadline).await,
            }
        };
        match event.kind {
            EventKind::CreateContainer
            | EventKind::PostCreateContainer
            | EventKind::StartContainer => {
                let outcome = match tokio::time::timeout_at(deadline.at, decision).await {
                    Ok(outcome) => outcome,
                    Err(_) => self.missed_deadline(&chain, event),
                };
                self.telemetry
                    .metrics
                    .decision_time(event.kind.name(), arrived.elapsed());
                outcome
            }
            EventKind::RemoveContainer => {
                if let Some(container) = &event.container {
                    self.tracked(|t| t.remove(&container.id));
                    if let Some(store) = &self.secrets {
                        store.remove(&container.id);
                    }
                }
                Outcome::Allow
            }
            EventKind::RemovePodSandbox => {
                self.sandboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&event.pod.id);
                Outcome::Allow
            }
            _ => Outcome::Allow,
        }
    }
}

#[cfg(test)]
mod tests;
