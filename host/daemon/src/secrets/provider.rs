//! The directory secret provider: one file per secret, named after it.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use rustix::fs::OFlags;

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

    /// The secret called `name`. Names are plain file names not starting with `.`: no path can
    /// escape the directory, and hidden entries (editor and tool leftovers, Kubernetes `..data`)
    /// are never served.
    ///
    /// The file is opened with `O_NOFOLLOW` and checked through the opened descriptor (regular
    /// file, at most [`MAX_SECRET_BYTES`]), never by a separate look at the path first: a symlink
    /// swapped in between a check and an open would otherwise hand a container any file root can
    /// read. A symlink is reported as [`SecretError::NotFound`]; `O_NONBLOCK` keeps a FIFO from
    /// blocking the open before the type check refuses it.
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
        let too_large = || SecretError::TooLarge {
            name: name.into(),
            limit: MAX_SECRET_BYTES,
        };
        let io = |action, source| SecretError::Io {
            name: name.into(),
            action,
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
            .open(&path);
        let file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_symlink_refusal(&e) => {
                return Err(not_found());
            }
            Err(e) => return Err(io("opening", e)),
        };
        let meta = file.metadata().map_err(|e| io("inspecting", e))?;
        if !meta.file_type().is_file() {
            return Err(not_found());
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_SECRET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io("reading", e))?;
        // The file may have grown since fstat.
        if bytes.len() as u64 > MAX_SECRET_BYTES {
            return Err(too_large());
        }
        Ok(SecretValue(bytes))
    }
}

/// Whether `open` failed because `O_NOFOLLOW` met a symlink (`ELOOP`).
fn is_symlink_refusal(error: &io::Error) -> bool {
    error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    fn provider(dir: &Path) -> DirectoryProvider {
        let provider = dir.join("provider");
        fs::create_dir_all(&provider).unwrap();
        fs::write(provider.join("token"), b"t0ken").unwrap();
        DirectoryProvider::new(provider)
    }

    #[test]
    fn reads_a_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let value = provider(dir.path()).read("token").unwrap();
        assert_eq!(value.expose(), b"t0ken");
    }

    #[test]
    fn symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let target = dir.path().join("host-file");
        fs::write(&target, b"root-only-bytes").unwrap();
        std::os::unix::fs::symlink(&target, provider.dir.join("link")).unwrap();
        match provider.read("link") {
            Err(SecretError::NotFound { name, .. }) => assert_eq!(name, "link"),
            Err(other) => panic!("expected NotFound, got {other}"),
            Ok(value) => panic!("followed the symlink: {:?}", value.expose()),
        }
        // A dangling link too.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), provider.dir.join("dangling"))
            .unwrap();
        assert!(matches!(
            provider.read("dangling"),
            Err(SecretError::NotFound { .. })
        ));
    }

    #[test]
    fn hidden_and_path_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        fs::write(provider.dir.join(".hidden"), b"x").unwrap();
        for name in [".hidden", "..data", "", "a/b", "../token"] {
            assert!(
                matches!(provider.read(name), Err(SecretError::BadName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn directories_and_fifos_are_not_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        fs::create_dir(provider.dir.join("subdir")).unwrap();
        assert!(matches!(
            provider.read("subdir"),
            Err(SecretError::NotFound { .. })
        ));
        // Without O_NONBLOCK this open would block until a writer appeared.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            provider.dir.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            provider.read("fifo"),
            Err(SecretError::NotFound { .. })
        ));
    }

    #[test]
    fn oversized_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let file = fs::File::create(provider.dir.join("big")).unwrap();
        file.set_len(MAX_SECRET_BYTES + 1).unwrap();
        assert!(matches!(
            provider.read("big"),
            Err(SecretError::TooLarge { .. })
        ));
        file.set_len(MAX_SECRET_BYTES).unwrap();
        assert_eq!(
            provider.read("big").unwrap().expose().len() as u64,
            MAX_SECRET_BYTES
        );
    }
}
