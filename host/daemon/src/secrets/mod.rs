//! Secrets granted to containers: read from the operator's provider, written to bulkhead's
//! private tmpfs owned by the container's user, and bind-mounted read-only into the container.
//!
//! A plugin only ever names a secret (`mount-secret(name, target, mode)`); the value goes from
//! the provider to the tmpfs here and nowhere else — never into logs, audit records, errors or
//! plugin input. Each container gets a directory named after its id, removed with the container,
//! and stale directories are swept at start-up against the runtime's list of containers.

mod provider;
mod tmpfs;

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bulkhead_core::config::SecretsConfig;
use bulkhead_core::decision::SecretMount;
use oci_spec::runtime::{Mount, MountBuilder};
use thiserror::Error;

pub use provider::{DirectoryProvider, SecretValue};

/// What can go wrong with a secret. Messages name the secret and paths, never the value.
#[derive(Debug, Error)]
pub enum SecretError {
    /// The secret does not exist in the provider.
    #[error("secret {name:?} is not in the provider directory {dir}")]
    NotFound {
        /// Secret name.
        name: String,
        /// Provider directory.
        dir: PathBuf,
    },
    /// The name is not a plain file name.
    #[error("secret name {name:?} is not a plain name (letters, digits, '.', '_', '-')")]
    BadName {
        /// Secret name.
        name: String,
    },
    /// The secret is larger than bulkhead materializes.
    #[error("secret {name:?} is larger than {limit} bytes")]
    TooLarge {
        /// Secret name.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// Reading, writing or mounting failed.
    #[error("secret {name:?}: {action} {path}: {source}")]
    Io {
        /// Secret name (or `-` for the store itself).
        name: String,
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Where secrets are materialized and where they come from.
#[derive(Debug)]
pub struct SecretStore {
    provider: DirectoryProvider,
    runtime_dir: PathBuf,
}

impl SecretStore {
    /// Prepares the runtime directory: created with mode 0700 and backed by bulkhead's own
    /// size-capped tmpfs (so secrets never reach a disk nor fill a shared `/run`), mounted there
    /// even under another tmpfs, unless a previous run's bulkhead tmpfs is still mounted on it.
    pub fn open(config: &SecretsConfig) -> Result<SecretStore, SecretError> {
        let io = |action, source| SecretError::Io {
            name: "-".into(),
            action,
            path: config.runtime_dir.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.runtime_dir)
            .map_err(|e| io("creating", e))?;
        tmpfs::ensure_tmpfs(&config.runtime_dir).map_err(|e| io("mounting a tmpfs on", e))?;
        Ok(SecretStore {
            provider: DirectoryProvider::new(config.provider_dir.clone()),
            runtime_dir: config.runtime_dir.clone(),
        })
    }

    fn container_dir(&self, container_id: &str) -> PathBuf {
        self.runtime_dir.join(container_id)
    }

    /// Writes `secret` for `container_id`, owned by `uid:gid` with the requested mode, and
    /// returns the read-only bind mount that puts it at its target.
    pub fn materialize(
        &self,
        container_id: &str,
        secret: &SecretMount,
        uid: u32,
        gid: u32,
    ) -> Result<Mount, SecretError> {
        let value = self.provider.read(&secret.secret)?;
        let io = |action, path: &Path, source| SecretError::Io {
            name: secret.secret.clone(),
            action,
            path: path.to_path_buf(),
            source,
        };
        let dir = self.container_dir(container_id);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&dir)
            .map_err(|e| io("creating", &dir, e))?;
        let file = dir.join(&secret.secret);
        let _ = fs::remove_file(&file);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| io("creating", &file, e))?;
        out.write_all(value.expose())
            .map_err(|e| io("writing", &file, e))?;
        drop(out);
        std::os::unix::fs::chown(&file, Some(uid), Some(gid))
            .map_err(|e| io("changing the owner of", &file, e))?;
        fs::set_permissions(
            &file,
            std::os::unix::fs::PermissionsExt::from_mode(secret.mode & 0o777),
        )
        .map_err(|e| io("setting the mode of", &file, e))?;
        MountBuilder::default()
            .destination(&secret.target)
            .source(&file)
            .typ("bind")
            .options(
                ["rbind", "ro", "nosuid", "nodev", "noexec"]
                    .map(String::from)
                    .to_vec(),
            )
            .build()
            .map_err(|e| {
                io(
                    "describing the mount of",
                    &file,
                    std::io::Error::other(e.to_string()),
                )
            })
    }

    /// Removes every secret of `container_id`.
    pub fn remove(&self, container_id: &str) {
        let dir = self.container_dir(container_id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => tracing::debug!(container.id = container_id, "secrets removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(%error, dir = %dir.display(), "cannot remove a container's secrets")
            }
        }
    }

    /// Removes the secrets of containers that no longer exist.
    pub fn sweep(&self, live: &HashSet<&str>) {
        let Ok(entries) = fs::read_dir(&self.runtime_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if !live.contains(id) {
                tracing::info!(
                    container.id = id,
                    "sweeping secrets of a container that is gone"
                );
                self.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn store(dir: &Path) -> SecretStore {
        let provider = dir.join("provider");
        fs::create_dir_all(&provider).unwrap();
        fs::write(provider.join("db-password"), b"s3cr3t-value").unwrap();
        SecretStore {
            provider: DirectoryProvider::new(provider),
            runtime_dir: dir.join("runtime"),
        }
    }

    fn request(name: &str) -> SecretMount {
        SecretMount {
            secret: name.into(),
            target: "/run/secrets/db".into(),
            mode: 0o400,
        }
    }

    #[test]
    fn materializes_with_owner_mode_and_a_readonly_bind_mount() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mount = store
            .materialize("c1", &request("db-password"), 1000, 1000)
            .unwrap();
        let file = mount.source().clone().unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"s3cr3t-value");
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(
            (meta.mode() & 0o777, meta.uid(), meta.gid()),
            (0o400, 1000, 1000)
        );
        assert_eq!(mount.destination(), Path::new("/run/secrets/db"));
        assert!(
            mount
                .options()
                .as_ref()
                .unwrap()
                .contains(&"ro".to_string())
        );
    }

    #[test]
    fn errors_name_the_secret_and_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let err = store
            .materialize("c1", &request("missing"), 0, 0)
            .unwrap_err();
        assert!(err.to_string().contains("\"missing\""), "{err}");
        let err = store
            .materialize("c1", &request("../etc/passwd"), 0, 0)
            .unwrap_err();
        assert!(matches!(err, SecretError::BadName { .. }), "{err}");
        // Debug of a value is redacted.
        let value = store.provider.read("db-password").unwrap();
        assert!(!format!("{value:?}").contains("s3cr3t"));
    }

    #[test]
    fn remove_and_sweep_delete_container_directories() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store
            .materialize("gone", &request("db-password"), 0, 0)
            .unwrap();
        store
            .materialize("live", &request("db-password"), 0, 0)
            .unwrap();
        store.sweep(&HashSet::from(["live"]));
        assert!(!store.container_dir("gone").exists());
        assert!(store.container_dir("live").exists());
        store.remove("live");
        assert!(!store.container_dir("live").exists());
    }
}
