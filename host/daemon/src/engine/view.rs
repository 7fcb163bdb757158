//! Assembling the [`ContainerView`] plugins see, from the NRI event, the image facts and (from
//! PostCreateContainer on) the stored OCI spec.
//!
//! [`stored_view`] rebuilds the same view for an existing container from containerd alone
//! (`bulkhead view`).

mod stored;

use std::collections::BTreeMap;

use bulkhead_containerd::{ImageInfo, SpecFacts};
use bulkhead_core::decision::{KNOWN_RLIMITS, Rlimit};
use bulkhead_core::event::{Container, LifecycleEvent};
use bulkhead_core::view::{
    CapabilitySets, ContainerView, DecisionPoint, HostNamespaces, ImageConfig, ImageView, Mount,
    PodView, ProcessView, User,
};
use oci_spec::runtime::Spec;

use super::oci;

pub use stored::{StoredView, StoredViewError, stored_view};

/// What the engine could learn beyond NRI for one container.
#[derive(Debug, Default)]
pub struct Context {
    /// The image, resolved through containerd.
    pub image: Option<ImageInfo>,
    /// The stored spec and the facts read from it (PostCreateContainer and later).
    pub spec: Option<(Spec, SpecFacts)>,
    /// The stored spec as read, kept so a patch can start from it instead of reading it again.
    pub stored: Option<bulkhead_containerd::spec::StoredSpec>,
    /// The image name CRI's annotation gave, when it was not the one the caller asked for and
    /// [`Context::image`] was resolved again under the caller's name (containerd 1.7).
    pub renamed_from: Option<String>,
}

/// The view of `event`'s container at `point`.
pub fn container_view(
    event: &LifecycleEvent,
    point: DecisionPoint,
    context: &Context,
) -> ContainerView {
    let container = event.container.clone().unwrap_or_default();
    let pod = &event.pod;
    let mut view = ContainerView {
        event: point,
        id: container.id.clone(),
        name: container.name.clone(),
        pod_sandbox_id: container.pod_id.clone(),
        pod: PodView {
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            uid: pod.uid.clone(),
            labels: pod.labels.clone(),
            annotations: pod.annotations.clone(),
        },
        image: image_view(
            container.image_as_written().unwrap_or_default(),
            context.image.as_ref(),
        ),
        process: ProcessView {
            args: container.args.clone(),
            env: container.env.clone(),
            user: User::default(),
            cwd: String::new(),
        },
        mounts: container
            .mounts
            .iter()
            .map(|m| Mount {
                destination: m.destination.clone(),
                source: m.source.clone(),
                fs_type: m.kind.clone(),
                options: m.options.clone(),
            })
            .collect(),
        annotations: container.annotations.clone(),
        labels: container.labels.clone(),
        ..ContainerView::default()
    };
    if let Some((spec, facts)) = &context.spec {
        add_spec_facts(&mut view, spec, facts);
    }
    view
}

/// The limits a container gets for the rlimits its spec does not set. runc leaves those as the
/// shim inherited them from containerd; bulkhead cannot read containerd's, so it takes its own,
/// which on a node are the service manager's defaults and no higher than containerd's
/// (containerd's unit raises its limits, bulkhead's does not). Judging against lower defaults
/// only refuses more.
pub fn runtime_rlimits() -> BTreeMap<String, Rlimit> {
    use rustix::process::{Resource, getrlimit};
    let resources = [
        ("RLIMIT_AS", Resource::As),
        ("RLIMIT_CORE", Resource::Core),
        ("RLIMIT_CPU", Resource::Cpu),
        ("RLIMIT_DATA", Resource::Data),
        ("RLIMIT_FSIZE", Resource::Fsize),
        ("RLIMIT_LOCKS", Resource::Locks),
        ("RLIMIT_MEMLOCK", Resource::Memlock),
        ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
        ("RLIMIT_NICE", Resource::Nice),
        ("RLIMIT_NOFILE", Resource::Nofile),
        ("RLIMIT_NPROC", Resource::Nproc),
        ("RLIMIT_RSS", Resource::Rss),
        ("RLIMIT_RTPRIO", Resource::Rtprio),
        ("RLIMIT_RTTIME", Resource::Rttime),
        ("RLIMIT_SIGPENDING", Resource::Sigpending),
        ("RLIMIT_STACK", Resource::Stack),
    ];
    resources
        .into_iter()
        .filter(|(name, _)| KNOWN_RLIMITS.contains(name))
        .map(|(name, resource)| {
            let limit = getrlimit(resource);
            let value = |v: Option<u64>| v.unwrap_or(u64::MAX);
            (
                name.to_string(),
                Rlimit {
                    kind: name.to_string(),
                    soft: value(limit.current),
                    hard: value(limit.maximum),
                },
            )
        })
        .collect()
}

/// Effective rlimits of a container being created, from what the runtime sent over NRI (the
/// spec's process rlimits as containerd generated them) on top of `defaults`.
pub fn created_rlimits(
    container: &Container,
    defaults: &BTreeMap<String, Rlimit>,
) -> BTreeMap<String, Rlimit> {
    let mut limits = defaults.clone();
    for limit in &container.rlimits {
        limits.insert(
            limit.kind.clone(),
            Rlimit {
                kind: limit.kind.clone(),
                soft: limit.soft,
                hard: limit.hard,
            },
        );
    }
    limits
}

/// The container's rlimits: what its spec sets, and `defaults` for the rest.
pub fn effective_rlimits(
    spec: &Spec,
    defaults: &BTreeMap<String, Rlimit>,
) -> BTreeMap<String, Rlimit> {
    let mut limits = defaults.clone();
    let set = spec
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone())
        .unwrap_or_default();
    for limit in set {
        let kind = serde_json::to_value(limit.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        limits.insert(
            kind.clone(),
            Rlimit {
                kind,
                soft: limit.soft(),
                hard: limit.hard(),
            },
        );
    }
    limits
}

/// The image part of the view, from the name as written and what containerd resolved.
pub(super) fn image_view(as_written: &str, info: Option<&ImageInfo>) -> ImageView {
    let mut image = ImageView {
        reference: as_written.to_string(),
        ..ImageView::default()
    };
    let reference = info
        .and_then(|i| i.reference.clone())
        .or_else(|| bulkhead_containerd::Reference::parse(as_written).ok());
    if let Some(reference) = reference {
        image.normalized = reference.normalized;
        image.registry = reference.registry;
        image.repository = reference.repository;
        image.tag = reference.tag;
        image.digest = reference.digest;
    }
    if let Some(info) = info {
        image.digest = Some(info.digest.clone());
        image.config = Some(ImageConfig {
            user: info.config.user.clone(),
            env: info.config.env.clone(),
            labels: info.config.labels.clone(),
        });
    }
    image
}

fn add_spec_facts(view: &mut ContainerView, spec: &Spec, facts: &SpecFacts) {
    let caps = &facts.capabilities;
    view.capabilities = CapabilitySets {
        bounding: caps.bounding.clone(),
        effective: caps.effective.clone(),
        permitted: caps.permitted.clone(),
        inheritable: caps.inheritable.clone(),
        ambient: caps.ambient.clone(),
    };
    view.seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| {
            oci::seccomp_from_oci(s).unwrap_or_else(|| bulkhead_core::decision::SeccompProfile {
                default_action: bulkhead_core::decision::SeccompAction::Errno,
                default_errno: None,
                architectures: Vec::new(),
                syscalls: Vec::new(),
            })
        });
    view.no_new_privileges = facts.no_new_privileges;
    view.readonly_rootfs = facts.readonly_rootfs;
    view.privileged = facts.privileged;
    let shared = |kind: &str| facts.host_namespaces.iter().any(|n| n == kind);
    view.host_namespaces = HostNamespaces {
        network: shared("network"),
        pid: shared("pid"),
        ipc: shared("ipc"),
        uts: shared("uts"),
        user: false,
        cgroup: false,
    };
    if let Some(process) = spec.process() {
        view.process.user = User {
            uid: facts.uid,
            gid: facts.gid,
            additional_gids: facts.additional_gids.clone(),
            username: process.user().username().clone(),
        };
        view.process.cwd = process.cwd().display().to_string();
        if let Some(args) = process.args() {
            view.process.args = args.clone();
        }
        if let Some(env) = process.env() {
            view.process.env = env.clone();
        }
    }
    if let Some(mounts) = spec.mounts() {
        view.mounts = mounts
            .iter()
            .map(|m| Mount {
                destination: m.destination().display().to_string(),
                source: m
                    .source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_default(),
                fs_type: m.typ().clone().unwrap_or_default(),
                options: m.options().clone().unwrap_or_default(),
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::event::{Container, EventKind, Pod};

    fn event(image: &str) -> LifecycleEvent {
        let mut container = Container {
            id: "c1".into(),
            name: "web".into(),
            pod_id: "p1".into(),
            args: vec!["sleep".into()],
            ..Container::default()
        };
        container
            .annotations
            .insert(Container::IMAGE_NAME_ANNOTATION.into(), image.into());
        LifecycleEvent {
            kind: EventKind::CreateContainer,
            pod: Pod {
                name: "pod".into(),
                namespace: "team".into(),
                ..Pod::default()
            },
            container: Some(container),
        }
    }

    #[test]
    fn image_is_normalized_even_without_containerd() {
        let view = container_view(
            &event("busybox"),
            DecisionPoint::CreateContainer,
            &Context::default(),
        );
        assert_eq!(view.image.reference, "busybox");
        assert_eq!(view.image.normalized, "docker.io/library/busybox:latest");
        assert_eq!(view.image.registry, "docker.io");
        assert_eq!(view.image.repository, "library/busybox");
        assert_eq!(view.image.tag.as_deref(), Some("latest"));
        assert_eq!(view.image.digest, None);
        assert_eq!(view.pod.namespace, "team");
        assert_eq!(view.process.args, ["sleep"]);
    }

    #[test]
    fn the_specs_rlimits_override_the_defaults() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/",
                        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}]}
        }))
        .unwrap();
        let defaults = runtime_rlimits();
        assert_eq!(defaults.len(), KNOWN_RLIMITS.len());
        let limits = effective_rlimits(&spec, &defaults);
        assert_eq!(
            (limits["RLIMIT_NOFILE"].soft, limits["RLIMIT_NOFILE"].hard),
            (512, 1024)
        );
        assert_eq!(limits["RLIMIT_MEMLOCK"], defaults["RLIMIT_MEMLOCK"]);
    }

    #[test]
    fn spec_facts_fill_security_fields() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {
                "user": {"uid": 1000, "gid": 1000},
                "cwd": "/work",
                "args": ["sh"],
                "noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]}
            },
            "root": {"path": "rootfs", "readonly": true},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}
        }))
        .unwrap();
        let facts = bulkhead_containerd::spec::facts(&spec);
        let context = Context {
            spec: Some((spec, facts)),
            ..Context::default()
        };
        let view = container_view(
            &event("busybox"),
            DecisionPoint::PostCreateContainer,
            &context,
        );
        assert_eq!(view.process.user.uid, 1000);
        assert_eq!(view.process.cwd, "/work");
        assert_eq!(view.capabilities.effective, ["CAP_CHOWN"]);
        assert!(view.no_new_privileges && view.readonly_rootfs);
        assert_eq!(view.seccomp.unwrap().syscalls[0].names, ["read"]);
    }
}
