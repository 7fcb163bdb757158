//! The container as plugins see it: one flat, self-contained snapshot per decision point.
//!
//! The engine assembles a [`ContainerView`] from the NRI event, the stored OCI spec and the image
//! config; the Wasm runtime hands it to plugins as the WIT `container` record. Case files and
//! `bulkhead eval` write it as JSON. Every field has a default, so a case only spells out what
//! its plugin looks at:
//!
//! ```
//! use bulkhead_core::view::ContainerView;
//!
//! let view: ContainerView = serde_json::from_str(r#"{"image": {"tag": "latest"}}"#).unwrap();
//! assert_eq!(view.image.tag.as_deref(), Some("latest"));
//! assert!(!view.privileged);
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decision::SeccompProfile;

/// Ordered string map for labels and annotations (sorted, so output is stable).
pub type Labels = BTreeMap<String, String>;

/// Where in the container lifecycle a check runs (see DESIGN §3 for what each point can do).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionPoint {
    /// Before the container record exists; the spec is not known yet. A deny fails the create.
    #[default]
    CreateContainer,
    /// The record and its OCI spec exist: capabilities, seccomp and user are known, and spec
    /// mutations are applied here.
    PostCreateContainer,
    /// The task exists but no user process ran; a deny here kills it.
    StartContainer,
    /// The container's resources are being updated.
    UpdateContainer,
}

/// One container at one decision point.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ContainerView {
    /// Which decision point this view was taken at.
    pub event: DecisionPoint,
    /// containerd container id.
    pub id: String,
    /// Container name within its pod.
    pub name: String,
    /// containerd id of the pod sandbox.
    pub pod_sandbox_id: String,
    /// The pod.
    pub pod: PodView,
    /// The image.
    pub image: ImageView,
    /// The first process.
    pub process: ProcessView,
    /// Capability sets (empty before post-create).
    pub capabilities: CapabilitySets,
    /// Seccomp profile; `None` means unconfined.
    pub seccomp: Option<SeccompProfile>,
    /// `no_new_privileges` set.
    pub no_new_privileges: bool,
    /// Root filesystem read-only.
    pub readonly_rootfs: bool,
    /// Privileged container.
    pub privileged: bool,
    /// Host namespaces shared with the container.
    pub host_namespaces: HostNamespaces,
    /// Mounts.
    pub mounts: Vec<Mount>,
    /// Container annotations.
    pub annotations: Labels,
    /// Container labels.
    pub labels: Labels,
}

/// The pod a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Pod labels.
    pub labels: Labels,
    /// Pod annotations.
    pub annotations: Labels,
}

/// The image, as written and as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImageView {
    /// The reference as the user wrote it.
    pub reference: String,
    /// Normalized reference (`docker.io/library/busybox:latest`).
    pub normalized: String,
    /// Manifest digest, when resolved.
    pub digest: Option<String>,
    /// Registry host.
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Image config, when the host could read it.
    pub config: Option<ImageConfig>,
}

/// The policy-relevant part of the image config blob.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImageConfig {
    /// `User`, as written.
    pub user: Option<String>,
    /// `Env`, `NAME=value`.
    pub env: Vec<String>,
    /// Image labels.
    pub labels: Labels,
}

/// The first process of the container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ProcessView {
    /// Command line.
    pub args: Vec<String>,
    /// Environment, `NAME=value`.
    pub env: Vec<String>,
    /// Identity.
    pub user: User,
    /// Working directory.
    pub cwd: String,
}

/// The identity a process runs as. Defaults to root (uid 0), as the OCI spec does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// User name, when the spec has one.
    pub username: Option<String>,
}

/// Capability sets, as the runtime reported them (`CAP_*` strings; kept as text so that a
/// capability newer than this build still shows up rather than failing the view).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
#[allow(missing_docs, reason = "the sets are the kernel's")]
pub struct CapabilitySets {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

/// Host namespaces the container shares (true = the host's own).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
#[allow(missing_docs, reason = "one flag per Linux namespace kind")]
pub struct HostNamespaces {
    pub network: bool,
    pub pid: bool,
    pub ipc: bool,
    pub uts: bool,
    pub user: bool,
    pub cgroup: bool,
}

/// A mount, as in the OCI spec.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Mount {
    /// Path inside the container.
    pub destination: String,
    /// Source on the host.
    pub source: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Options.
    pub options: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_the_default_view() {
        let view: ContainerView = serde_json::from_str("{}").unwrap();
        assert_eq!(view, ContainerView::default());
        assert_eq!(view.event, DecisionPoint::CreateContainer);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = serde_json::from_str::<ContainerView>(r#"{"pod":{"namespace":"a","nmae":"b"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn full_view_round_trips() {
        let json = r#"{
            "event": "post-create-container", "id": "c1", "name": "web",
            "pod": {"name": "p", "namespace": "ns", "annotations": {"a": "b"}},
            "image": {"reference": "nginx", "normalized": "docker.io/library/nginx:latest",
                      "registry": "docker.io", "repository": "library/nginx", "tag": "latest",
                      "config": {"user": "101", "env": ["PATH=/bin"]}},
            "process": {"args": ["nginx"], "user": {"uid": 101, "gid": 101, "additional-gids": [1]}},
            "capabilities": {"bounding": ["CAP_CHOWN"]},
            "seccomp": {"default-action": "SCMP_ACT_ALLOW"},
            "host-namespaces": {"network": true},
            "mounts": [{"destination": "/data", "source": "/srv", "fs-type": "bind", "options": ["ro"]}]
        }"#;
        let view: ContainerView = serde_json::from_str(json).unwrap();
        assert_eq!(view.event, DecisionPoint::PostCreateContainer);
        assert_eq!(view.process.user.additional_gids, vec![1]);
        assert!(view.host_namespaces.network);
        let again: ContainerView =
            serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
        assert_eq!(again, view);
    }
}
