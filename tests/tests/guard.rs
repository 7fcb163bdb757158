//! The fail-closed guard with the real daemon: containerd's base runtime spec runs the
//! `bulkhead-guard` hook for every container; bulkhead marks the containers it checked at
//! PostCreateContainer, so they start; once bulkhead is gone, a new container is refused
//! before any of its process runs — containerd 2.1 alone would have started it unchecked.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use bulkhead_e2e::{ContainerSpec, Testbed, bulkhead_binary, images, state_dir};

fn guard(args: &[&str]) -> anyhow::Result<String> {
    let binary = bulkhead_binary()?.with_file_name("bulkhead-guard");
    let output = Command::new(&binary)
        .args(args)
        .output()
        .with_context(|| format!("while running {}", binary.display()))?;
    ensure!(
        output.status.success(),
        "bulkhead-guard {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_start_only_while_bulkhead_marks_them() -> anyhow::Result<()> {
    // The node's key and base spec, outside the test bed so they outlive containerd.
    let node = tempfile::Builder::new()
        .prefix("guard-")
        .tempdir_in(state_dir())?;
    let key = node.path().join("guard.key");
    let key_arg = key.display().to_string();
    guard(&["init-key", &key_arg])?;
    let spec = node.path().join("base-spec.json");
    std::fs::write(&spec, guard(&["print-base-spec", "--key", &key_arg])?)?;

    let testbed = Testbed::start_with_base_spec(Some(&spec)).await?;
    let config = format!("[guard]\nkey-file = {key_arg:?}\n");
    let mut bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("guarded", "default").await?;
    let spec = |name: &str| ContainerSpec::new(name, images::BUSYBOX).command(["sleep", "3600"]);

    let checked = testbed.run_container(&pod, spec("checked")).await?;
    let (code, _, _) = testbed.exec_sync(&checked, ["true"]).await?;
    assert_eq!(code, 0, "a container bulkhead checked did not run");

    bulkhead.terminate(Duration::from_secs(10)).await?;
    let refused = testbed
        .run_container(&pod, spec("unchecked"))
        .await
        .expect_err("a container started while bulkhead was down");
    assert!(
        refused.message().contains("bulkhead-guard"),
        "the refusal does not come from the guard: {refused:?}"
    );
    Ok(())
}
