//! The Kubernetes deployment in `deploy/kubernetes`, run on the test bed's real containerd the
//! way a kubelet runs the DaemonSet's pod: bulkhead, as a container of the image
//! `deploy/image/build.sh` makes, registers with containerd through the manifest's host mounts,
//! answers its probes, then hardens and refuses other pods' containers.
//!
//! Everything comes from the manifests (image, command, privileged flag, mounts and their
//! propagation, resources, namespace, the ConfigMap's bulkhead.toml) except what has to be the
//! test bed's: where containerd's sockets are and the metrics port, so a broken manifest breaks
//! the test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_e2e::cri_api::{ContainerState, StopContainerRequest};
use bulkhead_e2e::kube::{ConfigMap, Node, PodTemplate};
use bulkhead_e2e::{
    ContainerSpec, Pod, Testbed, bulkhead_binary, http_get, images, log_records, mounts_under,
    status_field,
};
use serde_json::Value;
use tonic::Code;

/// The DaemonSet's container that runs bulkhead.
const CONTAINER: &str = "bulkhead";
/// The config file the ConfigMap carries.
const CONFIG_FILE: &str = "bulkhead.toml";
/// Where containerd's sockets are on a node, as the ConfigMap's bulkhead.toml names them.
const NODE_NRI_SOCKET: &str = "/var/run/nri/nri.sock";
const NODE_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

/// One file of `deploy/kubernetes`, parsed.
fn manifest(file: &str) -> anyhow::Result<Value> {
    let path = repo().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("while reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("while parsing {}", path.display()))
}

fn daemonset() -> anyhow::Result<PodTemplate> {
    PodTemplate::of_workload(&manifest("daemonset.yaml")?)
}

/// The ConfigMap's bulkhead.toml with its metrics address moved from the probes' port to
/// `port`, the one change the test makes to it. It must listen on every address: with the host
/// network, a kubelet probes the node's IP.
fn config_map_on_port(probe_port: u16, port: u16) -> anyhow::Result<ConfigMap> {
    let mut config_map = ConfigMap::from_object(&manifest("configmap.yaml")?)?;
    let toml = config_map
        .data
        .get_mut(CONFIG_FILE)
        .with_context(|| format!("the ConfigMap has no {CONFIG_FILE}"))?;
    let listen = format!("address = \"0.0.0.0:{probe_port}\"");
    if toml.matches(&listen).count() != 1 {
        bail!("{CONFIG_FILE} does not say {listen} once, for the probes' port:\n{toml}");
    }
    *toml = toml.replace(&listen, &format!("address = \"0.0.0.0:{port}\""));
    Ok(config_map)
}

/// A TCP port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("0.0.0.0", 0))?
        .local_addr()?
        .port())
}

/// Builds the image with `deploy/image/build.sh` from the bulkhead binary under test, named as
/// the manifest names it, and imports it into the test bed's containerd.
async fn build_and_import_image(testbed: &Testbed, name: &str) -> anyhow::Result<()> {
    let out = testbed.dir().join("image");
    let build = tokio::process::Command::new("bash")
        .arg(repo().join("deploy/image/build.sh"))
        .arg("--binary")
        .arg(bulkhead_binary()?)
        .arg("--name")
        .arg(name)
        .arg("--out")
        .arg(&out)
        .output()
        .await
        .context("while running deploy/image/build.sh")?;
    if !build.status.success() {
        bail!(
            "deploy/image/build.sh failed ({}):\n{}",
            build.status,
            String::from_utf8_lossy(&build.stderr)
        );
    }
    eprintln!("{}", String::from_utf8_lossy(&build.stdout));
    let import = testbed
        .ctr()
        .args(["images", "import", "--platform", "linux/amd64"])
        .arg(out.join("bulkhead.oci.tar"))
        .output()?;
    if !import.status.success() {
        bail!(
            "ctr images import failed: {}",
            String::from_utf8_lossy(&import.stderr)
        );
    }
    Ok(())
}

/// What a container wrote, from its CRI log file (`<time> <stream> <tag> <line>` per line).
fn container_log(pod: &Pod, name: &str) -> String {
    let path = Path::new(&pod.config.log_directory).join(format!("{name}.log"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.splitn(4, ' ').nth(3))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints the end of bulkhead's container log when the test fails.
struct LogOnFailure<'a> {
    pod: &'a Pod,
}

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = container_log(self.pod, CONTAINER);
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of bulkhead's container log ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// The container's state and exit code.
async fn container_state(testbed: &Testbed, id: &str) -> anyhow::Result<(ContainerState, i32)> {
    let status = testbed.container_status(id).await?;
    Ok((status.state(), status.exit_code))
}

/// Waits until containerd logs bulkhead registered and synchronized; fails at once if the
/// container exits first.
async fn wait_until_registered(testbed: &Testbed, pod: &Pod, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let connected = testbed.containerd().plugin_connected_log();
    while !testbed.containerd_log().contains(connected) {
        let (state, exit_code) = container_state(testbed, id).await?;
        if state == ContainerState::ContainerExited {
            bail!(
                "bulkhead's container exited ({exit_code}) without registering:\n{}",
                container_log(pod, CONTAINER)
            );
        }
        if Instant::now() >= deadline {
            bail!("containerd did not log bulkhead {connected:?} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Polls `GET path` on `port` until it answers 200, as a kubelet's probe would; the error says
/// what it answered last.
async fn wait_for_http_ok(port: u16, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = http_get(&format!("127.0.0.1:{port}"), path)
            .await
            .map(|(status, _)| status);
        if matches!(answer, Ok(200)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "GET {path} on port {port} did not answer 200 within 20 s; last answer: {answer:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// bulkhead's audit record (JSON lines on its standard output) of container `name` at `event`,
/// waiting up to 3 s: records are written after containerd got its answer.
async fn audit_record(pod: &Pod, name: &str, event: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found = log_records(&container_log(pod, CONTAINER))
            .into_iter()
            .find(|r| r["container"]["name"] == name && r["event"] == event);
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// bulkhead's container of the DaemonSet's pod, running on the test bed.
struct RunningDaemonSet {
    node: Node,
    pod: Pod,
    id: String,
    /// The metrics port, in place of the manifest's.
    port: u16,
}

/// Builds and imports the image, lays out the node, and starts the DaemonSet's pod as a
/// kubelet would on a node where bulkhead is not running yet.
async fn run_daemonset(
    testbed: &Testbed,
    template: &PodTemplate,
) -> anyhow::Result<RunningDaemonSet> {
    let image = template.container(CONTAINER)?["image"]
        .as_str()
        .context("no image")?
        .to_string();
    build_and_import_image(testbed, &image).await?;
    let node = Node::create(
        testbed,
        &[
            (NODE_NRI_SOCKET, testbed.nri_socket()),
            (NODE_CONTAINERD_SOCKET, testbed.containerd_socket()),
        ],
    )?;
    let (_, probe_port) = template.http_probe(CONTAINER, "readinessProbe")?;
    let port = free_port()?;
    node.add_config_map(&config_map_on_port(probe_port, port)?)?;
    let pod = testbed.run_pod_from_template(template).await?;
    let spec = template.container_spec(CONTAINER, &node)?;
    let id = testbed.run_container(&pod, spec).await?;
    Ok(RunningDaemonSet {
        node,
        pod,
        id,
        port,
    })
}

/// An unconfined busybox in `default` runs with a seccomp filter and without NET_RAW, and
/// bulkhead's audit record (in its container log) says the patch was verified.
async fn assert_a_workload_is_hardened(testbed: &Testbed, bulkhead: &Pod) -> anyhow::Result<()> {
    let web = testbed.run_pod("web", "default").await?;
    let app = ContainerSpec::new("app", images::BUSYBOX).command(["sleep", "3600"]);
    let app = testbed.run_container(&web, app).await?;
    let (_, status, _) = testbed
        .exec_sync(&app, ["cat", "/proc/self/status"])
        .await?;
    assert_eq!(status_field(&status, "Seccomp:"), "2", "{status}");
    let cap_eff = u64::from_str_radix(&status_field(&status, "CapEff:"), 16)?;
    assert_eq!(
        cap_eff & (1 << 13),
        0,
        "CAP_NET_RAW is effective: {cap_eff:#x}"
    );
    let record = audit_record(bulkhead, "app", "PostCreateContainer")
        .await
        .context("no PostCreate audit record for app in bulkhead's container log")?;
    assert_eq!(record["applied"]["verified"], true, "{record}");
    testbed.stop_and_remove_pod(&web).await?;
    Ok(())
}

/// A privileged container in `default` is refused before any process of it runs.
async fn assert_a_privileged_container_is_refused(testbed: &Testbed) -> anyhow::Result<()> {
    let ops = testbed.run_privileged_pod("ops", "default").await?;
    let root = ContainerSpec::new("root", images::BUSYBOX)
        .command(["sleep", "3600"])
        .privileged(true);
    let refused = testbed
        .run_container(&ops, root)
        .await
        .expect_err("a privileged container ran in namespace default");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("capabilities"),
        "{}",
        refused.message()
    );
    testbed.stop_and_remove_pod(&ops).await?;
    Ok(())
}

/// Stops bulkhead as a kubelet deleting its pod does (SIGTERM, the manifest's grace period),
/// checks that it exited cleanly, and removes the container and the pod.
async fn delete_daemonset_pod(
    testbed: &Testbed,
    template: &PodTemplate,
    running: &RunningDaemonSet,
) -> anyhow::Result<()> {
    testbed
        .cri()
        .stop_container(StopContainerRequest {
            container_id: running.id.clone(),
            timeout: template.termination_grace_seconds(),
        })
        .await?;
    let (state, exit_code) = container_state(testbed, &running.id).await?;
    assert_eq!(state, ContainerState::ContainerExited);
    assert_eq!(exit_code, 0, "bulkhead did not stop cleanly on SIGTERM");
    testbed.remove_container(&running.id).await?;
    testbed.stop_and_remove_pod(&running.pod).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemonset_s_pod_registers_with_containerd_and_enforces_the_baseline()
-> anyhow::Result<()> {
    let template = daemonset()?;
    let (ready_path, probe_port) = template.http_probe(CONTAINER, "readinessProbe")?;
    let (live_path, live_port) = template.http_probe(CONTAINER, "livenessProbe")?;
    assert_eq!(live_port, probe_port, "the probes use one metrics port");
    let testbed = Testbed::start().await?;

    let running = run_daemonset(&testbed, &template).await?;
    let _log_on_failure = LogOnFailure { pod: &running.pod };
    wait_until_registered(&testbed, &running.pod, &running.id).await?;
    assert!(
        container_log(&running.pod, CONTAINER).contains("connected and synchronized"),
        "bulkhead's own log does not say it registered"
    );
    wait_for_http_ok(running.port, &ready_path).await?;
    assert_eq!(
        http_get(&format!("127.0.0.1:{}", running.port), &live_path)
            .await?
            .0,
        200
    );
    // Its secrets tmpfs, mounted inside the container, reached the node (Bidirectional), where
    // containerd bind-mounts secrets from.
    let runtime_dir = running.node.host_path("/run/bulkhead");
    let mounts = mounts_under(&runtime_dir)?;
    assert!(
        mounts.contains(&runtime_dir.join("secrets")),
        "bulkhead's secrets tmpfs is not visible on the node: {mounts:?}"
    );

    assert_a_workload_is_hardened(&testbed, &running.pod).await?;
    assert_a_privileged_container_is_refused(&testbed).await?;
    delete_daemonset_pod(&testbed, &template, &running).await
}

/// The ConfigMap never lets bulkhead refuse its own (privileged) container, and exempts
/// nothing else: judged offline by `bulkhead eval` with the ConfigMap's file.
#[test]
fn the_config_map_exempts_bulkhead_s_own_pods_and_no_others() -> anyhow::Result<()> {
    let template = daemonset()?;
    let (_, probe_port) = template.http_probe(CONTAINER, "readinessProbe")?;
    let config_map = config_map_on_port(probe_port, probe_port)?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join(CONFIG_FILE);
    std::fs::write(&config, &config_map.data[CONFIG_FILE])?;
    let verdict_in = |namespace: &str| -> anyhow::Result<Option<i32>> {
        let view = serde_json::json!({
            "event": "post-create-container",
            "name": CONTAINER,
            "privileged": template.privileged(),
            "pod": {"name": template.name(), "namespace": namespace},
        });
        let view_path = dir.path().join(format!("{namespace}.json"));
        std::fs::write(&view_path, view.to_string())?;
        let output = std::process::Command::new(bulkhead_binary()?)
            .arg("eval")
            .arg("--config")
            .arg(&config)
            .arg("--container")
            .arg(&view_path)
            .output()?;
        if output.status.code() == Some(1) {
            bail!(
                "bulkhead eval could not load the ConfigMap's {CONFIG_FILE}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output.status.code())
    };
    assert!(template.privileged(), "bulkhead's pod is not privileged");
    assert_eq!(
        verdict_in(template.namespace())?,
        Some(0),
        "refused in its own namespace"
    );
    assert_eq!(
        verdict_in("default")?,
        Some(2),
        "a privileged container is allowed in default"
    );
    Ok(())
}
