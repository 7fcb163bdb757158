//! Starting the real `bulkhead` binary against a [`Testbed`] and reading what it logged.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::{Process, Testbed};

/// The `bulkhead` binary under test: `$BULKHEAD_BIN`, or the one cargo built next to this test
/// executable or demo binary (`target/<profile>/bulkhead`).
pub fn bulkhead_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BULKHEAD_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe().context("while locating the test executable")?;
    // Binaries live in target/<profile>/, test executables in target/<profile>/deps/.
    let dir = exe.parent().context("unexpected executable location")?;
    let candidates = [Some(dir), dir.parent()];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join("bulkhead"))
        .find(|path| path.exists());
    let Some(candidate) = found else {
        bail!(
            "no bulkhead binary next to {}: build it first (`cargo build -p bulkhead-daemon`) or set BULKHEAD_BIN",
            exe.display()
        );
    };
    Ok(candidate)
}

impl Testbed {
    /// A `bulkhead run` command pointed at this test bed's sockets, logging JSON at debug level,
    /// with the built-in baseline policy (see [`Testbed::bulkhead_command_with_config`]).
    pub fn bulkhead_command(&self) -> anyhow::Result<Command> {
        self.bulkhead_command_with_config("")
    }

    /// A `bulkhead run` command with a config file made of `body` (e.g. `[[plugins]]` entries;
    /// empty keeps the baseline plugins, `plugins = []` runs none), plus test-bed-local settings:
    /// the audit log at [`Testbed::audit_path`], the secrets provider at
    /// [`Testbed::secrets_dir`] and their tmpfs in the test bed, compiled plugins cached in the
    /// shared state directory.
    pub fn bulkhead_command_with_config(&self, body: &str) -> anyhow::Result<Command> {
        let path = self.write_bulkhead_config(body)?;
        let mut command = Command::new(bulkhead_binary()?);
        command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--nri-socket")
            .arg(self.nri_socket())
            .arg("--containerd-socket")
            .arg(self.containerd_socket())
            .arg("--log-format")
            .arg("json")
            // A free port per daemon: tests run side by side; [`metrics_address`] reads it.
            .arg("--metrics-address")
            .arg("127.0.0.1:0")
            .env(
                "BULKHEAD_LOG",
                "info,bulkhead_daemon=debug,bulkhead_nri=debug",
            );
        Ok(command)
    }

    /// Writes the config file [`Testbed::bulkhead_command_with_config`] starts bulkhead with:
    /// `body` plus the test-bed-local settings. Writing it again while bulkhead runs is a
    /// reload (the file is replaced by a rename, as editors and the kubelet do).
    pub fn write_bulkhead_config(&self, body: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir().join("bulkhead.toml");
        let cache = crate::state_dir().join("plugin-cache");
        std::fs::create_dir_all(self.secrets_dir())?;
        let text = format!(
            "{body}\n\n[audit]\npath = {:?}\n\n[sandbox]\ncache-dir = {:?}\n\n[secrets]\nprovider-dir = {:?}\nruntime-dir = {:?}\n",
            self.audit_path().display().to_string(),
            cache.display().to_string(),
            self.secrets_dir().display().to_string(),
            self.dir().join("secrets-run").display().to_string(),
        );
        let staged = self.dir().join(".bulkhead.toml.new");
        std::fs::write(&staged, text)
            .with_context(|| format!("while writing {}", staged.display()))?;
        std::fs::rename(&staged, &path)
            .with_context(|| format!("while replacing {}", path.display()))?;
        Ok(path)
    }

    /// The secrets provider directory bulkhead reads in this test bed: write a file named after
    /// a secret here to make it available.
    pub fn secrets_dir(&self) -> PathBuf {
        self.dir().join("secrets")
    }

    /// Where [`Testbed::bulkhead_command_with_config`] sends the audit log.
    pub fn audit_path(&self) -> PathBuf {
        self.dir().join("audit.jsonl")
    }

    /// The audit records written so far.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        log_records(&std::fs::read_to_string(self.audit_path()).unwrap_or_default())
    }

    /// The audit records for container `name` at `event`, waiting up to 3 s for the first
    /// one: bulkhead writes records from its own thread, after answering containerd, so a
    /// record may land just after the CRI call returned. Empty if none came.
    pub fn audit_records_for(&self, name: &str, event: &str) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let found: Vec<_> = self
                .audit_records()
                .into_iter()
                .filter(|r| r["container"]["name"] == name && r["event"] == event)
                .collect();
            if !found.is_empty() || std::time::Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `command` (usually from [`Testbed::bulkhead_command`]) and waits until it has
    /// registered with containerd and synchronized.
    pub async fn start_bulkhead(&self, command: Command, name: &str) -> anyhow::Result<Process> {
        let log = self.dir().join(format!("{name}.log"));
        let mut process = Process::spawn(name, command, log)?;
        process
            .wait_for_log_line("connected and synchronized", Duration::from_secs(10))
            .await?;
        Ok(process)
    }
}

/// Where a daemon started by [`Testbed::bulkhead_command`] serves `/metrics`, `/healthz` and
/// `/readyz`, from its log line.
pub fn metrics_address(log: &str) -> Option<String> {
    log_records(log).into_iter().find_map(|record| {
        (record["message"] == "metrics endpoint listening (/metrics, /healthz, /readyz)")
            .then(|| record["address"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// `GET path` from the endpoint at `address` (`ip:port`): the status code and body.
pub async fn http_get(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("while connecting to {address}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: bulkhead\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A `[[plugins]]` entry for the plugin component at `path` (in tests, usually the scripted
/// plugin, which answers whatever its config says): `settings` are bulkhead's plain keys for
/// the entry (mode, failure policy), `config` the plugin's own TOML. Append a
/// `[plugins.grants]` table to the result to grant it something.
pub fn plugin_entry(path: &str, settings: &str, config: &str) -> String {
    format!("[[plugins]]\npath = {path:?}\n{settings}\n[plugins.config]\n{config}\n")
}

/// One JSON log line of bulkhead, parsed.
pub fn log_records(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The NRI events bulkhead logged for the container named `container`, in order.
pub fn events_for_container(log: &str, container: &str) -> Vec<String> {
    log_records(log)
        .iter()
        .filter(|record| record["message"] == "event")
        .filter(|record| record["span"]["container.name"] == container)
        .filter_map(|record| record["span"]["event"].as_str().map(str::to_string))
        .collect()
}
