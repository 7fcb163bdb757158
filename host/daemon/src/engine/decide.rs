//! Gathering what a decision needs and running the chain on it: the image (resolved once per
//! container), the stored spec and the pod's sandbox spec from PostCreate on, then the plugins,
//! then every answer — new and carried — judged against its grants and the container as it is.

use std::sync::{Arc, PoisonError};

use bulkhead_containerd::ImageInfo;
use bulkhead_core::event::{Container, LifecycleEvent};
use bulkhead_core::grants::{CurrentSpec, Subject as GrantSubject};
use bulkhead_core::view::DecisionPoint;
use oci_spec::runtime::Spec;

use super::chain::PluginRun;
use super::view::{self, Context};
use super::{Engine, MAX_CACHED_SANDBOXES};
use crate::nri::Deadline;

/// What CreateContainer hands on to PostCreate.
#[derive(Default)]
pub(super) struct Carried {
    /// Enforcing plugins' decided runs.
    pub(super) runs: Vec<PluginRun>,
    /// The resolved image.
    pub(super) image: Option<ImageInfo>,
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
                let stored = self
                    .containerd
                    .get_stored_spec(&container.id)
                    .await
                    .map_err(|e| format!("reading the stored spec: {e}"))?;
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
    pub(super) async fn decide(
        &self,
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
        } = carried;
        let started = std::time::Instant::now();
        let gathered = self.context(&container, with_spec, image, deadline).await;
        let context_us = started.elapsed().as_micros() as u64;
        match gathered {
            Ok(context) => {
                let view = view::container_view(event, point, &context);
                let started = std::time::Instant::now();
                let mut runs = if run_chain {
                    self.chain.run(&view, deadline).await
                } else {
                    Vec::new()
                };
                tracing::debug!(
                    context_us,
                    chain_us = started.elapsed().as_micros() as u64,
                    "context gathered and chain run"
                );
                let mut carried = carried;
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
                self.chain.judge(&mut carried, &subject);
                self.chain.judge(&mut runs, &subject);
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
                    self.chain.fail_all(point, "context", &message)
                } else {
                    Vec::new()
                };
                let carried = carried
                    .into_iter()
                    .map(|run| self.chain.fail_run(run, "context", &message))
                    .collect();
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
