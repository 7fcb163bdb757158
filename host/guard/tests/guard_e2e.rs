//! The guard against a real containerd 2.1.9 + runc (the e2e test bed), without the bulkhead
//! daemon: the test itself plays bulkhead's part by writing the marker into a container's stored
//! spec with `Containers.Update`, as the daemon does in NRI PostCreateContainer.
//!
//! One containerd is started with `base_runtime_spec` = `bulkhead-guard print-base-spec`, then:
//! a pod sandbox runs; an unmarked workload fails to start, with the guard's reason in the CRI
//! error, and none of its process ran; a workload given its marker runs; a workload given
//! another container's marker is refused.
//!
//! Needs root and `tests/testbed/setup.sh` run once. Its own `main` (no libtest harness): the
//! test bed reads `BULKHEAD_GUARD_BASE_SPEC` from the environment, which may only be set while
//! the process has a single thread.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use bulkhead_containerd::Containerd;
use bulkhead_e2e::cri_api::{ContainerState, ContainerStatusRequest};
use bulkhead_e2e::{ContainerSpec, Testbed, images};
use bulkhead_guard::{GuardKey, MARKER_ANNOTATION, marker};

/// The `bulkhead-guard` binary cargo built for this test.
const GUARD: &str = env!("CARGO_BIN_EXE_bulkhead-guard");

fn main() -> ExitCode {
    match setup().and_then(run) {
        Ok(()) => {
            eprintln!("\ntest result: ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\ntest result: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The key and base spec a node would have, in a private directory.
struct Node {
    _dir: tempfile::TempDir,
    key: GuardKey,
}

fn setup() -> anyhow::Result<Node> {
    // In the test bed state directory, not /tmp: machines that clean /tmp would pull the base
    // spec from under a running containerd.
    let dir = tempfile::Builder::new()
        .prefix("guard-")
        .tempdir_in(bulkhead_e2e::state_dir())
        .context("while creating the key directory")?;
    let key_path = dir.path().join("guard.key");
    run_guard(&["init-key", path_str(&key_path)?])?;
    let key = GuardKey::load(&key_path)?;
    let spec = run_guard(&["print-base-spec", "--key", path_str(&key_path)?])?;
    let spec_path = dir.path().join("base-spec.json");
    std::fs::write(&spec_path, spec).context("while writing the base spec")?;
    // SAFETY: called from `main` before the tokio runtime or any other thread exists, so nothing
    // can read the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("BULKHEAD_GUARD_BASE_SPEC", &spec_path);
    }
    Ok(Node { _dir: dir, key })
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("non-UTF-8 temporary path")
}

/// Runs the guard binary as an operator would; returns its stdout.
fn run_guard(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = Command::new(GUARD)
        .args(args)
        .output()
        .with_context(|| format!("while running bulkhead-guard {args:?}"))?;
    ensure!(
        output.status.success(),
        "bulkhead-guard {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

fn run(node: Node) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while building the tokio runtime")?;
    runtime.block_on(scenarios(&node))
}

async fn scenarios(node: &Node) -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = std::fs::read_to_string(testbed.dir().join("config.toml"))?;
    ensure!(
        config.contains("base_runtime_spec = "),
        "the test bed ignored BULKHEAD_GUARD_BASE_SPEC:\n{config}"
    );
    let containerd = Containerd::connect(testbed.containerd_socket()).await?;
    let proof = testbed.dir().join("proof");
    std::fs::create_dir_all(&proof)?;

    step("a pod sandbox passes the guard");
    let pod = testbed.run_pod("guarded", "default").await?;
    let sandbox_hooks = create_runtime_hooks(&containerd, &pod.id).await?;
    eprintln!("    sandbox spec has {sandbox_hooks} createRuntime hook(s)");

    step("an unmarked workload fails to start, and none of its process runs");
    let id = testbed
        .create_container(&pod, writes_proof("unmarked", &proof))
        .await?;
    ensure!(
        create_runtime_hooks(&containerd, &id).await? == 1,
        "the workload's stored spec lacks the guard hook"
    );
    // The one way a verbatim `ctr oci spec` base spec changed containers: RLIMIT_NOFILE 1024.
    let rlimits = containerd
        .get_spec(&id)
        .await?
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone());
    ensure!(
        rlimits.is_none(),
        "the base spec gave the container rlimits CRI would not have: {rlimits:?}"
    );
    let error = match testbed.start_container(&id).await {
        Ok(()) => bail!("the unmarked container started"),
        Err(status) => status,
    };
    eprintln!(
        "    CRI StartContainer: {:?}: {}",
        error.code(),
        error.message()
    );
    ensure!(
        error.message().contains("bulkhead-guard") && error.message().contains(MARKER_ANNOTATION),
        "the CRI error does not name the guard: {}",
        error.message()
    );
    ensure!(
        !proof.join("unmarked").exists(),
        "the refused container's process ran"
    );
    let state = container_state(&testbed, &id).await?;
    eprintln!("    container state after the refusal: {state:?}");
    ensure!(
        state != ContainerState::ContainerRunning,
        "the refused container is running"
    );

    step("a workload with its marker in the stored spec runs");
    let id = testbed
        .create_container(&pod, writes_proof("marked", &proof))
        .await?;
    set_marker(&containerd, &id, &marker(&node.key, &id)).await?;
    let started = Instant::now();
    testbed
        .start_container(&id)
        .await
        .context("while starting the marked container")?;
    eprintln!("    CRI StartContainer took {:?}", started.elapsed());
    let (code, stdout, stderr) = testbed.exec_sync(&id, ["cat", "/proof/marked"]).await?;
    ensure!(
        code == 0 && stdout.trim() == "ran",
        "the marked container did not run its command: {code} {stdout} {stderr}"
    );
    ensure!(container_state(&testbed, &id).await? == ContainerState::ContainerRunning);

    step("a workload carrying another container's marker is refused");
    let id = testbed
        .create_container(&pod, writes_proof("borrowed", &proof))
        .await?;
    set_marker(&containerd, &id, &marker(&node.key, "some-other-container")).await?;
    let error = match testbed.start_container(&id).await {
        Ok(()) => bail!("a container with a borrowed marker started"),
        Err(status) => status,
    };
    ensure!(
        error.message().contains("not written by bulkhead"),
        "unexpected CRI error: {}",
        error.message()
    );
    ensure!(!proof.join("borrowed").exists());

    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}

fn step(name: &str) {
    eprintln!("test {name} ...");
}

/// A busybox container that writes `<proof>/<name>` as the very first thing it does, then
/// sleeps: the file exists iff its process ran.
fn writes_proof(name: &str, proof: &Path) -> ContainerSpec {
    ContainerSpec::new(name, images::BUSYBOX)
        .mount(&proof.to_string_lossy(), "/proof", false)
        .command([
            "sh".to_owned(),
            "-c".to_owned(),
            format!("echo ran > /proof/{name}; exec sleep 3600"),
        ])
}

/// Plays bulkhead at PostCreate: adds the marker annotation to the stored spec.
async fn set_marker(containerd: &Containerd, id: &str, value: &str) -> anyhow::Result<()> {
    let mut stored = containerd.get_stored_spec(id).await?;
    stored
        .spec
        .annotations_mut()
        .get_or_insert_with(Default::default)
        .insert(MARKER_ANNOTATION.to_owned(), value.to_owned());
    containerd.update_stored_spec(id, &stored).await?;
    Ok(())
}

/// How many `createRuntime` hooks the stored spec of `id` has.
async fn create_runtime_hooks(containerd: &Containerd, id: &str) -> anyhow::Result<usize> {
    let spec = containerd.get_spec(id).await?;
    Ok(spec
        .hooks()
        .as_ref()
        .and_then(|hooks| hooks.create_runtime().as_ref())
        .map_or(0, Vec::len))
}

async fn container_state(testbed: &Testbed, id: &str) -> anyhow::Result<ContainerState> {
    let status = testbed
        .cri()
        .container_status(ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .context("no container status")?;
    Ok(ContainerState::try_from(status.state).unwrap_or(ContainerState::ContainerUnknown))
}
