//! Pushing a component to a registry and pulling one, verified: the manifest must have the
//! digest the reference pins, the Wasm layer the digest the manifest names, and both are
//! bounded in size before they are read.

use std::path::PathBuf;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
use oci_client::{Client, Reference};

use crate::artifact::{
    MAX_MANIFEST_BYTES, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, wasm_layer,
};
use crate::auth::Credentials;
use crate::cache::Cache;
use crate::transport::plain_http_allowed;
use crate::{RegistryError, sha256_digest};

/// Longest wait for a connection to a registry.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for the next bytes of an answer.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How the registry is reached.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port` as references write them) that may be spoken to over plain
    /// HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// Credentials per registry.
    pub credentials: Credentials,
    /// Where pulled components are kept; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Longest wait for a connection; `None`: [`CONNECT_TIMEOUT`].
    pub connect_timeout: Option<std::time::Duration>,
    /// Longest wait for the next bytes of an answer; `None`: [`READ_TIMEOUT`].
    pub read_timeout: Option<std::time::Duration>,
}

/// A component and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The Wasm bytes, verified.
    pub wasm: Vec<u8>,
    /// The manifest's digest: what a reference pins.
    pub manifest_digest: String,
    /// Whether it came from the cache rather than the registry.
    pub from_cache: bool,
}

/// Pushes and pulls components.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    options: RegistryOptions,
}

impl Registry {
    /// A registry client with `options`.
    pub fn new(options: RegistryOptions) -> Registry {
        Registry { options }
    }

    pub(crate) fn options(&self) -> &RegistryOptions {
        &self.options
    }

    pub(crate) fn client(&self, reference: &Reference) -> Client {
        let registry = reference.resolve_registry().to_string();
        Client::new(ClientConfig {
            protocol: if plain_http_allowed(&registry, &self.options.insecure) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // A registry that stops answering fails the pull instead of holding bulkhead's
            // start (or a reload) forever.
            connect_timeout: Some(self.options.connect_timeout.unwrap_or(CONNECT_TIMEOUT)),
            read_timeout: Some(self.options.read_timeout.unwrap_or(READ_TIMEOUT)),
            ..ClientConfig::default()
        })
    }

    fn cache(&self) -> Option<Cache> {
        self.options.cache_dir.as_ref().map(Cache::new)
    }

    /// Pushes `wasm` as a Wasm component artifact to `reference`; returns the manifest's digest,
    /// read back from the registry.
    pub async fn push(&self, wasm: &[u8], reference: &str) -> Result<String, RegistryError> {
        let parsed = parse(reference)?;
        let failed = |operation: &'static str, e: oci_client::errors::OciDistributionError| {
            RegistryError::Registry {
                reference: reference.to_string(),
                operation,
                reason: e.to_string(),
            }
        };
        let layer_digest = sha256_digest(wasm);
        // No timestamp: the same component gives the same config, and so the same digest.
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
        });
        let config = Config::new(
            serde_json::to_vec(&config).unwrap_or_default(),
            WASM_CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let layers = [ImageLayer::new(
            wasm.to_vec(),
            WASM_LAYER_MEDIA_TYPE.to_string(),
            None,
        )];
        let client = self.client(&parsed);
        let auth = self.auth(&parsed);
        client
            .push(&parsed, &layers, config, &auth, None)
            .await
            .map_err(|e| failed("push", e))?;
        let (manifest, _) = client
            .pull_manifest_raw(&parsed, &auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| failed("reading the pushed manifest back", e))?;
        let layer = wasm_layer(&manifest, reference)?;
        if layer.digest != layer_digest {
            return Err(RegistryError::DigestMismatch {
                reference: reference.into(),
                what: "wasm layer",
                expected: layer_digest,
                actual: layer.digest,
            });
        }
        Ok(sha256_digest(&manifest))
    }

    /// Pulls the component `reference` names. A reference pinned by digest is served from the
    /// cache when it is there and intact, without asking the registry; anything pulled is
    /// verified and then cached.
    pub async fn pull(&self, reference: &str) -> Result<Component, RegistryError> {
        let parsed = parse(reference)?;
        let pinned = parsed.digest().map(str::to_owned);
        if let (Some(digest), Some(cache)) = (&pinned, self.cache())
            && let Some(cached) = cache.get(digest)
        {
            return Ok(Component {
                wasm: cached.wasm,
                manifest_digest: digest.clone(),
                from_cache: true,
            });
        }
        let failed = |operation: &'static str, e: oci_client::errors::OciDistributionError| {
            RegistryError::Registry {
                reference: reference.to_string(),
                operation,
                reason: e.to_string(),
            }
        };
        let client = self.client(&parsed);
        let auth = self.auth(&parsed);
        let (manifest, _) = client
            .pull_manifest_raw(&parsed, &auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| failed("pulling the manifest", e))?;
        if manifest.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::NotAComponent {
                reference: reference.into(),
                reason: format!(
                    "manifest of {} bytes, more than {MAX_MANIFEST_BYTES}",
                    manifest.len()
                ),
            });
        }
        let manifest_digest = sha256_digest(&manifest);
        if let Some(expected) = pinned
            && manifest_digest != expected
        {
            return Err(RegistryError::DigestMismatch {
                reference: reference.into(),
                what: "manifest",
                expected,
                actual: manifest_digest,
            });
        }
        let layer = wasm_layer(&manifest, reference)?;
        let mut wasm = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
        client
            .pull_blob(&parsed, &layer, &mut wasm)
            .await
            .map_err(|e| failed("pulling the wasm layer", e))?;
        let actual = sha256_digest(&wasm);
        if actual != layer.digest {
            return Err(RegistryError::DigestMismatch {
                reference: reference.into(),
                what: "wasm layer",
                expected: layer.digest,
                actual,
            });
        }
        if let Some(cache) = self.cache() {
            cache.put(&manifest, &wasm)?;
        }
        Ok(Component {
            wasm,
            manifest_digest,
            from_cache: false,
        })
    }

    pub(crate) fn auth(&self, reference: &Reference) -> oci_client::secrets::RegistryAuth {
        self.options
            .credentials
            .for_registry(reference.resolve_registry())
    }
}

fn parse(reference: &str) -> Result<Reference, RegistryError> {
    reference
        .parse::<Reference>()
        .map_err(|e| RegistryError::Reference {
            reference: reference.into(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registry_that_never_answers_fails_the_pull_in_bounded_time() {
        // Accepts connections and never writes a byte.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let registry = Registry::new(RegistryOptions {
            read_timeout: Some(std::time::Duration::from_millis(200)),
            ..RegistryOptions::default()
        });
        let reference = format!("{address}/plugins/stuck@sha256:{}", "a".repeat(64));
        let pulled = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            registry.pull(&reference),
        )
        .await
        .expect("the pull waited for a silent registry");
        let error = pulled.unwrap_err().to_string();
        assert!(error.contains("stuck"), "{error}");
    }
}
