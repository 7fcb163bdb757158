//! Everything containerd knows about one CRI container that NRI v0.8 does not say: its security
//! facts (from its spec and its pod sandbox's spec) and the exact image it was created from.
//!
//! Which image a container runs is taken from CRI's own record, not re-derived from a name:
//! CRI stores the image id it resolved at CreateContainer (`ImageRef`, the config digest) in the
//! container's `io.cri-containerd.container.metadata` extension. Resolving the written name
//! again could see a tag that moved since; the record's `image` field is no better — containerd
//! 2.1.9 fills it with the image's first reference in sort order (`busybox:1.36` for a container
//! created from `busybox`, when both tags share a digest).

use std::collections::BTreeMap;

use containerd_client::services::v1::Container;
use oci_spec::runtime::Spec;
use serde::Deserialize;

use crate::image::image_id;
use crate::spec::{SpecFacts, StoredSpec, facts_in_pod};
use crate::{Containerd, ImageInfo, Reference, Result};

/// Annotation CRI puts on every container naming its pod sandbox (a containerd container too).
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
/// Annotation holding the image as the user wrote it (`busybox`), or as CRI was given it.
pub const IMAGE_NAME_ANNOTATION: &str = "io.kubernetes.cri.image-name";
/// Annotation CRI sets to `container` or `sandbox`.
const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";
/// The container record extension where CRI keeps its own metadata (JSON).
const CRI_METADATA_EXTENSION: &str = "io.cri-containerd.container.metadata";
/// The extension on a pod sandbox's own container record where CRI keeps the sandbox metadata.
const CRI_SANDBOX_METADATA_EXTENSION: &str = "io.cri-containerd.sandbox.metadata";

/// A container record as containerd's NRI adaptation reads it besides the spec: the record's
/// labels and the CRI config it was created from.
///
/// NRI v0.8 builds a container's labels from both (record labels, then the CRI config's on top)
/// and a pod's labels and annotations from the sandbox's CRI config (with the sandbox record's
/// labels and spec annotations on top). Outside an NRI event this is the only place they can be
/// read again, which is what `bulkhead view` needs to show a container as plugins saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriRecord {
    /// The record's own labels. For CRI containers: the image config's labels, the CRI config's
    /// labels and `io.cri-containerd.kind` (`container` or `sandbox`).
    pub labels: BTreeMap<String, String>,
    /// The CRI `ContainerConfig` or `PodSandboxConfig` the record was made from; `None` for a
    /// record CRI did not make (or whose metadata does not decode).
    pub config: Option<CriConfig>,
}

/// The policy-relevant part of a CRI `ContainerConfig` or `PodSandboxConfig`, as CRI stored it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CriConfig {
    /// Name, uid (pods only) and namespace (pods only) the kubelet gave.
    pub metadata: CriMetadata,
    /// Labels the kubelet passed.
    pub labels: BTreeMap<String, String>,
    /// Annotations the kubelet passed.
    pub annotations: BTreeMap<String, String>,
    /// The image the caller asked for (containers only).
    pub image: CriImageSpec,
}

/// CRI's `ImageSpec` as the caller sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CriImageSpec {
    /// What the caller passed: a reference, or (the kubelet) the image id it pulled.
    pub image: String,
    /// The reference as the pod spec wrote it (newer kubelets; not every containerd keeps it).
    pub user_specified_image: String,
}

impl CriConfig {
    /// The image reference the caller asked for, when the record kept one: the user-specified
    /// image, else the image field unless it is only an id.
    pub fn requested_image(&self) -> Option<&str> {
        let spec = &self.image;
        if !spec.user_specified_image.is_empty() {
            return Some(&spec.user_specified_image);
        }
        (!spec.image.is_empty() && image_id(&spec.image).is_none()).then_some(&spec.image)
    }
}

/// What a container record says about its image.
struct ImageNames {
    /// The image id CRI resolved (metadata extension).
    image_ref: Option<String>,
    /// The reference the caller asked for, when the record kept one ([`CriConfig::requested_image`]).
    requested: Option<String>,
    /// The `io.kubernetes.cri.image-name` annotation.
    written: Option<String>,
    /// The record's own image name.
    record_image: String,
}

/// A container's record read at PostCreateContainer: its stored spec and, when CRI's
/// `io.kubernetes.cri.image-name` annotation names the image differently from what the caller
/// asked for, the image under the caller's name.
///
/// containerd 1.7 writes the image's *first stored name* into that annotation, not the name
/// the caller used: with one image stored under several names (`docker.io/library/busybox` and
/// `quay.io/library/busybox`), a policy reading the annotation judges the wrong registry. The
/// CRI metadata kept on the record still has the caller's reference.
#[derive(Debug)]
pub struct StoredContainer {
    /// The stored spec (patch it and write it back with [`Containerd::update_stored_spec`]).
    pub spec: StoredSpec,
    /// The image under the requested name, when the annotation disagrees with it; `None` when
    /// they agree or the record kept no usable request.
    pub renamed_image: Option<Result<ImageInfo>>,
}

/// CRI's `ContainerMetadata` / `PodSandboxMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CriMetadata {
    /// Container or pod name.
    pub name: String,
    /// Pod UID (empty for containers).
    pub uid: String,
    /// Kubernetes namespace (empty for containers).
    pub namespace: String,
}

/// One container, inspected: what the engine hands to policy at PostCreateContainer.
#[derive(Debug)]
pub struct Inspection {
    /// The stored spec (patch it and write it back with [`Containerd::update_stored_spec`]).
    pub spec: StoredSpec,
    /// Security facts from the container's and its pod sandbox's specs.
    pub facts: SpecFacts,
    /// The image, or why it could not be resolved: kept apart so the engine can apply its
    /// failure policy to a missing image without losing the spec facts.
    pub image: Result<ImageInfo>,
}

impl Containerd {
    /// Reads a container record once and derives its facts and its image.
    ///
    /// # Errors
    /// As [`Containerd::get_stored_spec`]; image errors are in [`Inspection::image`].
    pub async fn inspect(&self, container_id: &str) -> Result<Inspection> {
        let (spec, names) = self.read_container(container_id).await?;
        let facts = self.facts_with_sandbox(container_id, &spec.spec).await;
        let image = self.image_named(&names, names.written.as_deref()).await;
        Ok(Inspection { spec, facts, image })
    }

    /// Reads a container record once: its stored spec and, if the image annotation disagrees
    /// with the caller's request, the image under the requested name ([`StoredContainer`]).
    ///
    /// # Errors
    /// As [`Containerd::get_stored_spec`]; image errors are in
    /// [`StoredContainer::renamed_image`].
    pub async fn stored_container(&self, container_id: &str) -> Result<StoredContainer> {
        let (spec, names) = self.read_container(container_id).await?;
        let renamed_image = match &names.requested {
            Some(requested) if names.written.as_ref() != Some(requested) => {
                Some(self.image_named(&names, Some(requested)).await)
            }
            _ => None,
        };
        Ok(StoredContainer {
            spec,
            renamed_image,
        })
    }

    /// A container's spec and its security facts, including pod-level host namespaces
    /// ([`facts_in_pod`]), which are only visible in the pod sandbox's spec.
    ///
    /// # Errors
    /// As [`Containerd::get_stored_spec`] for the container itself.
    pub async fn container_facts(&self, container_id: &str) -> Result<(Spec, SpecFacts)> {
        let spec = self.get_spec(container_id).await?;
        let facts = self.facts_with_sandbox(container_id, &spec).await;
        Ok((spec, facts))
    }

    /// The image a container was created from, as CRI resolved it at CreateContainer; the
    /// reference reported is the one the user wrote (annotation `io.kubernetes.cri.image-name`).
    ///
    /// # Errors
    /// As [`Containerd::get_stored_spec`] and [`Containerd::resolve_image`].
    pub async fn container_image(&self, container_id: &str) -> Result<ImageInfo> {
        let (_, names) = self.read_container(container_id).await?;
        self.image_named(&names, names.written.as_deref()).await
    }

    /// One `Containers.Get`: the stored spec, and every name the record gives its image.
    async fn read_container(&self, container_id: &str) -> Result<(StoredSpec, ImageNames)> {
        let record = self.get_record(container_id).await?;
        let image_ref = cri_image_ref(&record);
        let requested = cri_config(&record)
            .as_ref()
            .and_then(CriConfig::requested_image)
            .map(str::to_owned);
        let record_image = record.image.clone();
        let spec = StoredSpec::from_record(container_id, record)?;
        let written = annotation(&spec.spec, IMAGE_NAME_ANNOTATION);
        let names = ImageNames {
            image_ref,
            requested,
            written,
            record_image,
        };
        Ok((spec, names))
    }

    /// The record's image described under `name` ([`Containerd::image_of`]).
    async fn image_named(&self, names: &ImageNames, name: Option<&str>) -> Result<ImageInfo> {
        self.image_of(name, names.image_ref.as_deref(), &names.record_image)
            .await
    }

    /// A record's labels and the CRI config it was made from ([`CriRecord`]); works for a
    /// container and for a pod sandbox id alike.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`](crate::Error::ContainerNotFound), [`Error::Rpc`](crate::Error::Rpc).
    pub async fn cri_record(&self, id: &str) -> Result<CriRecord> {
        let record = self.get_record(id).await?;
        Ok(CriRecord {
            labels: record.labels.clone().into_iter().collect(),
            config: cri_config(&record),
        })
    }

    /// The pod sandbox's spec is read too; a sandbox that cannot be read (gone, not CRI)
    /// degrades to the container-only view.
    async fn facts_with_sandbox(&self, container_id: &str, spec: &Spec) -> SpecFacts {
        let is_sandbox =
            annotation(spec, CONTAINER_TYPE_ANNOTATION).is_some_and(|t| t == "sandbox");
        let sandbox_id = annotation(spec, SANDBOX_ID_ANNOTATION)
            .filter(|id| !is_sandbox && id.as_str() != container_id);
        let sandbox = match sandbox_id {
            Some(id) => match self.get_spec(&id).await {
                Ok(sandbox) => Some(sandbox),
                Err(error) => {
                    tracing::warn!(container_id, sandbox_id = %id, %error, "pod sandbox spec unreadable");
                    None
                }
            },
            None => None,
        };
        facts_in_pod(spec, sandbox.as_ref())
    }

    /// The image CRI resolved (`image_ref`), described with the reference the user wrote.
    ///
    /// The written name is tried first: when it still resolves to the same config, its own
    /// target (an index, say) is the digest the user knows. Otherwise — the tag moved, or the
    /// user gave an id — the image is resolved by id and the written reference kept beside it.
    async fn image_of(
        &self,
        written: Option<&str>,
        image_ref: Option<&str>,
        record_image: &str,
    ) -> Result<ImageInfo> {
        let Some(id) = image_ref else {
            // Not a CRI container: the record's image name is all there is.
            return self.resolve_image(written.unwrap_or(record_image)).await;
        };
        if let Some(written) = written.filter(|w| image_id(w).is_none())
            && let Ok(info) = self.resolve_image(written).await
            && info.config_digest == id
        {
            return Ok(info);
        }
        let mut info = self.resolve_image(id).await?;
        if let Some(written) = written {
            info.as_written = written.to_owned();
            if let Ok(reference) = Reference::parse(written) {
                info.repo_digest = Some(format!("{}@{}", reference.name(), info.digest));
                info.reference = Some(reference);
            }
        }
        Ok(info)
    }
}

fn annotation(spec: &Spec, key: &str) -> Option<String> {
    spec.annotations().as_ref()?.get(key).cloned()
}

/// What CRI keeps in a container's or a sandbox's metadata extension (`{"Version": .., "Metadata":
/// {..}}`). Go's encoding/json wrote it from the CRI types, so the config's fields have their
/// proto names (`labels`, `metadata.uid`); members this crate does not model are ignored.
#[derive(Deserialize)]
struct CriExtension {
    #[serde(rename = "Config")]
    config: Option<CriConfig>,
    #[serde(rename = "ImageRef", default)]
    image_ref: String,
}

/// The metadata stored under `extension` of `record`, if it is there and parses.
fn cri_metadata(record: &Container, extension: &str) -> Option<CriExtension> {
    #[derive(Deserialize)]
    struct Versioned {
        #[serde(rename = "Metadata")]
        metadata: CriExtension,
    }
    let any = record.extensions.get(extension)?;
    let versioned: Versioned = serde_json::from_slice(&any.value).ok()?;
    Some(versioned.metadata)
}

/// The CRI config kept in a container's or a sandbox's metadata extension.
fn cri_config(record: &Container) -> Option<CriConfig> {
    cri_metadata(record, CRI_METADATA_EXTENSION)
        .or_else(|| cri_metadata(record, CRI_SANDBOX_METADATA_EXTENSION))?
        .config
}

/// The image id CRI resolved for this container, from its metadata extension.
fn cri_image_ref(record: &Container) -> Option<String> {
    image_id(&cri_metadata(record, CRI_METADATA_EXTENSION)?.image_ref)
}

#[cfg(test)]
mod tests {
    use prost_types::Any;

    use super::*;

    #[test]
    fn image_ref_comes_from_the_cri_metadata_extension() {
        // As containerd 2.1.9 stores it (trimmed).
        let json = r#"{"Version":"v1","Metadata":{"ID":"3bb1","Name":"app_probe_default_0",
            "Config":{"image":{"image":"busybox","user_specified_image":"busybox"}},
            "ImageRef":"sha256:c35796396b839b5a748d5659b40b8c0a95fe87728876a4ef9ad557c1d5646816"}}"#;
        let mut record = Container::default();
        record.extensions.insert(
            CRI_METADATA_EXTENSION.to_owned(),
            Any {
                type_url: "github.com/containerd/cri/pkg/store/container/Metadata".to_owned(),
                value: json.as_bytes().to_vec(),
            },
        );
        assert_eq!(
            cri_image_ref(&record).as_deref(),
            Some("sha256:c35796396b839b5a748d5659b40b8c0a95fe87728876a4ef9ad557c1d5646816")
        );
    }

    #[test]
    fn cri_config_comes_from_either_metadata_extension() {
        // As containerd 2.1 stores a sandbox's metadata (trimmed; Go's JSON of the CRI types).
        let sandbox = r#"{"Version":"v1","Metadata":{"ID":"5e1f","Name":"web_team_u1_0",
            "Config":{"metadata":{"name":"web","uid":"u1","namespace":"team"},
                      "labels":{"app":"web"},"annotations":{"a":"b"},
                      "linux":{"security_context":{"namespace_options":{"network":2}}}},
            "NetNSPath":"","RuntimeHandler":""}}"#;
        let mut record = Container::default();
        record.extensions.insert(
            CRI_SANDBOX_METADATA_EXTENSION.to_owned(),
            Any {
                type_url: "github.com/containerd/cri/pkg/store/sandbox/Metadata".to_owned(),
                value: sandbox.as_bytes().to_vec(),
            },
        );
        let config = cri_config(&record).unwrap();
        assert_eq!(config.metadata.namespace, "team");
        assert_eq!(config.metadata.uid, "u1");
        assert_eq!(config.labels["app"], "web");
        assert_eq!(config.annotations["a"], "b");

        let container = r#"{"Version":"v1","Metadata":{"ID":"3bb1",
            "Config":{"metadata":{"name":"app"},"labels":{"tier":"front"}},"ImageRef":""}}"#;
        let mut record = Container::default();
        record.extensions.insert(
            CRI_METADATA_EXTENSION.to_owned(),
            Any {
                type_url: String::new(),
                value: container.as_bytes().to_vec(),
            },
        );
        let config = cri_config(&record).unwrap();
        assert_eq!(config.metadata.name, "app");
        assert_eq!(config.labels["tier"], "front");
        assert!(config.annotations.is_empty());
        assert_eq!(cri_config(&Container::default()), None);
    }

    #[test]
    fn the_requested_image_is_the_callers_name_never_a_bare_id() {
        let config = |image: &str, user: &str| CriConfig {
            image: CriImageSpec {
                image: image.into(),
                user_specified_image: user.into(),
            },
            ..CriConfig::default()
        };
        let id = format!("sha256:{}", "c".repeat(64));
        // A newer kubelet: the id it pulled, and the pod spec's reference beside it.
        assert_eq!(
            config(&id, "nginx:1.27").requested_image(),
            Some("nginx:1.27")
        );
        // crictl, or a client that sends a name: that name.
        assert_eq!(
            config("quay.io/library/busybox", "").requested_image(),
            Some("quay.io/library/busybox")
        );
        // An older kubelet on a containerd that drops user_specified_image: nothing to go by.
        assert_eq!(config(&id, "").requested_image(), None);
        assert_eq!(config("", "").requested_image(), None);
        // As containerd 1.7.24 stores a container's config (Go's JSON of its CRI types, trimmed).
        let stored: CriConfig = serde_json::from_str(
            r#"{"metadata":{"name":"quay"},"image":{"image":"quay.io/library/busybox:latest"}}"#,
        )
        .unwrap();
        assert_eq!(
            stored.requested_image(),
            Some("quay.io/library/busybox:latest")
        );
    }

    #[test]
    fn records_without_cri_metadata_have_no_image_ref() {
        assert_eq!(cri_image_ref(&Container::default()), None);
        let mut record = Container::default();
        record.extensions.insert(
            CRI_METADATA_EXTENSION.to_owned(),
            Any {
                type_url: String::new(),
                value: br#"{"Metadata":{"ImageRef":"not-an-id"}}"#.to_vec(),
            },
        );
        assert_eq!(cri_image_ref(&record), None);
    }
}
