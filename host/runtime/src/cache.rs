//! The on-disk cache of compiled plugins, so a restart does not pay Cranelift again.
//!
//! An artifact is only valid for the exact wasmtime version and the exact engine configuration
//! (features, tunables, target) that produced it, so the file name carries both next to the
//! plugin's sha256: `<plugin-sha256>-<engine-key>.cwasm`. A stale or corrupt artifact is never
//! fatal: it is logged, recompiled and overwritten.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release the workspace pins (`=48.0.8`); part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// A directory of compiled artifacts for one engine configuration.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// Uses `dir` (created if missing) for artifacts of `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache {
            dir,
            engine_key: engine_key(engine),
        })
    }

    fn path_for(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.cwasm", self.engine_key))
    }

    /// Loads the artifact for `digest_hex`, or compiles `wasm` and stores the result.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest_hex: &str,
    ) -> wasmtime::Result<Component> {
        let path = self.path_for(digest_hex);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {err}")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot write compiled artifact to cache: {err}");
        }
        Ok(component)
    }

    /// Writes atomically (temp file + rename) so a concurrent reader never sees half a file.
    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// Loads a compiled artifact.
///
/// Deserializing is `unsafe` in wasmtime because the bytes are trusted to be native code
/// produced by a compatible wasmtime: nothing re-verifies them. The file is read into memory
/// rather than mapped, so a file truncated or replaced under a running daemon cannot fault it.
#[allow(
    unsafe_code,
    reason = "the one place compiled code is loaded; see SAFETY below"
)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: the cache directory is written only by this runtime (files appear via an atomic
    // rename of our own `Component::serialize` output) and is configured by the operator as a
    // root-owned directory under bulkhead's state dir — the same trust as the bulkhead binary
    // itself. The file name pins wasmtime version and engine config, and wasmtime still checks
    // its own version/config header before using the code, so a mismatched or truncated artifact
    // is an error, not undefined behaviour.
    unsafe { Component::deserialize(engine, &bytes) }
}

/// A short stable key for "this wasmtime version with this engine configuration".
fn engine_key(engine: &Engine) -> String {
    let mut hasher = DefaultHasher::new();
    WASMTIME_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
