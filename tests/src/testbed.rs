//! [`Testbed`]: one private containerd per test, started and torn down by
//! `tests/testbed/containerd.sh`, with a CRI client connected over its unix socket; and
//! [`Containerd`], which of the test bed's containerd releases it runs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::Process;

/// The test bed state directory: `$BULKHEAD_TESTBED`, or `<repo>/.testbed`.
///
/// `tests/testbed/setup.sh` fills it (containerd, images); every [`Testbed`] lives in a
/// subdirectory `run/<random>` of it.
pub fn state_dir() -> PathBuf {
    match std::env::var_os("BULKHEAD_TESTBED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_dir().join(".testbed"),
    }
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn script() -> PathBuf {
    repo_dir().join("tests/testbed/containerd.sh")
}

/// The containerd releases the test bed has, each unpacked privately by
/// `tests/testbed/setup.sh`. A [`Testbed`] runs the one `$BULKHEAD_CONTAINERD` names.
///
/// 2.1 is the release bulkhead targets and the default; 1.7 is still common on managed
/// Kubernetes nodes, so the baseline and decision e2e tests run against it too (`tests/run.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containerd {
    /// containerd 2.1 from Debian unstable (NRI API v0.8, config version 3).
    V2_1,
    /// containerd 1.7 from Debian trixie (config version 2; NRI is off unless the config turns
    /// it on, which the test bed's does).
    V1_7,
}

impl Containerd {
    /// The release `$BULKHEAD_CONTAINERD` asks for: `2.1` (also when unset or empty) or `1.7`.
    pub fn from_env() -> anyhow::Result<Containerd> {
        match std::env::var("BULKHEAD_CONTAINERD") {
            Err(std::env::VarError::NotPresent) => Ok(Containerd::V2_1),
            Ok(value) => match value.as_str() {
                "" | "2.1" => Ok(Containerd::V2_1),
                "1.7" => Ok(Containerd::V1_7),
                other => bail!(
                    "BULKHEAD_CONTAINERD={other:?}: the test bed has containerd 2.1 (the default) and 1.7"
                ),
            },
            Err(error) => bail!("BULKHEAD_CONTAINERD: {error}"),
        }
    }

    /// The series as `containerd.sh` and people spell it: `2.1` or `1.7`.
    pub fn series(self) -> &'static str {
        match self {
            Containerd::V2_1 => "2.1",
            Containerd::V1_7 => "1.7",
        }
    }

    /// Where `setup.sh` unpacked this release's binaries (`containerd`, `ctr`, the runc shim).
    pub fn bin_dir(self) -> PathBuf {
        let prefix = match self {
            Containerd::V2_1 => "containerd",
            Containerd::V1_7 => "containerd-1.7",
        };
        state_dir().join(prefix).join("usr/bin")
    }

    /// What this containerd logs once an external NRI plugin has registered and been
    /// synchronized, e.g. to wait in its log until a plugin's calls go through it: 2.x says
    /// `plugin "50-bulkhead" connected and synchronized`, 1.7 only `plugin "50-bulkhead"
    /// connected` (at the same point, after the synchronization). The text is quoted as it
    /// appears in the log, where the plugin name's quotes are escaped.
    pub fn plugin_connected_log(self) -> &'static str {
        match self {
            Containerd::V2_1 => "connected and synchronized",
            Containerd::V1_7 => "\\\" connected\"",
        }
    }
}

impl fmt::Display for Containerd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "containerd {}", self.series())
    }
}

/// Every mount point at or below `dir`, as listed in `/proc/self/mountinfo`.
///
/// Tests use it to prove that a torn-down test bed left no overlay or shm mount behind.
pub fn mounts_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("while reading /proc/self/mountinfo")?;
    Ok(mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` (three octal digits).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A private containerd (2.1, or 1.7 with `BULKHEAD_CONTAINERD=1.7`; see [`Containerd`]) with
/// NRI enabled, CRI on, runc and the test images imported.
///
/// Each instance has its own directory (root, state, sockets, logs), so tests run in parallel.
/// Dropping it runs `containerd.sh down`: every pod and container is killed, containerd stops,
/// every mount under the directory is unmounted and the directory is removed. Set
/// `BULKHEAD_KEEP_TESTBED=1` to keep a failed test's containerd running for inspection.
#[derive(Debug)]
pub struct Testbed {
    dir: PathBuf,
    containerd: Containerd,
    containerd_socket: PathBuf,
    nri_socket: PathBuf,
    containerd_log: PathBuf,
    cgroup_parent: String,
    channel: Channel,
}

impl Testbed {
    /// Starts a fresh containerd (about one second, including the image import), the release
    /// `$BULKHEAD_CONTAINERD` names ([`Containerd::from_env`]).
    ///
    /// Fails with a pointer to `tests/testbed/setup.sh` if the test bed was never set up, and
    /// when not running as root (containerd and runc need it).
    pub async fn start() -> anyhow::Result<Testbed> {
        Testbed::start_with_base_spec(None).await
    }

    /// Like [`Testbed::start`], with containerd's runc runtime starting every CRI container's
    /// spec from `base_spec` (e.g. the fail-closed guard's, from `bulkhead-guard
    /// print-base-spec`).
    pub async fn start_with_base_spec(base_spec: Option<&Path>) -> anyhow::Result<Testbed> {
        let containerd = Containerd::from_env()?;
        let state = state_dir();
        if !containerd.bin_dir().join("containerd").exists() || !state.join("images").is_dir() {
            bail!(
                "the e2e test bed ({containerd}) is not set up in {}: run `tests/testbed/setup.sh` (as root) first",
                state.display()
            );
        }
        let run = state.join("run");
        std::fs::create_dir_all(&run)
            .with_context(|| format!("while creating {}", run.display()))?;
        // Short random names: unix socket paths must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("t")
            .rand_bytes(6)
            .tempdir_in(&run)
            .with_context(|| format!("while creating a test bed directory in {}", run.display()))?
            .keep();

        let mut up = tokio::process::Command::new("bash");
        up.arg(script())
            .arg("up")
            .arg(&dir)
            .env("BULKHEAD_CONTAINERD", containerd.series());
        if let Some(spec) = base_spec {
            up.env("BULKHEAD_GUARD_BASE_SPEC", spec);
        }
        let output = up
            .output()
            .await
            .context("while running tests/testbed/containerd.sh up")?;
        if !output.status.success() {
            let _ = Command::new("bash")
                .arg(script())
                .arg("down")
                .arg(&dir)
                .status();
            bail!(
                "tests/testbed/containerd.sh up {} failed ({}):\n{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = |key: &str| -> anyhow::Result<String> {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
                .with_context(|| format!("containerd.sh up printed no {key}= line:\n{stdout}"))
        };
        let containerd_socket = PathBuf::from(value("CONTAINERD_SOCKET")?);
        let channel = connect(&containerd_socket).await?;
        Ok(Testbed {
            nri_socket: value("NRI_SOCKET")?.into(),
            containerd_log: value("CONTAINERD_LOG")?.into(),
            cgroup_parent: value("CGROUP_PARENT")?,
            containerd,
            containerd_socket,
            dir,
            channel,
        })
    }

    /// The directory holding this containerd's config, root, state, sockets and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which containerd release this test bed runs.
    pub fn containerd(&self) -> Containerd {
        self.containerd
    }

    /// containerd's gRPC socket (CRI, Containers, Images, Content services).
    pub fn containerd_socket(&self) -> &Path {
        &self.containerd_socket
    }

    /// The socket where containerd accepts external NRI plugins (bulkhead connects here).
    pub fn nri_socket(&self) -> &Path {
        &self.nri_socket
    }

    /// Path of containerd's log (debug level).
    pub fn containerd_log_path(&self) -> &Path {
        &self.containerd_log
    }

    /// The cgroup parent of the pods [`Testbed::run_pod`] makes (one per test bed, removed on
    /// teardown), e.g. `/bulkhead-tAbC123`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// containerd's log so far (debug level), e.g. to assert what it said about a plugin.
    pub fn containerd_log(&self) -> String {
        std::fs::read_to_string(&self.containerd_log).unwrap_or_default()
    }

    /// A CRI runtime client (pods, containers, exec) on this containerd.
    ///
    /// Clients are cheap clones of one channel; it reconnects by itself after
    /// [`Testbed::restart_containerd`].
    pub fn cri(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    /// A CRI image client on this containerd (e.g. to look up an image's digest).
    pub fn cri_images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// The raw gRPC channel to containerd's socket, for other containerd API clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `ctr` command from the unpacked containerd, bound to this instance and namespace
    /// `k8s.io`, for debugging and for assertions the CRI cannot express.
    pub fn ctr(&self) -> Command {
        let mut command = Command::new(self.containerd.bin_dir().join("ctr"));
        command
            .arg("--address")
            .arg(&self.containerd_socket)
            .arg("--namespace")
            .arg("k8s.io");
        command
    }

    /// Spawns `command` as a [`Process`] whose output goes to `<name>.log` in the test bed
    /// directory, typically the bulkhead daemon pointed at [`Testbed::nri_socket`] and
    /// [`Testbed::containerd_socket`]. Declare it after the test bed so it is killed first.
    pub fn spawn(&self, name: &str, command: Command) -> anyhow::Result<Process> {
        Process::spawn(name, command, self.dir.join(format!("{name}.log")))
    }

    /// Stops containerd with SIGTERM and starts it again with the same configuration.
    ///
    /// Running containers and their shims survive, as on a real node. NRI plugins see their
    /// connection close (containerd never says goodbye) and must reconnect to
    /// [`Testbed::nri_socket`]. Returns once containerd answers on its socket again.
    pub async fn restart_containerd(&self) -> anyhow::Result<()> {
        self.containerd_script("restart").await
    }

    /// Stops containerd with SIGTERM and leaves it stopped (containers and shims survive);
    /// [`Testbed::start_containerd`] brings it back.
    pub async fn stop_containerd(&self) -> anyhow::Result<()> {
        self.containerd_script("stop").await
    }

    /// Starts a containerd stopped by [`Testbed::stop_containerd`]; returns once it answers.
    pub async fn start_containerd(&self) -> anyhow::Result<()> {
        self.containerd_script("start").await
    }

    async fn containerd_script(&self, action: &str) -> anyhow::Result<()> {
        let output = tokio::process::Command::new("bash")
            .arg(script())
            .arg(action)
            .arg(&self.dir)
            .output()
            .await
            .with_context(|| format!("while running tests/testbed/containerd.sh {action}"))?;
        if !output.status.success() {
            bail!(
                "tests/testbed/containerd.sh {action} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.containerd_log.display(),
                tail(&self.containerd_log(), 40)
            );
        }
        if std::env::var_os("BULKHEAD_KEEP_TESTBED").is_some_and(|v| v == "1") {
            eprintln!(
                "BULKHEAD_KEEP_TESTBED=1: leaving containerd running in {}; clean up with \
                 `tests/testbed/containerd.sh down {}`",
                self.dir.display(),
                self.dir.display()
            );
            return;
        }
        match Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .output()
        {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "tests/testbed/containerd.sh down {} failed ({}):\n{}",
                self.dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("could not run tests/testbed/containerd.sh down: {error}"),
        }
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A gRPC channel over a unix socket. The URI is a placeholder: the connector ignores it.
async fn connect(socket: &Path) -> anyhow::Result<Channel> {
    let socket = socket.to_path_buf();
    Endpoint::try_from("http://containerd.invalid")?
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
        .context("while connecting to containerd's socket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/odd\04"), r"/odd\04");
    }

    #[test]
    fn each_containerd_release_has_its_own_prefix() {
        assert!(Containerd::V2_1.bin_dir().ends_with("containerd/usr/bin"));
        assert!(
            Containerd::V1_7
                .bin_dir()
                .ends_with("containerd-1.7/usr/bin")
        );
        assert_eq!(Containerd::V1_7.to_string(), "containerd 1.7");
    }

    #[test]
    fn the_connected_line_of_one_release_is_not_the_other_s() {
        // Lines as each release writes them (logrus text format).
        let v2_1 = r#"level=info msg="plugin \"50-bulkhead\" connected and synchronized""#;
        let v1_7 = r#"level=info msg="plugin \"50-bulkhead\" connected""#;
        let shim = r#"level=info msg="cleaning up after shim disconnected""#;
        assert!(v2_1.contains(Containerd::V2_1.plugin_connected_log()));
        assert!(v1_7.contains(Containerd::V1_7.plugin_connected_log()));
        assert!(!shim.contains(Containerd::V1_7.plugin_connected_log()));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
