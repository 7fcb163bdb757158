//! Gathering what a decision needs and running the chain on it: the image (resolved once per
//! container), the stored spec and the pod's sandbox spec from PostCreate on, then the plugins,
//! then every answer — new and carried — judged against its grants and the container as it is.

use std::sync::{Arc, PoisonError};

use bulkhead_containerd::ImageInfo;
use bulkhead_core::event::{Container, LifecycleEvent};
use bulkhead_core::grants::{CurrentSpec, Subject as GrantSubject};
use bulkhead_core::view::DecisionPoint;
use oci_spec::runtime::Spec;

use super::chain::{CallOutcome, Chain, PluginRun};
use super::view::{self, Context};
use super::{Engine, MAX_CACHED_SANDBOXES};
use bulkhead_nri::Deadline;

/// What CreateContainer hands on to PostCreate.
#[derive(Default)]
pub(super) struct Carried {
    /// Enforcing plugins' decided runs.
    pub(super) runs: Vec<PluginRun>,
    /// The resolved image.
    pub(super) image: Option<ImageInfo>,
    /// The runs' mutations were applied by the runtime at CreateContainer (an NRI adjustment):
    /// at PostCreate only their verdicts still count.
    pub(super) adjusted: bool,
}

/// The runs of one decision point: the chain's, and the carried CreateContainer runs judged
/// again at PostCreate.
pub(super) struct Decided {
    pub(super) context: Context,
    pub(super) context_error: Option<String>,
    pub(super) carried: Vec<PluginRun>,
    pub(super) runs: Vec<PluginRun>,
}

impl Engine {
    /// The pod sandbox's stored spec, cached; `None` when it cannot be read (host namespaces are
    /// then judged from the container's spec alone).
    pub(super) async fn sandbox_spec(&self, sandbox_id: &str) -> Option<Arc<Spec>> {
        let cached = self
            .sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sandbox_id)
            .cloned();
        if cached.is_some() {
            return cached;
        }
        match self.containerd.get_spec(sandbox_id).await {
            Ok(spec) => {
                let spec = Arc::new(spec);
                let mut cache = self
                    .sandboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= MAX_CACHED_SANDBOXES {
                    cache.clear();
                }
                cache.insert(sandbox_id.to_string(), spec.clone());
                Some(spec)
            }
            Err(error) => {
                tracing::debug!(%error, "no sandbox spec; host namespaces from the container alone");
                None
            }
        }
    }

    /// Image (and, from PostCreate on, spec) facts, within the deadline. `known_image` is the
    /// container's image as resolved at an earlier event, if any.
    async fn context(
        &self,
        container: &Container,
        with_spec: bool,
        known_image: Option<ImageInfo>,
        deadline: Deadline,
    ) -> Result<Context, String> {
        let budget = deadline.remaining() / 2;
        let gather = async {
            let mut context = Context::default();
            if known_image.is_some() {
                context.image = known_image;
            } else if let Some(image) = container.image_as_written() {
                context.image = Some(
                    self.containerd
                        .resolve_image(image)
                        .await
                        .map_err(|e| format!("resolving image {image}: {e}"))?,
                );
            }
            if with_spec {
                let read = self
                    .containerd
                    .stored_container(&container.id)
                    .await
                    .map_err(|e| format!("reading the stored spec: {e}"))?;
                let stored = read.spec;
                if let Some(renamed) = read.renamed_image {
                    let image =
                        renamed.map_err(|e| format!("resolving the requested image: {e}"))?;
                    context.renamed_from = container.image_as_written().map(str::to_owned);
                    context.image = Some(image);
                }
                let sandbox = self.sandbox_spec(&container.pod_id).await;
                let facts =
                    bulkhead_containerd::spec::facts_in_pod(&stored.spec, sandbox.as_deref());
                context.spec = Some((stored.spec.clone(), facts));
                context.stored = Some(stored);
            }
            Ok(context)
        };
        tokio::time::timeout(budget, gather)
            .await
            .unwrap_or_else(|_| Err(format!("containerd did not answer within {budget:?}")))
    }

    /// Gathers context and runs the chain at `point` (when `run_chain`), then judges the new
    /// runs and the `carried` ones against the plugins' grants and the container as it is now.
    #[allow(
        clippy::too_many_arguments,
        reason = "one decision's inputs, each named at the call"
    )]
    pub(super) async fn decide(
        &self,
        chain: &Chain,
        event: &LifecycleEvent,
        point: DecisionPoint,
        with_spec: bool,
        run_chain: bool,
        carried: Carried,
        deadline: Deadline,
    ) -> Decided {
        let container = event.container.clone().unwrap_or_default();
        let Carried {
            runs: carried,
            image,
            adjusted,
        } = carried;
        let started = std::time::Instant::now();
        let gathered = self.context(&container, with_spec, image, deadline).await;
        let context_us = started.elapsed().as_micros() as u64;
        match gathered {
            Ok(context) => {
                let view = view::container_view(event, point, &context);
                let mut carried = carried;
                if let Some(annotated) = &context.renamed_from
                    && point == DecisionPoint::PostCreateContainer
                    && !carried.is_empty()
                {
                    // CreateContainer was judged on the image under another name: judge it
                    // again under the caller's, before any process runs.
                    tracing::warn!(
                        annotated = %annotated,
                        requested = %view.image.reference,
                        "the runtime's image-name annotation is not the requested image; create-time plugins judge again"
                    );
                    let at_create =
                        view::container_view(event, DecisionPoint::CreateContainer, &context);
                    let rerun = chain.run(&at_create, deadline).await;
                    carried = if adjusted {
                        self.same_adjustment(chain, carried, rerun)
                    } else {
                        rerun
                    };
                }
                if adjusted {
                    strip_mutations(&mut carried);
                }
                let started = std::time::Instant::now();
                let mut runs = if run_chain {
                    chain.run(&view, deadline).await
                } else {
                    Vec::new()
                };
                tracing::debug!(
                    context_us,
                    chain_us = started.elapsed().as_micros() as u64,
                    "context gathered and chain run"
                );
                // At CreateContainer there is no stored spec yet, but NRI sent the container's
                // mounts and rlimits: decisions the runtime applies natively are judged on them.
                let rlimits = match &context.spec {
                    Some((spec, _)) => Some(view::effective_rlimits(spec, &self.rlimit_defaults)),
                    None if point == DecisionPoint::CreateContainer => {
                        Some(view::created_rlimits(&container, &self.rlimit_defaults))
                    }
                    None => None,
                };
                let subject = GrantSubject {
                    namespace: &view.pod.namespace,
                    spec: rlimits.as_ref().map(|rlimits| CurrentSpec {
                        seccomp: view.seccomp.as_ref(),
                        mounts: &view.mounts,
                        rlimits,
                    }),
                };
                chain.judge(&mut carried, &subject);
                chain.judge(&mut runs, &subject);
                self.count_runs(&runs, true);
                self.count_runs(&carried, false);
                Decided {
                    context,
                    context_error: None,
                    carried,
                    runs,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot gather the container's context; plugins fail");
                let message = format!("bulkhead could not gather the container's context: {error}");
                let runs = if run_chain {
                    chain.fail_all(point, "context", &message)
                } else {
                    Vec::new()
                };
                let carried = carried
                    .into_iter()
                    .map(|run| chain.fail_run(run, "context", &message))
                    .collect();
                self.count_runs(&runs, true);
                Decided {
                    context: Context::default(),
                    context_error: Some(error),
                    carried,
                    runs,
                }
            }
        }
    }
}

impl Engine {
    /// The runs judged again under the requested image name, for a container whose create-time
    /// decision the runtime already applied. Only verdicts can still take effect, so a run that
    /// now asks for other kinds of change than were applied fails (its failure policy decides):
    /// the runtime cannot apply them anymore, and dropping them could lose hardening. Kinds, not
    /// values, are compared: the applied values went through the grant checker (a granted
    /// mount's options are forced, say), the new ones not yet.
    fn same_adjustment(
        &self,
        chain: &Chain,
        applied: Vec<PluginRun>,
        rerun: Vec<PluginRun>,
    ) -> Vec<PluginRun> {
        let kinds = |run: &PluginRun| match &run.outcome {
            CallOutcome::Decided(decision) => {
                let mut kinds: Vec<_> = decision
                    .mutations
                    .iter()
                    .map(|m| m.mutation_kind())
                    .collect();
                kinds.sort();
                kinds
            }
            CallOutcome::Failed { .. } => Vec::new(),
        };
        rerun
            .into_iter()
            .map(|run| {
                let before = applied
                    .iter()
                    .find(|a| a.name == run.name)
                    .map(kinds)
                    .unwrap_or_default();
                if kinds(&run) != before {
                    chain.fail_run(
                        run,
                        "image-renamed",
                        "under the requested image name it asks for other changes than the runtime applied at create",
                    )
                } else {
                    run
                }
            })
            .collect()
    }
}

/// Drops the mutations of runs the runtime already applied, keeping their verdicts.
fn strip_mutations(runs: &mut [PluginRun]) {
    for run in runs {
        if let CallOutcome::Decided(decision) = &mut run.outcome {
            decision.mutations.clear();
        }
    }
}
