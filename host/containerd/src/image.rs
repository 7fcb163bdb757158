//! Image facts for policy: the digests and the image config of the image a container runs.
//!
//! CRI tells NRI only the image *as the user wrote it* (annotation
//! `io.kubernetes.cri.image-name`). This module turns that into what policy needs:
//! normalized name → containerd `Images.Get` → the image's target digest (the repo digest users
//! see, e.g. in `ctr images ls`) → its manifest (picking this host's platform out of an OCI index
//! or Docker manifest list) → its config blob (user, env, labels), all read through the Content
//! service. A name that is already a digest reference or an image id (`sha256:<config digest>`)
//! is accepted too.
//!
//! Caching: a blob never changes for a digest, so the facts derived from a target digest are
//! cached for the life of the process. A name may be re-pointed (a re-pull of a tag), so the
//! name → digest lookup is cached only for [`NAME_TTL`].

mod cache;
mod document;

use std::collections::BTreeMap;
use std::sync::Arc;

use containerd_client::services::v1::{GetImageRequest, ListImagesRequest, ReadContentRequest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tonic::Code;

pub(crate) use cache::ImageCache;
pub use cache::NAME_TTL;
use cache::{Resolved, Target};
use document::{ConfigBlob, DOCKER_LIST, Document, OCI_INDEX, host_platform, pick_platform};

use crate::reference::{Reference, validate_digest};
use crate::{Containerd, Error, Result};

/// Largest manifest, index or config blob read; real ones are a few KiB.
const MAX_BLOB: usize = 4 << 20;

/// What policy learns about a container's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image exactly as CRI gave it.
    pub as_written: String,
    /// The parsed, normalized reference; `None` when the image was given as an image id.
    pub reference: Option<Reference>,
    /// The name containerd has the image under (its image record), when one was found.
    pub name: Option<String>,
    /// The image's target digest: the manifest list/index (or single manifest) digest — the
    /// repo digest users see in `ctr images ls` and pin in `name@sha256:…`.
    pub digest: String,
    /// `registry/repository@digest`, when the repository is known.
    pub repo_digest: Option<String>,
    /// The manifest chosen for this host's platform (equal to [`ImageInfo::digest`] for a
    /// single-platform image).
    pub manifest_digest: String,
    /// The config blob's digest: the image id (`sha256:…` in `crictl images`).
    pub config_digest: String,
    /// The parts of the image config policy looks at.
    pub config: ImageConfig,
}

/// The policy-relevant parts of an OCI/Docker image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `User` as the image author wrote it (`""` and absent both mean root).
    pub user: Option<String>,
    /// `Env` as `KEY=value` strings.
    pub env: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// Platform the config says it is for.
    pub os: String,
    /// Architecture the config says it is for.
    pub architecture: String,
}

impl Containerd {
    /// Resolves an image given as CRI gives it — a name as written (`busybox`), a digest
    /// reference (`busybox@sha256:…`) or an image id (`sha256:<config digest>`) — to its
    /// digests and config.
    ///
    /// # Errors
    /// [`Error::InvalidReference`], [`Error::ImageNotFound`], [`Error::ImageContent`],
    /// [`Error::NoPlatform`], or [`Error::Rpc`].
    pub async fn resolve_image(&self, image: &str) -> Result<ImageInfo> {
        if let Some(id) = image_id(image) {
            return self.resolve_id(image, &id).await;
        }
        let reference = Reference::parse(image)?;
        let target = match self.lookup_name(image, &reference.normalized).await? {
            Some(target) => target,
            // A digest reference can name an image whose record is under another name (or a
            // tag+digest form CRI stored differently): the content store knows the digest.
            None => match &reference.digest {
                Some(digest) => Target {
                    name: None,
                    digest: digest.clone(),
                    media_type: String::new(),
                },
                None => return Err(self.not_found(image)),
            },
        };
        let resolved = self.resolve_target(image, &target).await?;
        Ok(ImageInfo {
            as_written: image.to_owned(),
            repo_digest: Some(format!("{}@{}", reference.name(), target.digest)),
            reference: Some(reference),
            name: target.name,
            digest: target.digest,
            manifest_digest: resolved.manifest_digest.clone(),
            config_digest: resolved.config_digest.clone(),
            config: resolved.config.clone(),
        })
    }

    /// Image id → image. CRI keeps a record named by the id (`sha256:<config digest>`) for
    /// every image it knows, including imported ones; failing that, the records are scanned
    /// for the one whose config has this digest (blob facts are cached, so this is cheap after
    /// once). The record name reported is a real one (`docker.io/library/busybox:latest`) when
    /// any record for the same target has one.
    async fn resolve_id(&self, image: &str, id: &str) -> Result<ImageInfo> {
        let mut found = self
            .lookup_name(image, id)
            .await?
            .filter(|t| t.digest != id);
        if found.is_none() {
            for record in self.list_records(image, Vec::new()).await? {
                match self
                    .resolve_target(&record.name.clone().unwrap_or_default(), &record)
                    .await
                {
                    Ok(resolved) if resolved.config_digest == id => {
                        found = Some(record);
                        break;
                    }
                    // Other platforms' images, or broken records: not the one we look for.
                    Ok(_) | Err(Error::NoPlatform { .. } | Error::ImageContent { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        let mut target = found.ok_or_else(|| self.not_found(image))?;
        if target.name.as_deref().is_none_or(is_id_name) {
            let filter = format!("target.digest=={}", target.digest);
            if let Some(named) = self
                .list_records(image, vec![filter])
                .await?
                .into_iter()
                .next()
            {
                target.name = named.name.filter(|n| !is_id_name(n));
                // Remember the real name with the id, so the next lookup needs no listing.
                self.images.put_name(id, target.clone());
            }
        }
        let resolved = self.resolve_target(image, &target).await?;
        let reference = target
            .name
            .as_deref()
            .and_then(|n| Reference::parse(n).ok());
        Ok(ImageInfo {
            as_written: image.to_owned(),
            repo_digest: reference
                .as_ref()
                .map(|r| format!("{}@{}", r.name(), target.digest)),
            reference: None,
            name: target.name,
            digest: target.digest,
            manifest_digest: resolved.manifest_digest.clone(),
            config_digest: resolved.config_digest.clone(),
            config: resolved.config.clone(),
        })
    }

    /// `Images.List` with containerd filters, as targets; tagged names first, then digest
    /// names, then CRI's id-named records, each group sorted by name (deterministic).
    async fn list_records(&self, image: &str, filters: Vec<String>) -> Result<Vec<Target>> {
        let response = self
            .images_client()
            .list(ListImagesRequest { filters })
            .await
            .map_err(|source| rpc("Images.List", image, source))?
            .into_inner();
        let mut records: Vec<Target> = response
            .images
            .into_iter()
            .filter_map(|record| {
                let descriptor = record.target?;
                Some(Target {
                    name: Some(record.name),
                    digest: descriptor.digest,
                    media_type: descriptor.media_type,
                })
            })
            .collect();
        records.sort_by_cached_key(|t| {
            let name = t.name.clone().unwrap_or_default();
            (is_id_name(&name), name.contains('@'), name)
        });
        Ok(records)
    }

    /// `Images.Get`, through the short-lived name cache. `None` when there is no such record.
    async fn lookup_name(&self, image: &str, name: &str) -> Result<Option<Target>> {
        if let Some(target) = self.images.name(name) {
            return Ok(Some(target));
        }
        let response = self
            .images_client()
            .get(GetImageRequest {
                name: name.to_owned(),
            })
            .await;
        let record = match response {
            Ok(r) => r.into_inner().image,
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(source) => return Err(rpc("Images.Get", image, source)),
        };
        let Some(descriptor) = record.as_ref().and_then(|r| r.target.as_ref()) else {
            return Ok(None);
        };
        let target = Target {
            name: record.as_ref().map(|r| r.name.clone()),
            digest: descriptor.digest.clone(),
            media_type: descriptor.media_type.clone(),
        };
        self.images.put_name(name, target.clone());
        Ok(Some(target))
    }

    /// Target digest → manifest and config facts, through the digest cache.
    async fn resolve_target(&self, image: &str, target: &Target) -> Result<Arc<Resolved>> {
        if let Some(hit) = self.images.digest(&target.digest) {
            return Ok(hit);
        }
        let bytes = self.read_blob(image, &target.digest).await?;
        let doc: Document = parse_json(image, &target.digest, &bytes)?;
        let is_index = matches!(target.media_type.as_str(), OCI_INDEX | DOCKER_LIST)
            || matches!(doc.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST))
            || (target.media_type.is_empty() && doc.manifests.is_some());
        let (manifest_digest, manifest) = if is_index {
            let platform = host_platform();
            let chosen = pick_platform(doc.manifests.as_deref().unwrap_or_default(), platform)
                .ok_or_else(|| Error::NoPlatform {
                    image: image.to_owned(),
                    digest: target.digest.clone(),
                    platform: format!("{}/{}", platform.0, platform.1),
                })?
                .digest
                .clone();
            let bytes = self.read_blob(image, &chosen).await?;
            let manifest: Document = parse_json(image, &chosen, &bytes)?;
            (chosen, manifest)
        } else {
            (target.digest.clone(), doc)
        };
        let config_digest = manifest
            .config
            .map(|c| c.digest)
            .ok_or_else(|| content_error(image, &manifest_digest, "manifest has no config"))?;
        let bytes = self.read_blob(image, &config_digest).await?;
        let config: ConfigBlob = parse_json(image, &config_digest, &bytes)?;
        let resolved = Arc::new(Resolved {
            manifest_digest,
            config_digest,
            config: config.into(),
        });
        self.images.put_digest(&target.digest, resolved.clone());
        Ok(resolved)
    }

    /// Reads one blob through `Content.Read` (a server stream) and checks it against its digest:
    /// policy facts must come from exactly the bytes the digest names.
    async fn read_blob(&self, image: &str, digest: &str) -> Result<Vec<u8>> {
        if validate_digest(digest).is_err() || !digest.starts_with("sha256:") {
            return Err(content_error(image, digest, "not a sha256 digest"));
        }
        let request = ReadContentRequest {
            digest: digest.to_owned(),
            offset: 0,
            size: 0,
        };
        let mut stream = match self.content().read(request).await {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == Code::NotFound => {
                return Err(content_error(image, digest, "not in the content store"));
            }
            Err(source) => return Err(rpc("Content.Read", digest, source)),
        };
        let mut bytes = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.data.len() > MAX_BLOB {
                        return Err(content_error(image, digest, "larger than 4 MiB"));
                    }
                    bytes.extend_from_slice(&chunk.data);
                }
                Ok(None) => break,
                Err(status) if status.code() == Code::NotFound => {
                    return Err(content_error(image, digest, "not in the content store"));
                }
                Err(source) => return Err(rpc("Content.Read", digest, source)),
            }
        }
        let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
        if actual != digest {
            return Err(content_error(
                image,
                digest,
                &format!("content hashes to {actual}"),
            ));
        }
        Ok(bytes)
    }

    fn not_found(&self, image: &str) -> Error {
        Error::ImageNotFound {
            image: image.to_owned(),
            namespace: self.namespace().to_owned(),
        }
    }
}

/// CRI's records named by image id (`sha256:…`) rather than by a reference.
fn is_id_name(name: &str) -> bool {
    name.starts_with("sha256:")
}

/// `sha256:<64 hex>` or a bare 64-hex id → the `sha256:` form.
pub(crate) fn image_id(image: &str) -> Option<String> {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    let is_id = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    is_id.then(|| format!("sha256:{hex}"))
}

fn rpc(call: &'static str, subject: &str, source: tonic::Status) -> Error {
    Error::Rpc {
        call,
        subject: subject.to_owned(),
        source,
    }
}

fn content_error(image: &str, digest: &str, what: &str) -> Error {
    Error::ImageContent {
        image: image.to_owned(),
        digest: digest.to_owned(),
        what: what.to_owned(),
    }
}

fn parse_json<'a, T: Deserialize<'a>>(image: &str, digest: &str, bytes: &'a [u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| content_error(image, digest, &format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_recognized_in_both_forms() {
        let hex = "a".repeat(64);
        assert_eq!(
            image_id(&format!("sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(image_id(&hex), Some(format!("sha256:{hex}")));
        assert_eq!(image_id("busybox"), None);
        assert_eq!(image_id(&format!("busybox@sha256:{hex}")), None);
        assert_eq!(image_id(&"A".repeat(64)), None);
    }
}
