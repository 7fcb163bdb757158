//! cosign signatures next to a component, where cosign keeps them: an OCI manifest tagged
//! `sha256-<hex>.sig` in the same repository, one simple-signing layer per signature, the
//! signature itself in the layer's `dev.cosignproject.cosign/signature` annotation. This module
//! moves them; `bulkhead-signature` judges them. Fetched signatures are cached beside the
//! component, so a node without registry access still verifies what it starts (they are checked
//! cryptographically on every use, so the cache needs no integrity of its own).

use std::collections::BTreeMap;

use bulkhead_signature::{
    MAX_PAYLOAD_LEN, MAX_SIGNATURES, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE,
};
use oci_client::Reference;
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};

use crate::RegistryError;
use crate::artifact::Signature;
use crate::cache::Cache;
use crate::transfer::Registry;

impl Registry {
    /// The signatures of the artifact `manifest_digest` in `reference`'s repository: from the
    /// registry, else (unreachable, or none there) from the cache. Empty when there are none.
    pub async fn signatures(
        &self,
        reference: &str,
        manifest_digest: &str,
    ) -> Result<Vec<Signature>, RegistryError> {
        let fetched = self.fetch_signatures(reference, manifest_digest).await;
        let cache = self.options().cache_dir.as_ref().map(Cache::new);
        match (fetched, cache) {
            (Ok(signatures), Some(cache)) if !signatures.is_empty() => {
                cache.put_signatures(manifest_digest, &signatures)?;
                Ok(signatures)
            }
            (Ok(signatures), None) => Ok(signatures),
            (result, Some(cache)) => match cache.get_signatures(manifest_digest) {
                Some(cached) => Ok(cached),
                None => result,
            },
            (Err(error), None) => Err(error),
        }
    }

    async fn fetch_signatures(
        &self,
        reference: &str,
        manifest_digest: &str,
    ) -> Result<Vec<Signature>, RegistryError> {
        let sig_ref = signature_reference(reference, manifest_digest)?;
        let client = self.client(&sig_ref);
        let auth = self.auth(&sig_ref);
        let manifest = match client
            .pull_manifest_raw(&sig_ref, &auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
        {
            Ok((manifest, _)) => manifest,
            // No signature manifest at all.
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => {
                return Err(RegistryError::Registry {
                    reference: sig_ref.whole(),
                    operation: "reading signatures",
                    reason: e.to_string(),
                });
            }
        };
        let manifest: OciImageManifest =
            serde_json::from_slice(&manifest).map_err(|e| RegistryError::NotAComponent {
                reference: sig_ref.whole(),
                reason: format!("the signature manifest is not an OCI image manifest: {e}"),
            })?;
        let mut signatures = Vec::new();
        for layer in manifest
            .layers
            .iter()
            .filter(|layer| layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
            .take(MAX_SIGNATURES)
        {
            let Some(signature) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            else {
                continue;
            };
            if !(0..=MAX_PAYLOAD_LEN as i64).contains(&layer.size) {
                continue;
            }
            let mut payload = Vec::new();
            client
                .pull_blob(&sig_ref, layer, &mut payload)
                .await
                .map_err(|e| RegistryError::Registry {
                    reference: sig_ref.whole(),
                    operation: "reading a signature payload",
                    reason: e.to_string(),
                })?;
            signatures.push((payload, signature.clone()));
        }
        Ok(signatures)
    }

    /// Stores `signature` over the artifact `manifest_digest` where cosign would, next to
    /// `reference`. (The registry keeps one signature manifest per artifact: this one replaces
    /// any before it.)
    pub async fn push_signature(
        &self,
        reference: &str,
        manifest_digest: &str,
        signature: &Signature,
    ) -> Result<(), RegistryError> {
        let sig_ref = signature_reference(reference, manifest_digest)?;
        let annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature.1.clone())]);
        let layer = ImageLayer::new(
            signature.0.clone(),
            SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
            Some(annotations),
        );
        let config = Config::new(
            b"{}".to_vec(),
            "application/vnd.oci.image.config.v1+json".to_string(),
            None,
        );
        self.client(&sig_ref)
            .push(&sig_ref, &[layer], config, &self.auth(&sig_ref), None)
            .await
            .map_err(|e| RegistryError::Registry {
                reference: sig_ref.whole(),
                operation: "pushing the signature",
                reason: e.to_string(),
            })?;
        Ok(())
    }
}

/// Whether the registry said the signature manifest does not exist (rather than failing).
fn is_not_found(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError, OciErrorCode};
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

/// `registry/repository:sha256-<hex>.sig` for the artifact `manifest_digest` of `reference`.
fn signature_reference(reference: &str, manifest_digest: &str) -> Result<Reference, RegistryError> {
    let parsed: Reference =
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| RegistryError::Reference {
                reference: reference.into(),
                reason: e.to_string(),
            })?;
    let tag = bulkhead_signature::signature_tag(manifest_digest).map_err(|e| {
        RegistryError::Reference {
            reference: reference.into(),
            reason: e.to_string(),
        }
    })?;
    Ok(Reference::with_tag(
        parsed.registry().to_string(),
        parsed.repository().to_string(),
        tag,
    ))
}
