//! The directory secret provider: one file per secret, named after it.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::SecretError;

/// Largest secret materialized; secrets are small (keys, passwords, tokens).
pub const MAX_SECRET_BYTES: u64 = 1 << 20;

/// Secret bytes, redacted from `Debug` so they cannot leak through logging by accident.
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// The bytes, for writing them to the container's file — the one place they go.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads secrets from a directory the operator fills (e.g. from a vault agent or a Kubernetes
/// secret volume).
#[derive(Debug, Clone)]
pub struct DirectoryProvider {
    dir: PathBuf,
}

impl DirectoryProvider {
    /// A provider reading `dir`.
    pub fn new(dir: PathBuf) -> DirectoryProvider {
        DirectoryProvider { dir }
    }

    /// The secret called `name`. Names are plain file names: no path can escape the directory,
    /// and symbolic links are not followed.
    pub fn read(&self, name: &str) -> Result<SecretValue, SecretError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(SecretError::BadName { name: name.into() });
        }
        let path = self.dir.join(name);
        let not_found = || SecretError::NotFound {
            name: name.into(),
            dir: self.dir.clone(),
        };
        let io = |action, source| SecretError::Io {
            name: name.into(),
            action,
            path: path.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&path).map_err(|_| not_found())?;
        if !meta.file_type().is_file() {
            return Err(not_found());
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge {
                name: name.into(),
                limit: MAX_SECRET_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        fs::File::open(&path)
            .and_then(|file| file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| io("reading", e))?;
        Ok(SecretValue(bytes))
    }
}
