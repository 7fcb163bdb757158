//! The content-addressed store pulled components are kept in: `<dir>/manifests/<hex>` holds a
//! manifest whose sha256 is `<hex>`, `<dir>/blobs/<hex>` a layer whose sha256 is `<hex>`. Every
//! read checks both digests again, so a file changed on disk is never used (it is treated as
//! absent and pulled again), and a node that restarts without registry access still has every
//! component it pulled before, by the digest its configuration pins.

use std::path::{Path, PathBuf};

use crate::artifact::{Signature, wasm_layer};
use crate::{RegistryError, is_sha256_digest, sha256_digest};

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// What the cache holds for one manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The Wasm layer's bytes.
    pub wasm: Vec<u8>,
}

impl Cache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The component stored under `manifest_digest`, if it is there and intact.
    pub fn get(&self, manifest_digest: &str) -> Option<Cached> {
        let manifest = self.read_verified("manifests", manifest_digest)?;
        let layer = wasm_layer(&manifest, "cache").ok()?;
        let wasm = self.read_verified("blobs", &layer.digest)?;
        Some(Cached { manifest, wasm })
    }

    /// Stores a manifest and its Wasm layer, each under its own digest (written to a temporary
    /// file and renamed, so a reader never sees half a file).
    pub fn put(&self, manifest: &[u8], wasm: &[u8]) -> Result<String, RegistryError> {
        let manifest_digest = sha256_digest(manifest);
        self.write("blobs", &sha256_digest(wasm), wasm)?;
        self.write("manifests", &manifest_digest, manifest)?;
        Ok(manifest_digest)
    }

    /// The signatures last fetched for `manifest_digest` (verified by the caller on every use).
    pub fn get_signatures(&self, manifest_digest: &str) -> Option<Vec<Signature>> {
        let bytes = std::fs::read(self.path("signatures", manifest_digest)?).ok()?;
        let entries: Vec<(String, String)> = serde_json::from_slice(&bytes).ok()?;
        Some(
            entries
                .into_iter()
                .map(|(payload, signature)| (payload.into_bytes(), signature))
                .collect(),
        )
    }

    /// Keeps the signatures fetched for `manifest_digest`.
    pub fn put_signatures(
        &self,
        manifest_digest: &str,
        signatures: &[Signature],
    ) -> Result<(), RegistryError> {
        let entries: Vec<(String, &String)> = signatures
            .iter()
            .map(|(payload, signature)| (String::from_utf8_lossy(payload).into_owned(), signature))
            .collect();
        let bytes = serde_json::to_vec(&entries).unwrap_or_default();
        self.write("signatures", manifest_digest, &bytes)
    }

    fn path(&self, kind: &str, digest: &str) -> Option<PathBuf> {
        is_sha256_digest(digest).then(|| self.dir.join(kind).join(&digest["sha256:".len()..]))
    }

    fn read_verified(&self, kind: &str, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(kind, digest)?).ok()?;
        (sha256_digest(&bytes) == digest).then_some(bytes)
    }

    fn write(&self, kind: &str, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let error = |path: &Path, e: std::io::Error| RegistryError::Cache {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let path = self
            .path(kind, digest)
            .ok_or_else(|| RegistryError::Cache {
                path: self.dir.display().to_string(),
                reason: format!("{digest:?} is not a sha256 digest"),
            })?;
        let dir = self.dir.join(kind);
        std::fs::create_dir_all(&dir).map_err(|e| error(&dir, e))?;
        let staged = dir.join(format!(".{}.{}", &digest[7..], std::process::id()));
        std::fs::write(&staged, bytes).map_err(|e| error(&staged, e))?;
        std::fs::rename(&staged, &path).map_err(|e| error(&path, e))
    }
}
