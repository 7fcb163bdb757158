//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry),
//! started on a free loopback port with its storage in a temporary directory, stopped when
//! dropped. Plugins are pushed to it and pulled from it as from any registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Process;

/// The registry binary `tests/testbed/setup.sh` installs.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry.
pub struct Registry {
    process: Process,
    address: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one and waits until it answers `/v2/`.
    pub async fn start() -> anyhow::Result<Registry> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                dir.path().display()
            ),
        )?;
        let mut command = Command::new(REGISTRY_BIN);
        command.arg("serve").arg(&config);
        let process = Process::spawn("registry", command, dir.path().join("registry.log"))
            .with_context(|| {
                format!("while starting {REGISTRY_BIN} (tests/testbed/setup.sh installs it)")
            })?;
        let registry = Registry {
            process,
            address,
            dir,
        };
        registry.wait_ready().await?;
        Ok(registry)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok((200, _)) = crate::http_get(&self.address, "/v2/").await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the registry on {} did not answer /v2/ within 10 s:\n{}",
                    self.address,
                    self.process.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:<port>`, as references name it.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Where the registry keeps blobs: `<root>/docker/registry/v2/blobs/sha256/<ab>/<hex>/data`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn storage(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it (a pull then finds no registry).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.process.terminate(Duration::from_secs(5)).await?;
        Ok(())
    }
}
