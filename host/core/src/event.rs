//! Pods, containers and the lifecycle events the container runtime reports about them.
//!
//! These are bulkhead's own types, decoded from NRI by the daemon's `nri` module. They carry what
//! the runtime tells every plugin (ids, names, labels, annotations, process, mounts, namespaces);
//! facts NRI v0.8 does not carry (capabilities, seccomp, image digest) are gathered elsewhere.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::nri_level::NriLevel;

/// A point in a pod's or container's life at which the runtime consults plugins.
///
/// The discriminants are NRI's event numbers, which also define the subscription bit
/// (`1 << (number - 1)`); they are part of the wire protocol and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A pod sandbox is being started.
    RunPodSandbox = 1,
    /// A pod sandbox is being stopped.
    StopPodSandbox = 2,
    /// A pod sandbox is being removed.
    RemovePodSandbox = 3,
    /// A container is about to be created; the runtime honours a refusal.
    CreateContainer = 4,
    /// A container record and its OCI spec exist; refusals are only logged by the runtime.
    PostCreateContainer = 5,
    /// A container's task exists but no process runs yet; the runtime honours a refusal.
    StartContainer = 6,
    /// A container's process is running.
    PostStartContainer = 7,
    /// A container's resources are about to change.
    UpdateContainer = 8,
    /// A container's resources changed.
    PostUpdateContainer = 9,
    /// A container is being stopped.
    StopContainer = 10,
    /// A container has been removed.
    RemoveContainer = 11,
}

impl EventKind {
    /// Every event NRI v0.8 defines, in lifecycle order.
    pub const ALL: [EventKind; 11] = [
        EventKind::RunPodSandbox,
        EventKind::StopPodSandbox,
        EventKind::RemovePodSandbox,
        EventKind::CreateContainer,
        EventKind::PostCreateContainer,
        EventKind::StartContainer,
        EventKind::PostStartContainer,
        EventKind::UpdateContainer,
        EventKind::PostUpdateContainer,
        EventKind::StopContainer,
        EventKind::RemoveContainer,
    ];

    /// NRI's number for this event.
    pub fn nri_number(self) -> i32 {
        self as i32
    }

    /// The event NRI numbers `number`, if this version of bulkhead knows it.
    pub fn from_nri_number(number: i32) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.nri_number() == number)
    }

    /// The event's name as NRI and the logs spell it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::RunPodSandbox => "RunPodSandbox",
            EventKind::StopPodSandbox => "StopPodSandbox",
            EventKind::RemovePodSandbox => "RemovePodSandbox",
            EventKind::CreateContainer => "CreateContainer",
            EventKind::PostCreateContainer => "PostCreateContainer",
            EventKind::StartContainer => "StartContainer",
            EventKind::PostStartContainer => "PostStartContainer",
            EventKind::UpdateContainer => "UpdateContainer",
            EventKind::PostUpdateContainer => "PostUpdateContainer",
            EventKind::StopContainer => "StopContainer",
            EventKind::RemoveContainer => "RemoveContainer",
        }
    }

    /// Whether the event concerns a pod sandbox rather than one of its containers.
    pub fn is_pod_event(self) -> bool {
        matches!(
            self,
            EventKind::RunPodSandbox | EventKind::StopPodSandbox | EventKind::RemovePodSandbox
        )
    }

    /// Whether an error answered to this event stops the pod or container (containerd honours
    /// errors only here; elsewhere it just logs them).
    pub fn can_refuse(self) -> bool {
        matches!(
            self,
            EventKind::RunPodSandbox | EventKind::CreateContainer | EventKind::StartContainer
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of events to subscribe to, in NRI's bitmask encoding.
///
/// NRI reads an empty mask as "every event", and newer runtimes define more events than bulkhead
/// knows, so the daemon always sends an explicit, non-empty mask built from this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventMask(u32);

impl EventMask {
    /// The mask holding exactly `kinds`.
    pub fn of(kinds: impl IntoIterator<Item = EventKind>) -> EventMask {
        EventMask(
            kinds
                .into_iter()
                .fold(0, |bits, kind| bits | 1 << (kind.nri_number() - 1)),
        )
    }

    /// The mask with every event bulkhead knows.
    pub fn all() -> EventMask {
        EventMask::of(EventKind::ALL)
    }

    /// The wire encoding.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether `kind` is in the mask.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & (1 << (kind.nri_number() - 1)) != 0
    }

    /// The events in the mask, in NRI's order.
    pub fn kinds(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

/// A Linux namespace of a pod or container. A namespace type missing from a container's list is
/// shared with the host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Namespace {
    /// `network`, `pid`, `ipc`, `uts`, `mount`, `user` or `cgroup`.
    pub kind: String,
    /// A path to join an existing namespace; empty for a new one.
    #[serde(default)]
    pub path: String,
}

/// A pod sandbox as the runtime describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pod {
    /// Sandbox id given by the runtime.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Kubernetes pod UID.
    #[serde(default)]
    pub uid: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Runtime handler (RuntimeClass) the pod runs with; empty for the default.
    #[serde(default)]
    pub runtime_handler: String,
    /// The sandbox's Linux namespaces.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerState {
    /// The runtime did not say.
    #[default]
    Unknown,
    /// Created, not started.
    Created,
    /// Paused.
    Paused,
    /// Running.
    Running,
    /// Exited or stopped.
    Stopped,
}

/// A mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mount {
    /// Path inside the container.
    pub destination: String,
    /// Filesystem type, e.g. `bind`, `tmpfs`, `proc`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Source on the host (or device, or filesystem name).
    #[serde(default)]
    pub source: String,
    /// Mount options, e.g. `ro`, `rbind`, `nosuid`.
    #[serde(default)]
    pub options: Vec<String>,
}

/// A POSIX resource limit of a container's process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rlimit {
    /// Limit name, e.g. `RLIMIT_NOFILE`.
    pub kind: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// A container as the runtime describes it over NRI.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Container {
    /// Container id given by the runtime.
    pub id: String,
    /// Id of the pod sandbox the container belongs to.
    pub pod_id: String,
    /// Container name within its pod.
    pub name: String,
    /// Lifecycle state.
    #[serde(default)]
    pub state: ContainerState,
    /// Container labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Container annotations (CRI puts the image name as written here).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Process arguments, entrypoint first.
    #[serde(default)]
    pub args: Vec<String>,
    /// Process environment as `KEY=value` strings.
    #[serde(default)]
    pub env: Vec<String>,
    /// Mounts.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Resource limits.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// Linux namespaces the container gets; a missing type is shared with the host.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// Process id of the container's task, once it exists.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The seccomp profile the CRI caller asked for, as runtimes at NRI v0.10 and later report
    /// it (`None` from older runtimes, and when the caller set none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_seccomp: Option<RequestedSeccomp>,
}

/// A CRI container's seccomp request (`SecurityProfile`), before the runtime turns it into a
/// profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestedSeccomp {
    /// The runtime's default profile.
    RuntimeDefault,
    /// No profile at all.
    Unconfined,
    /// A profile file on the node.
    Localhost(String),
}

impl Container {
    /// The CRI annotation holding the image exactly as the pod spec wrote it.
    pub const IMAGE_NAME_ANNOTATION: &'static str = "io.kubernetes.cri.image-name";

    /// The image as the user wrote it, if the runtime said.
    pub fn image_as_written(&self) -> Option<&str> {
        self.annotations
            .get(Self::IMAGE_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// One lifecycle event: which point, for which pod, and for which container (absent for pod
/// events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// The decision point.
    pub kind: EventKind,
    /// The pod concerned (for container events: the container's pod).
    pub pod: Pod,
    /// The container concerned, for container events.
    pub container: Option<Container>,
}

/// What the runtime said about itself when it configured bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// Runtime name, e.g. `containerd`.
    pub name: String,
    /// Runtime version, e.g. `2.1.9+unknown`.
    pub version: String,
    /// The NRI version the runtime reported (NRI v0.12 and later; empty before).
    pub nri_version: String,
    /// How long the runtime waits for an answer before it disconnects the plugin.
    pub request_timeout: Duration,
    /// How long the runtime waits for registration to complete.
    pub registration_timeout: Duration,
}

impl RuntimeInfo {
    /// The runtime's NRI contract level ([`NriLevel::of_runtime`]); a runtime the table does
    /// not know is taken at v0.8, the contract bulkhead was built on.
    pub fn nri_level(&self) -> NriLevel {
        NriLevel::of_runtime(&self.name, &self.version, &self.nri_version).unwrap_or(NriLevel::V0_8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_numbers_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_nri_number(kind.nri_number()), Some(kind));
        }
        assert_eq!(EventKind::from_nri_number(0), None);
        assert_eq!(EventKind::from_nri_number(12), None);
    }

    #[test]
    fn mask_of_all_events_is_nri_all() {
        assert_eq!(EventMask::all().bits(), 0x7FF);
    }

    #[test]
    fn mask_sets_bit_event_minus_one() {
        let mask = EventMask::of([EventKind::CreateContainer, EventKind::StartContainer]);
        assert_eq!(mask.bits(), (1 << 3) | (1 << 5));
        assert!(mask.contains(EventKind::CreateContainer));
        assert!(!mask.contains(EventKind::PostCreateContainer));
    }

    #[test]
    fn only_create_start_and_run_pod_can_refuse() {
        let refusing: Vec<_> = EventKind::ALL
            .into_iter()
            .filter(|kind| kind.can_refuse())
            .collect();
        assert_eq!(
            refusing,
            [
                EventKind::RunPodSandbox,
                EventKind::CreateContainer,
                EventKind::StartContainer
            ]
        );
    }

    #[test]
    fn image_as_written_reads_the_cri_annotation() {
        let mut container = Container::default();
        assert_eq!(container.image_as_written(), None);
        container
            .annotations
            .insert(Container::IMAGE_NAME_ANNOTATION.into(), "busybox".into());
        assert_eq!(container.image_as_written(), Some("busybox"));
    }
}
