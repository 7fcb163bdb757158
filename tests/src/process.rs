//! [`Process`]: a child process under test (typically the bulkhead daemon) that is killed when
//! the test ends, with its output captured in a file the test can poll.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::testbed::tail;

/// How often [`Process::wait_for_log_line`] rereads the log.
const POLL: Duration = Duration::from_millis(20);

/// A running child process whose stdout and stderr both go to one log file.
///
/// Dropping it kills the process (SIGKILL) and reaps it; if the test is panicking, the end of
/// the log is printed first so the failure shows what the process said.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout + stderr appended to `log`.
    ///
    /// `name` only labels messages. Put the log in the test bed directory
    /// ([`crate::Testbed::dir`]) to have it cleaned up with it, or elsewhere to keep it.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: impl Into<PathBuf>,
    ) -> anyhow::Result<Self> {
        let log = log.into();
        let stdout = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("while opening {}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("while opening {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("while starting {name}: {command:?}"))?;
        Ok(Process {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a line of the log contains `pattern` and returns that line.
    ///
    /// Fails after `timeout`, or as soon as the process exits without having written it; the
    /// error carries the end of the log.
    pub async fn wait_for_log_line(
        &mut self,
        pattern: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            // Read before checking for exit, so a line written just before exiting is found.
            let exited = self.try_wait()?;
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(pattern)) {
                return Ok(line.to_string());
            }
            if let Some(status) = exited {
                bail!(
                    "{} exited ({status}) without logging {pattern:?}; last lines:\n{}",
                    self.name,
                    tail(&log, 40)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log {pattern:?} within {timeout:?}; last lines:\n{}",
                    self.name,
                    tail(&log, 40)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("while checking whether {} exited", self.name))
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit (a graceful shutdown
    /// test); returns its exit status. Kills it and fails if it does not exit in time.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("while running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it has already exited.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ({}) ---\n{}",
                self.name,
                self.log.display(),
                tail(&self.log(), 40)
            );
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_a_line_and_kills_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "echo starting; sleep 0.1; echo ready on socket >&2; exec sleep 60",
        ]);
        let mut process = Process::spawn("sh", command, dir.path().join("sh.log")).unwrap();
        let line = process
            .wait_for_log_line("ready", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(line, "ready on socket");
        let pid = process.pid();
        drop(process);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[tokio::test]
    async fn reports_an_early_exit() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo bye; exit 3"]);
        let mut process = Process::spawn("sh", command, dir.path().join("sh.log")).unwrap();
        let error = process
            .wait_for_log_line("never", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("exited"), "{error}");
        assert!(error.contains("bye"), "{error}");
    }

    #[tokio::test]
    async fn terminate_returns_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sleep");
        command.arg("60");
        let mut process = Process::spawn("sleep", command, dir.path().join("sleep.log")).unwrap();
        let status = process.terminate(Duration::from_secs(10)).await.unwrap();
        assert!(!status.success());
    }
}
