//! The on-disk cache of compiled plugins, so a restart does not pay Cranelift again.
//!
//! An artifact is only valid for the exact wasmtime version and the exact engine configuration
//! (features, tunables, target) that produced it, so the file name carries both next to the
//! plugin's sha256: `<plugin-sha256>-<engine-key>.cwasm`. A stale or corrupt artifact is never
//! fatal: it is logged, recompiled and overwritten.
//!
//! Loading an artifact runs its native code, so the cache is guarded at every step:
//! - the directory is created `0700` if missing, and refused if it is a symlink, is not owned by
//!   the effective uid, or is group- or world-writable ([`ArtifactCache::new`]);
//! - each file is `MAGIC` + sha256 of the body + the body (wasmtime's serialized component), and
//!   the digest is checked before the body reaches wasmtime, so a torn write, bit rot or an
//!   artifact swapped for another one is recompiled, never loaded;
//! - files are opened with `O_NOFOLLOW` and must be regular files, so a symlink planted in the
//!   directory is not followed to bytes somewhere else.
//!
//! The digest is not a signature: whoever can write the directory can also rewrite the header.
//! What stops that writer is the ownership and mode check on the directory.

use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::OFlags;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release the workspace pins (`=48.0.8`); part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The start of every artifact file: names the format, so a file of another layout is refused.
const MAGIC: &[u8; 16] = b"bulkhead-cwasm1\n";
/// Magic plus the sha256 of the body.
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A directory of compiled artifacts for one engine configuration.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// Uses `dir` for artifacts of `engine`, creating it `0700` if missing. Refuses a directory
    /// another user could write into (see [`check_dir`]): its files become native code in this
    /// process. Every error names the directory.
    pub fn new(dir: PathBuf, engine: &Engine) -> io::Result<Self> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", dir.display()));
        let meta = match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(named)?;
                std::fs::symlink_metadata(&dir).map_err(named)?
            }
            other => other.map_err(named)?,
        };
        check_dir(&meta, rustix::process::geteuid().as_raw()).map_err(|reason| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: {reason}", dir.display()),
            )
        })?;
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
        match read_verified(&path) {
            Ok(Some(body)) => match deserialize(engine, &body) {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {err}")
                }
            },
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {err}")
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot write compiled artifact to cache: {err}");
        }
        Ok(component)
    }
}

/// Why a cache directory may not be used, or `Ok`. `euid` is the effective uid of this process
/// (a parameter so the owner rule is testable without a second user).
fn check_dir(meta: &Metadata, euid: u32) -> Result<(), String> {
    if meta.file_type().is_symlink() {
        return Err("is a symlink; configure the real directory".into());
    }
    if !meta.is_dir() {
        return Err("is not a directory".into());
    }
    if meta.uid() != euid {
        return Err(format!(
            "is owned by uid {}, not by uid {euid} that runs bulkhead",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "is group- or world-writable (mode {mode:o}); remove write access for group and others"
        ));
    }
    Ok(())
}

/// The body of the artifact at `path` once its digest checks out; `None` if there is no file.
///
/// `O_NOFOLLOW` refuses a symlink at `path`, `O_NONBLOCK` keeps a FIFO planted there from
/// blocking the open, and the type is checked on the opened descriptor, not on the path.
fn read_verified(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid("not a regular file"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    if bytes.len() < HEADER_LEN || !bytes.starts_with(MAGIC) {
        return Err(invalid("not a bulkhead artifact (bad header)"));
    }
    let body = bytes.split_off(HEADER_LEN);
    if Sha256::digest(&body).as_slice() != &bytes[MAGIC.len()..] {
        return Err(invalid("sha256 of the artifact does not match its header"));
    }
    Ok(Some(body))
}

/// Writes header and body atomically (a fresh private temp file, then rename), so a concurrent
/// reader never sees half a file and a symlink at the final path is replaced, not written
/// through.
fn store(path: &Path, component: &Component) -> wasmtime::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let body = component.serialize()?;
    let tmp = path.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover of a crashed process with the same pid; `create_new` below would refuse it.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        file.write_all(&header(&body))?;
        file.write_all(&body)?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// `MAGIC` followed by the sha256 of `body`.
fn header(body: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&Sha256::digest(body));
    header
}

/// Turns a verified artifact body back into a component.
///
/// Deserializing is `unsafe` in wasmtime because the bytes are trusted to be native code
/// produced by a compatible wasmtime: nothing re-verifies them. The bytes are in memory rather
/// than mapped, so a file truncated or replaced under a running daemon cannot fault it.
#[allow(
    unsafe_code,
    reason = "the one place compiled code is loaded; see SAFETY below"
)]
fn deserialize(engine: &Engine, body: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `body` comes from `read_verified`: a regular file (no symlink followed) in a
    // directory that `ArtifactCache::new` checked is owned by this uid and writable by no one
    // else — the same trust as the bulkhead binary itself — whose sha256 matches the header our
    // own `store` wrote beside it. The file name pins wasmtime version and engine config, and
    // wasmtime still checks its own version/config header before using the code, so a
    // mismatched artifact is an error, not undefined behaviour.
    unsafe { Component::deserialize(engine, body) }
}

/// A short stable key for "this wasmtime version with this engine configuration".
fn engine_key(engine: &Engine) -> String {
    let mut hasher = DefaultHasher::new();
    WASMTIME_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use bulkhead_test_plugins::{NOOP, REALISTIC};

    const DIGEST: &str = "0123abcd";

    fn noop() -> Vec<u8> {
        std::fs::read(NOOP).unwrap()
    }

    /// A cache in a fresh private temp dir (the tempdir is kept alive by the caller).
    fn cache(engine: &Engine) -> (tempfile::TempDir, ArtifactCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path().join("cache"), engine).unwrap();
        (dir, cache)
    }

    fn inode(path: &Path) -> u64 {
        std::fs::symlink_metadata(path).unwrap().ino()
    }

    #[test]
    fn artifact_is_stored_with_its_digest_and_reused() {
        let engine = Engine::default();
        let (_dir, cache) = cache(&engine);
        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        let path = cache.path_for(DIGEST);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(bytes[..HEADER_LEN], header(&bytes[HEADER_LEN..])[..]);
        // The second load uses the file as it is (no recompile, no rewrite).
        let before = inode(&path);
        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        assert_eq!(inode(&path), before);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn tampered_artifact_is_recompiled_not_loaded() {
        let engine = Engine::default();
        let (_dir, cache) = cache(&engine);
        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        let path = cache.path_for(DIGEST);
        let genuine = std::fs::read(&path).unwrap();
        // Swap the body for another valid artifact (which wasmtime itself would accept), keeping
        // the genuine header.
        let other = Component::new(&engine, std::fs::read(REALISTIC).unwrap())
            .unwrap()
            .serialize()
            .unwrap();
        let mut tampered = genuine[..HEADER_LEN].to_vec();
        tampered.extend_from_slice(&other);
        std::fs::write(&path, &tampered).unwrap();
        assert!(read_verified(&path).is_err());

        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        let rewritten = std::fs::read(&path).unwrap();
        assert_ne!(rewritten, tampered, "the tampered artifact was kept");
        assert!(read_verified(&path).unwrap().is_some());

        // A single flipped byte is caught too.
        let mut flipped = rewritten.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(read_verified(&path).is_err());
    }

    #[test]
    fn symlinked_artifact_is_not_followed() {
        let engine = Engine::default();
        let (dir, cache) = cache(&engine);
        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        let path = cache.path_for(DIGEST);
        // A valid artifact elsewhere, and a symlink to it in place of the cached file.
        let elsewhere = dir.path().join("elsewhere.cwasm");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(read_verified(&path).is_err(), "O_NOFOLLOW must refuse it");

        cache.load_or_compile(&engine, &noop(), DIGEST).unwrap();
        // Recompiled and stored as a regular file over the link; the target is untouched.
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert!(std::fs::symlink_metadata(&elsewhere).unwrap().is_file());
    }

    #[test]
    fn non_regular_artifact_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_verified(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(
            read_verified(&dir.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn missing_cache_dir_is_created_private() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b");
        ArtifactCache::new(path.clone(), &engine).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn world_or_group_writable_cache_dir_is_refused() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o720, 0o702] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let err = ArtifactCache::new(dir.path().to_owned(), &engine)
                .err()
                .unwrap_or_else(|| panic!("mode {mode:o} accepted"));
            let text = err.to_string();
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
            assert!(text.contains("writable"), "{text}");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        ArtifactCache::new(dir.path().to_owned(), &engine).unwrap();
    }

    #[test]
    fn symlinked_cache_dir_is_refused() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let err = ArtifactCache::new(link.clone(), &engine).err().unwrap();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(
            err.to_string().contains(&link.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn cache_dir_of_another_owner_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        let other = meta.uid().wrapping_add(1);
        let err = check_dir(&meta, other).unwrap_err();
        assert!(
            err.contains(&format!("owned by uid {}", meta.uid())),
            "{err}"
        );
        assert_eq!(check_dir(&meta, meta.uid()), Ok(()));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(check_dir(&meta, meta.uid()).is_err());
    }
}
