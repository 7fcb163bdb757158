//! The seam between the NRI protocol and whatever decides about events.
//!
//! The protocol layer decodes an event, computes the moment by which containerd must have its
//! answer, and asks an [`EventHandler`]. The engine implements the trait; tests implement it with
//! fakes; [`ObserveOnly`] lets everything through and is what runs when no policy is loaded.

use std::future::Future;
use std::time::Duration;

use bulkhead_core::event::{Container, LifecycleEvent, Mount, Pod, Rlimit, RuntimeInfo};
use bulkhead_core::nri_validation::OwnedField;
use tokio::time::Instant;

/// The moment by which a handler must have decided. The protocol layer sets it before the
/// runtime's own deadline, with a safety margin for encoding and sending the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the decision must be ready.
    pub at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
        }
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// What bulkhead answers the runtime about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Let the pod or container proceed.
    Allow,
    /// Let the container be created with these changes, which the runtime applies itself
    /// (CreateContainer only; at any other event it means [`Outcome::Allow`]).
    Adjust(Adjustment),
    /// Stop it. Honoured by the runtime at RunPodSandbox, CreateContainer and StartContainer:
    /// the CRI caller receives PermissionDenied with `reason`.
    Refuse {
        /// Why, naming the plugin and its rule.
        reason: String,
    },
}

/// Changes the runtime makes to a container it is creating (NRI's `ContainerAdjustment`): the
/// fields containerd 2.0/2.1 applies natively, and the seccomp profile, which only runtimes at
/// NRI v0.10 and later apply (the protocol layer refuses the creation rather than send it to an
/// older runtime, which would drop it silently).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adjustment {
    /// The seccomp profile to set (`LinuxContainerAdjustment.seccomp_policy`, NRI v0.10+).
    pub seccomp: Option<std::sync::Arc<bulkhead_core::decision::SeccompProfile>>,
    /// Environment variables to set, `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Annotations to set, `(key, value)`.
    pub annotations: Vec<(String, String)>,
    /// Mounts to add (one at the same destination is replaced).
    pub mounts: Vec<Mount>,
    /// Resource limits to set.
    pub rlimits: Vec<Rlimit>,
}

/// A container's adjustment as the runtime is about to apply it, with the plugin that set each
/// field: what a validator judges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingAdjustment {
    /// The container's pod.
    pub pod: Pod,
    /// The container, as it was before any plugin adjusted it.
    pub container: Option<Container>,
    /// Every adjusted field and its owning plugin.
    pub owned: Vec<OwnedField>,
}

/// Decides about lifecycle events. Implementations must return by the deadline; the protocol
/// layer answers containerd on its own when they do not (refusing where the runtime honours
/// refusals), so a stuck handler can never make containerd disconnect bulkhead.
pub trait EventHandler: Send + Sync + 'static {
    /// The runtime's full list of pods and containers, after every (re)connection.
    fn synchronized(
        &self,
        runtime: &RuntimeInfo,
        pods: &[Pod],
        containers: &[Container],
    ) -> impl Future<Output = ()> + Send {
        let _ = (runtime, pods, containers);
        std::future::ready(())
    }

    /// Whether this handler judges other NRI plugins' adjustments (`ValidateContainerAdjustment`,
    /// NRI v0.10+). It is subscribed to only on runtimes at that level.
    fn validates_adjustments(&self) -> bool {
        false
    }

    /// Judges one container's pending adjustment; `Some(reason)` rejects its creation.
    fn validate_adjustment(
        &self,
        pending: &PendingAdjustment,
    ) -> impl Future<Output = Option<String>> + Send {
        let _ = pending;
        std::future::ready(None)
    }

    /// One lifecycle event.
    fn handle(
        &self,
        event: &LifecycleEvent,
        deadline: Deadline,
    ) -> impl Future<Output = Outcome> + Send;
}

/// A handler that allows everything: bulkhead watches and logs but enforces nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ObserveOnly;

impl EventHandler for ObserveOnly {
    fn handle(
        &self,
        _event: &LifecycleEvent,
        _deadline: Deadline,
    ) -> impl Future<Output = Outcome> + Send {
        std::future::ready(Outcome::Allow)
    }
}
