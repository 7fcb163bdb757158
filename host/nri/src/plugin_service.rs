//! The NRI `Plugin` service: what containerd calls on bulkhead.
//!
//! Configure records what the runtime is and subscribes to an explicit event mask; Synchronize
//! collects the runtime's pods and containers across batches (`more`) and hands the full list to
//! the handler; every lifecycle event is decoded and passed to the handler in its own span, and
//! its [`Outcome`] becomes the reply. The event's log line ([`Answered`]) is written by the
//! server after the reply is sent.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bulkhead_core::event::{Container, EventKind, EventMask, LifecycleEvent, Pod, RuntimeInfo};
use bulkhead_proto::nri;
use prost::Message;
use tokio::sync::watch;
use tracing::Instrument;

use super::convert;
use super::handler::{Adjustment, Deadline, EventHandler, Outcome};

/// gRPC status code for an invalid argument (undecodable request).
pub const CODE_INVALID_ARGUMENT: i32 = 3;
/// gRPC status code for a refused pod or container.
pub const CODE_PERMISSION_DENIED: i32 = 7;
/// gRPC status code for a method bulkhead does not implement.
pub const CODE_UNIMPLEMENTED: i32 = 12;

/// The request timeout NRI uses when the runtime does not say (milliseconds in Configure).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The registration timeout NRI uses when the runtime does not say.
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The subscription bit of `ValidateContainerAdjustment` (NRI event 14, v0.10+): asked for only
/// from runtimes at that level, outside [`EventMask`], which holds the lifecycle events.
pub const VALIDATE_CONTAINER_ADJUSTMENT_BIT: u32 = 1 << (14 - 1);
/// Longest rejection reason sent back: it quotes names other plugins chose.
const MAX_REASON_BYTES: usize = 1024;

/// An error reply: a gRPC status code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcStatus {
    /// gRPC status code.
    pub code: i32,
    /// Message shown to the runtime (and, for refusals, to the CRI caller).
    pub message: String,
}

#[derive(Default)]
struct SyncBatch {
    pods: Vec<Pod>,
    containers: Vec<Container>,
}

/// The `Plugin` service of one connection.
pub struct PluginService<H> {
    handler: Arc<H>,
    events: EventMask,
    runtime: watch::Sender<Option<RuntimeInfo>>,
    batch: Mutex<SyncBatch>,
    synchronized: watch::Sender<bool>,
}

impl<H: EventHandler> PluginService<H> {
    /// A service subscribing to `events` and passing them to `handler`.
    pub fn new(handler: Arc<H>, events: EventMask) -> PluginService<H> {
        PluginService {
            handler,
            events,
            runtime: watch::Sender::new(None),
            batch: Mutex::default(),
            synchronized: watch::Sender::new(false),
        }
    }

    /// Becomes `true` once the runtime has delivered its last Synchronize batch.
    pub fn synchronized(&self) -> watch::Receiver<bool> {
        self.synchronized.subscribe()
    }

    /// Whether the runtime applies a seccomp profile set at CreateContainer (NRI v0.10+).
    fn applies_seccomp(&self) -> bool {
        self.runtime()
            .is_some_and(|runtime| runtime.nri_level().capabilities().native_seccomp)
    }

    /// The runtime's self-description, once Configure has arrived.
    pub fn runtime(&self) -> Option<RuntimeInfo> {
        self.runtime.borrow().clone()
    }

    /// How long the runtime waits for an answer before disconnecting bulkhead.
    pub fn request_timeout(&self) -> Duration {
        self.runtime
            .borrow()
            .as_ref()
            .map_or(DEFAULT_REQUEST_TIMEOUT, |runtime| runtime.request_timeout)
    }

    /// Runs `method` on its encoded request and returns the encoded reply, and for lifecycle
    /// events what to log once the reply is sent.
    pub async fn dispatch(
        &self,
        method: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> (Result<Vec<u8>, RpcStatus>, Option<Answered>) {
        let mut answered = None;
        let reply = self.reply(method, payload, deadline, &mut answered).await;
        (reply, answered)
    }

    async fn reply(
        &self,
        method: &str,
        payload: &[u8],
        deadline: Deadline,
        answered: &mut Option<Answered>,
    ) -> Result<Vec<u8>, RpcStatus> {
        match method {
            "Configure" => self.configure(decode(payload, method)?),
            "Synchronize" => self.synchronize(decode(payload, method)?).await,
            "Shutdown" => {
                tracing::info!("the runtime announced its shutdown");
                Ok(Vec::new())
            }
            "CreateContainer" => {
                let request: nri::CreateContainerRequest = decode(payload, method)?;
                let event =
                    container_event(EventKind::CreateContainer, request.pod, request.container);
                let adjust = self
                    .decide(&event, deadline, answered)
                    .await?
                    .map(|adjustment| convert::adjustment(&adjustment));
                Ok(nri::CreateContainerResponse {
                    adjust,
                    ..nri::CreateContainerResponse::default()
                }
                .encode_to_vec())
            }
            "UpdateContainer" => {
                let request: nri::UpdateContainerRequest = decode(payload, method)?;
                let event =
                    container_event(EventKind::UpdateContainer, request.pod, request.container);
                self.decide(&event, deadline, answered).await?;
                Ok(nri::UpdateContainerResponse::default().encode_to_vec())
            }
            "StopContainer" => {
                let request: nri::StopContainerRequest = decode(payload, method)?;
                let event =
                    container_event(EventKind::StopContainer, request.pod, request.container);
                self.decide(&event, deadline, answered).await?;
                Ok(nri::StopContainerResponse::default().encode_to_vec())
            }
            // NRI v0.12's own RPC for each event that older runtimes send as a StateChange.
            "RunPodSandbox"
            | "StopPodSandbox"
            | "RemovePodSandbox"
            | "PostCreateContainer"
            | "StartContainer"
            | "PostStartContainer"
            | "PostUpdateContainer"
            | "RemoveContainer" => {
                let request: nri::LifecycleEventRequest = decode(payload, method)?;
                let kind = EventKind::ALL
                    .into_iter()
                    .find(|kind| kind.name() == method)
                    .expect("every method matched above is an event name");
                let event = container_event(kind, request.pod, request.container);
                self.decide(&event, deadline, answered).await?;
                Ok(Vec::new())
            }
            "ValidateContainerAdjustment" => {
                let request: nri::ValidateContainerAdjustmentRequest = decode(payload, method)?;
                let pending = convert::pending_adjustment(request);
                let container = pending.container.as_ref().map(|c| c.name.clone());
                let reason = self.handler.validate_adjustment(&pending).await;
                if let Some(reason) = &reason {
                    tracing::warn!(container = container.as_deref().unwrap_or_default(), %reason, "another NRI plugin's adjustment rejected");
                }
                Ok(nri::ValidateContainerAdjustmentResponse {
                    reject: reason.is_some(),
                    reason: reason
                        .map(|r| bulkhead_core::text::bounded(&r, MAX_REASON_BYTES))
                        .unwrap_or_default(),
                }
                .encode_to_vec())
            }
            "StateChange" => {
                let request: nri::StateChangeEvent = decode(payload, method)?;
                let Some(kind) = EventKind::from_nri_number(request.event) else {
                    tracing::debug!(
                        event = request.event,
                        "ignoring an event this version does not know"
                    );
                    return Ok(Vec::new());
                };
                let event = container_event(kind, request.pod, request.container);
                self.decide(&event, deadline, answered).await?;
                Ok(Vec::new())
            }
            other => Err(RpcStatus {
                code: CODE_UNIMPLEMENTED,
                message: format!("bulkhead does not implement Plugin/{other}"),
            }),
        }
    }

    fn configure(&self, request: nri::ConfigureRequest) -> Result<Vec<u8>, RpcStatus> {
        let runtime = RuntimeInfo {
            name: request.runtime_name,
            version: request.runtime_version,
            nri_version: request.nri_version,
            request_timeout: positive_millis(request.request_timeout)
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            registration_timeout: positive_millis(request.registration_timeout)
                .unwrap_or(DEFAULT_REGISTRATION_TIMEOUT),
        };
        let mut events = self.events.bits();
        if self.handler.validates_adjustments() {
            if runtime.nri_level().capabilities().validation {
                events |= VALIDATE_CONTAINER_ADJUSTMENT_BIT;
            } else {
                tracing::warn!(
                    nri_level = %runtime.nri_level(),
                    "[nri.validation] is on, but this runtime has no validation phase (NRI v0.10, containerd 2.2, and later): other NRI plugins' adjustments are not validated"
                );
            }
        }
        tracing::info!(
            runtime = %runtime.name,
            version = %runtime.version,
            nri_version = %runtime.nri_version,
            nri_level = %runtime.nri_level(),
            request_timeout_ms = runtime.request_timeout.as_millis() as u64,
            events = format_args!("{events:#x}"),
            "configured by the runtime"
        );
        self.runtime.send_replace(Some(runtime));
        Ok(nri::ConfigureResponse {
            events: events as i32,
            request_timeout: 0,
        }
        .encode_to_vec())
    }

    async fn synchronize(&self, request: nri::SynchronizeRequest) -> Result<Vec<u8>, RpcStatus> {
        let more = request.more;
        let complete = {
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            batch
                .pods
                .extend(request.pods.into_iter().map(|p| convert::pod(Some(p))));
            batch
                .containers
                .extend(request.containers.into_iter().map(convert::container));
            (!more).then(|| std::mem::take(&mut *batch))
        };
        if let Some(batch) = complete {
            tracing::info!(
                pods = batch.pods.len(),
                containers = batch.containers.len(),
                "synchronized with the runtime"
            );
            for container in &batch.containers {
                tracing::debug!(container.id = %container.id, container.name = %container.name, "existing container");
            }
            let runtime = self.runtime().unwrap_or_else(|| RuntimeInfo {
                name: String::new(),
                version: String::new(),
                nri_version: String::new(),
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
            });
            self.handler
                .synchronized(&runtime, &batch.pods, &batch.containers)
                .await;
            self.synchronized.send_replace(true);
        }
        Ok(nri::SynchronizeResponse {
            update: Vec::new(),
            more,
        }
        .encode_to_vec())
    }

    /// Asks the handler; an error is a refusal the runtime honours, `Some` an adjustment for
    /// the container being created.
    async fn decide(
        &self,
        event: &LifecycleEvent,
        deadline: Deadline,
        answered: &mut Option<Answered>,
    ) -> Result<Option<Adjustment>, RpcStatus> {
        let span = event_span(event);
        let started = Instant::now();
        let outcome = self
            .handler
            .handle(event, deadline)
            .instrument(span.clone())
            .await;
        *answered = Some(Answered {
            span,
            handler: started.elapsed(),
            refusal: match &outcome {
                Outcome::Refuse { reason } => Some(reason.clone()),
                Outcome::Allow | Outcome::Adjust(_) => None,
            },
        });
        match outcome {
            Outcome::Refuse { reason } if event.kind.can_refuse() => Err(RpcStatus {
                code: CODE_PERMISSION_DENIED,
                message: reason,
            }),
            Outcome::Adjust(adjustment)
                if adjustment.seccomp.is_some() && !self.applies_seccomp() =>
            {
                // Never send a field the runtime drops silently: the container would run
                // without the profile the decision required.
                tracing::error!(
                    "a seccomp adjustment for a runtime that cannot apply one; refused"
                );
                Err(RpcStatus {
                    code: CODE_PERMISSION_DENIED,
                    message: "bulkhead: the required seccomp profile cannot be set through this runtime's NRI version; refused (fail closed)".into(),
                })
            }
            Outcome::Adjust(adjustment) if event.kind == EventKind::CreateContainer => {
                Ok(Some(adjustment))
            }
            _ => Ok(None),
        }
    }
}

/// One handled lifecycle event, logged once its answer is on its way to the runtime: the log
/// write is not part of the time containerd waits (it holds a node-wide lock for every NRI
/// call). `handler_us` is the time bulkhead's handler took — the serialized cost per event.
pub struct Answered {
    span: tracing::Span,
    handler: Duration,
    refusal: Option<String>,
}

impl Answered {
    /// Writes the event's log line (and the refusal's, if any) in the event's span.
    pub fn log(self) {
        let _entered = self.span.enter();
        let handler_us = self.handler.as_micros() as u64;
        match &self.refusal {
            Some(reason) => {
                tracing::warn!(%reason, "refused");
                tracing::info!(handler_us, outcome = "refuse", "event");
            }
            None => tracing::info!(handler_us, outcome = "allow", "event"),
        }
    }
}

fn event_span(event: &LifecycleEvent) -> tracing::Span {
    let (id, name) = event
        .container
        .as_ref()
        .map_or(("", ""), |c| (c.id.as_str(), c.name.as_str()));
    tracing::info_span!(
        "nri",
        event = %event.kind,
        container.id = id,
        container.name = name,
        pod.namespace = %event.pod.namespace,
        pod.name = %event.pod.name,
    )
}

fn container_event(
    kind: EventKind,
    pod: Option<nri::PodSandbox>,
    container: Option<nri::Container>,
) -> LifecycleEvent {
    LifecycleEvent {
        kind,
        pod: convert::pod(pod),
        container: if kind.is_pod_event() {
            None
        } else {
            container.map(convert::container)
        },
    }
}

fn decode<M: Message + Default>(payload: &[u8], method: &str) -> Result<M, RpcStatus> {
    M::decode(payload).map_err(|error| RpcStatus {
        code: CODE_INVALID_ARGUMENT,
        message: format!("bulkhead could not decode the {method} request: {error}"),
    })
}

fn positive_millis(millis: i64) -> Option<Duration> {
    u64::try_from(millis)
        .ok()
        .filter(|&m| m > 0)
        .map(Duration::from_millis)
}
