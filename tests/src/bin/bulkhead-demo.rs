//! The README's first command: a private containerd 2.1 with NRI, bulkhead registered with it,
//! and a few real containers created through the CRI API — showing what bulkhead sees.
//!
//! Run it with `tests/demo.sh` (which sets up the test bed and builds bulkhead first).

use std::time::{Duration, Instant};

use anyhow::Context;
use bulkhead_e2e::{ContainerSpec, Testbed, events_for_container, images};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    println!("==> starting a private containerd 2.1 with NRI enabled");
    let testbed = Testbed::start().await?;
    println!(
        "    containerd socket: {}",
        testbed.containerd_socket().display()
    );
    println!("    NRI socket:        {}", testbed.nri_socket().display());

    println!("==> starting bulkhead");
    let started = Instant::now();
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    println!(
        "    registered and synchronized in {} ms (bulkhead log: {})",
        started.elapsed().as_millis(),
        bulkhead.log_path().display()
    );
    if let Some(line) = testbed
        .containerd_log()
        .lines()
        .find(|line| line.contains("connected and synchronized"))
    {
        println!("    containerd says: {line}");
    }

    println!("==> running pod demo/web with two containers through CRI");
    let pod = testbed.run_pod("web", "demo").await?;
    let mut containers = Vec::new();
    for (name, image) in [
        ("app", images::BUSYBOX),
        ("sidecar", images::BUSYBOX_NONROOT),
    ] {
        let id = testbed
            .run_container(
                &pod,
                ContainerSpec::new(name, image).command(["sleep", "3600"]),
            )
            .await
            .with_context(|| format!("while running container {name}"))?;
        let (_, uid, _) = testbed.exec_sync(&id, ["id", "-u"]).await?;
        println!("    {name:8} {image:40} running as uid {}", uid.trim());
        containers.push((name, id));
    }

    println!("==> stopping and removing them");
    for (_, id) in &containers {
        testbed.stop_container(id).await?;
        testbed.remove_container(id).await?;
    }
    testbed.stop_and_remove_pod(&pod).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!("==> what bulkhead saw (from its log)");
    let log = bulkhead.log();
    for (name, _) in &containers {
        println!(
            "    {name:8} {}",
            events_for_container(&log, name).join(" -> ")
        );
    }
    println!("==> done; tearing the test bed down");
    Ok(())
}
