//! The view of a container that already exists, rebuilt from containerd alone: what
//! `bulkhead view` prints, so plugin authors can write case files from real containers.
//!
//! The daemon builds a view from an NRI event plus what it reads from containerd
//! ([`super::container_view`]). Here the NRI half is rebuilt the way containerd's NRI adaptation
//! (NRI v0.8, containerd 2.0/2.1) builds it, from the same records:
//! - container name and pod sandbox id: the spec's `io.kubernetes.cri.container-name` and
//!   `io.kubernetes.cri.sandbox-id` annotations;
//! - container labels: the record's labels, the CRI config's labels on top; annotations: the
//!   spec's, the CRI config's on top; args, env and mounts: the stored spec;
//! - pod name, namespace and uid: the sandbox's CRI config (else the spec's
//!   `io.kubernetes.cri.sandbox-name`, `-namespace`, `-uid` annotations); pod labels: the CRI
//!   config's, the sandbox record's on top; pod annotations: the CRI config's, the sandbox
//!   spec's on top.
//!
//! Where it can differ from what plugins were given:
//! - the spec is read now, so it carries whatever was applied to it since: bulkhead's own
//!   post-create hardening (added env, mounts, annotations, dropped capabilities, seccomp...) is
//!   in the view, while plugins at post-create saw the spec before it;
//! - at `create-container` NRI shows the spec CRI generated, before any NRI plugin adjusted it;
//!   the rebuilt view shows the stored one, after those adjustments;
//! - the image is the one CRI created the container from (see
//!   [`bulkhead_containerd::Containerd::inspect`]), which is what bulkhead resolved at the time;
//!   when it can no longer be resolved the view keeps the written reference only, where the
//!   daemon would have failed the plugins.

use bulkhead_containerd::{Containerd, CriRecord};
use bulkhead_core::event::{Container, EventKind, LifecycleEvent, Pod};
use bulkhead_core::view::{ContainerView, DecisionPoint, Labels};
use oci_spec::runtime::Spec;

use super::{Context, container_view};

/// CRI's annotation naming a container within its pod.
const CONTAINER_NAME_ANNOTATION: &str = "io.kubernetes.cri.container-name";
/// CRI's annotation marking a record as a `container` or a pod `sandbox`.
const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";
/// CRI's annotations naming a container's pod, for when the sandbox's own record is gone.
const SANDBOX_NAME_ANNOTATION: &str = "io.kubernetes.cri.sandbox-name";
const SANDBOX_NAMESPACE_ANNOTATION: &str = "io.kubernetes.cri.sandbox-namespace";
const SANDBOX_UID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-uid";

/// Why a container's view could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum StoredViewError {
    /// containerd could not give the container's record or spec.
    #[error(transparent)]
    Containerd(#[from] bulkhead_containerd::Error),
    /// The id is a pod sandbox's: plugins are never asked about sandboxes.
    #[error("{id} is a pod sandbox, not a container: give the id of one of its containers")]
    Sandbox {
        /// The id given.
        id: String,
    },
}

/// A rebuilt view, with the parts containerd could not give.
#[derive(Debug)]
pub struct StoredView {
    /// The view, as plugins get it at the requested decision point.
    pub view: ContainerView,
    /// What is missing from the view and why (the image could not be resolved, the sandbox is
    /// gone...); empty when nothing is.
    pub gaps: Vec<String>,
}

/// The view plugins get for container `container_id` at `point`, rebuilt from containerd's
/// records (see the module docs for where it can differ from what they were given).
///
/// # Errors
/// The container's record or spec cannot be read, or `container_id` is a pod sandbox.
pub async fn stored_view(
    containerd: &Containerd,
    container_id: &str,
    point: DecisionPoint,
) -> Result<StoredView, StoredViewError> {
    let inspection = containerd.inspect(container_id).await?;
    let spec = &inspection.spec.spec;
    if annotation(spec, CONTAINER_TYPE_ANNOTATION) == Some("sandbox") {
        return Err(StoredViewError::Sandbox {
            id: container_id.to_string(),
        });
    }
    let record = containerd.cri_record(container_id).await?;
    let mut gaps = Vec::new();
    let sandbox = match annotation(spec, bulkhead_containerd::container::SANDBOX_ID_ANNOTATION) {
        Some(id) => {
            let record = containerd.cri_record(id).await;
            let sandbox_spec = containerd.get_spec(id).await;
            if let Err(error) = record.as_ref().and(sandbox_spec.as_ref()) {
                gaps.push(format!(
                    "pod sandbox {id}: {error}; pod metadata from the container's annotations"
                ));
            }
            Some(Sandbox {
                id: id.to_string(),
                record: record.ok(),
                spec: sandbox_spec.ok(),
            })
        }
        None => {
            gaps.push("no pod sandbox: not a CRI container".to_string());
            None
        }
    };
    let event = rebuilt_event(container_id, spec, &record, sandbox.as_ref(), point);
    let image = match inspection.image {
        Ok(image) => Some(image),
        Err(error) => {
            gaps.push(format!(
                "image: {error}; no digest or image config (the daemon would fail the plugins)"
            ));
            None
        }
    };
    let context = Context {
        image,
        spec: (point != DecisionPoint::CreateContainer).then(|| (spec.clone(), inspection.facts)),
        stored: None,
        renamed_from: None,
    };
    Ok(StoredView {
        view: container_view(&event, point, &context),
        gaps,
    })
}

/// A container's pod sandbox, as far as it could be read.
struct Sandbox {
    id: String,
    record: Option<CriRecord>,
    spec: Option<Spec>,
}

/// The NRI event containerd would send for this container at `point`, from its stored spec and
/// record and its sandbox's.
fn rebuilt_event(
    container_id: &str,
    spec: &Spec,
    record: &CriRecord,
    sandbox: Option<&Sandbox>,
    point: DecisionPoint,
) -> LifecycleEvent {
    let cri = record.config.clone().unwrap_or_default();
    let process = spec.process().as_ref();
    let container = Container {
        id: container_id.to_string(),
        pod_id: sandbox.map(|s| s.id.clone()).unwrap_or_default(),
        name: annotation(spec, CONTAINER_NAME_ANNOTATION)
            .map(str::to_string)
            .unwrap_or(cri.metadata.name),
        labels: layered(&record.labels, &cri.labels),
        annotations: layered(&spec_annotations(Some(spec)), &cri.annotations),
        args: process.and_then(|p| p.args().clone()).unwrap_or_default(),
        env: process.and_then(|p| p.env().clone()).unwrap_or_default(),
        mounts: spec
            .mounts()
            .iter()
            .flatten()
            .map(crate::engine::oci::mount_from_oci)
            .collect(),
        ..Container::default()
    };
    let sandbox_record = sandbox.and_then(|s| s.record.as_ref());
    let pod_cri = sandbox_record
        .and_then(|r| r.config.clone())
        .unwrap_or_default();
    let or_annotation = |value: String, key: &str| {
        if value.is_empty() {
            annotation(spec, key).unwrap_or_default().to_string()
        } else {
            value
        }
    };
    let pod = Pod {
        id: container.pod_id.clone(),
        name: or_annotation(pod_cri.metadata.name, SANDBOX_NAME_ANNOTATION),
        namespace: or_annotation(pod_cri.metadata.namespace, SANDBOX_NAMESPACE_ANNOTATION),
        uid: or_annotation(pod_cri.metadata.uid, SANDBOX_UID_ANNOTATION),
        labels: layered(
            &pod_cri.labels,
            &sandbox_record.map(|r| r.labels.clone()).unwrap_or_default(),
        ),
        annotations: layered(
            &pod_cri.annotations,
            &spec_annotations(sandbox.and_then(|s| s.spec.as_ref())),
        ),
        ..Pod::default()
    };
    LifecycleEvent {
        kind: match point {
            DecisionPoint::CreateContainer => EventKind::CreateContainer,
            DecisionPoint::PostCreateContainer => EventKind::PostCreateContainer,
            DecisionPoint::StartContainer => EventKind::StartContainer,
            DecisionPoint::UpdateContainer => EventKind::UpdateContainer,
        },
        pod,
        container: Some(container),
    }
}

/// `base` with `top` written over it, as containerd merges label and annotation maps for NRI.
fn layered(base: &Labels, top: &Labels) -> Labels {
    let mut merged = base.clone();
    merged.extend(top.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

fn spec_annotations(spec: Option<&Spec>) -> Labels {
    spec.and_then(|s| s.annotations().clone())
        .map(|a| a.into_iter().collect())
        .unwrap_or_default()
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations().as_ref()?.get(key).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use bulkhead_containerd::{CriConfig, CriMetadata};

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn container_spec() -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "3600"],
                        "env": ["PATH=/bin"], "capabilities": {"bounding": ["CAP_CHOWN"]}},
            "mounts": [{"destination": "/etc/hosts", "type": "bind", "source": "/var/hosts",
                        "options": ["rbind", "ro"]}],
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.container-name": "web",
                "io.kubernetes.cri.sandbox-id": "pod1",
                "io.kubernetes.cri.sandbox-name": "from-annotation",
                "io.kubernetes.cri.sandbox-namespace": "team",
                "io.kubernetes.cri.sandbox-uid": "u1",
                "io.kubernetes.cri.image-name": "busybox",
                "shared": "spec"
            }
        }))
        .unwrap()
    }

    fn container_record() -> CriRecord {
        CriRecord {
            labels: labels(&[
                ("io.cri-containerd.kind", "container"),
                ("shared", "record"),
            ]),
            config: Some(CriConfig {
                metadata: CriMetadata {
                    name: "web".into(),
                    ..CriMetadata::default()
                },
                labels: labels(&[("shared", "config"), ("tier", "front")]),
                annotations: labels(&[("shared", "config")]),
                ..CriConfig::default()
            }),
        }
    }

    #[test]
    fn fields_are_layered_as_containerd_does_for_nri() {
        let sandbox = Sandbox {
            id: "pod1".into(),
            record: Some(CriRecord {
                labels: labels(&[("io.cri-containerd.kind", "sandbox"), ("app", "record")]),
                config: Some(CriConfig {
                    metadata: CriMetadata {
                        name: "web-pod".into(),
                        uid: "u1".into(),
                        namespace: "team".into(),
                    },
                    labels: labels(&[("app", "config"), ("team", "a")]),
                    annotations: labels(&[("note", "config"), ("seen", "config")]),
                    ..CriConfig::default()
                }),
            }),
            spec: Some(
                serde_json::from_value(serde_json::json!({
                    "ociVersion": "1.2.0", "annotations": {"seen": "sandbox-spec"}
                }))
                .unwrap(),
            ),
        };
        let event = rebuilt_event(
            "c1",
            &container_spec(),
            &container_record(),
            Some(&sandbox),
            DecisionPoint::PostCreateContainer,
        );
        let container = event.container.unwrap();
        assert_eq!(event.kind, EventKind::PostCreateContainer);
        assert_eq!(
            (container.name.as_str(), container.pod_id.as_str()),
            ("web", "pod1")
        );
        assert_eq!(container.labels["shared"], "config");
        assert_eq!(container.labels["io.cri-containerd.kind"], "container");
        assert_eq!(container.annotations["shared"], "config");
        assert_eq!(
            container.annotations["io.kubernetes.cri.image-name"],
            "busybox"
        );
        assert_eq!(container.args, ["sleep", "3600"]);
        assert_eq!(container.mounts[0].kind, "bind");
        assert_eq!(event.pod.name, "web-pod");
        assert_eq!(
            (event.pod.namespace.as_str(), event.pod.uid.as_str()),
            ("team", "u1")
        );
        assert_eq!(event.pod.labels["app"], "record");
        assert_eq!(event.pod.labels["team"], "a");
        assert_eq!(event.pod.annotations["seen"], "sandbox-spec");
        assert_eq!(event.pod.annotations["note"], "config");
    }

    #[test]
    fn a_gone_sandbox_leaves_the_pod_from_annotations() {
        let sandbox = Sandbox {
            id: "pod1".into(),
            record: None,
            spec: None,
        };
        let event = rebuilt_event(
            "c1",
            &container_spec(),
            &container_record(),
            Some(&sandbox),
            DecisionPoint::CreateContainer,
        );
        assert_eq!(event.pod.name, "from-annotation");
        assert_eq!(event.pod.namespace, "team");
        assert_eq!(event.pod.uid, "u1");
        assert!(event.pod.labels.is_empty());
    }

    #[test]
    fn create_container_view_has_no_spec_facts() {
        let event = rebuilt_event(
            "c1",
            &container_spec(),
            &container_record(),
            None,
            DecisionPoint::CreateContainer,
        );
        let view = container_view(&event, DecisionPoint::CreateContainer, &Context::default());
        assert_eq!(view.process.args, ["sleep", "3600"]);
        assert_eq!(view.mounts[0].destination, "/etc/hosts");
        assert_eq!(view.image.normalized, "docker.io/library/busybox:latest");
        assert!(view.capabilities.bounding.is_empty());
    }
}
