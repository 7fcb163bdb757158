//! bulkhead speaks NRI to a real containerd 2.1: it registers, is synchronized with what already
//! runs, sees the lifecycle events it acts on — and only those: every subscribed event is a
//! round trip inside containerd's node-wide lock — and re-registers by itself after containerd
//! restarts.

use std::time::{Duration, Instant};

use bulkhead_e2e::{ContainerSpec, Testbed, events_for_container, images, log_records};

#[tokio::test(flavor = "multi_thread")]
async fn registers_synchronizes_and_sees_the_whole_lifecycle() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;

    // A pod and a container that exist before bulkhead starts.
    let pod = testbed.run_pod("before", "default").await?;
    let existing = testbed
        .run_container(
            &pod,
            ContainerSpec::new("existing", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;

    let started = Instant::now();
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    let registration_time = started.elapsed();
    eprintln!("bulkhead registered and synchronized {registration_time:?} after spawn");
    // containerd logs its side just after bulkhead's answer to Synchronize.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !testbed
        .containerd_log()
        .contains(testbed.containerd().plugin_connected_log())
    {
        assert!(
            Instant::now() < deadline,
            "containerd did not log the plugin as connected and synchronized"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Synchronize carried the pod and container created before bulkhead.
    let records = log_records(&bulkhead.log());
    let existing_seen = records
        .iter()
        .any(|r| r["message"] == "existing container" && r["container.id"] == existing.as_str());
    assert!(
        existing_seen,
        "Synchronize did not list {existing}:\n{}",
        bulkhead.log()
    );
    let summary = records
        .iter()
        .find(|r| r["message"] == "synchronized with the runtime")
        .expect("no synchronize summary");
    assert!(summary["pods"].as_u64() >= Some(1), "{summary}");
    assert!(summary["containers"].as_u64() >= Some(1), "{summary}");

    // A new container through CRI: every event bulkhead acts on reaches it.
    let app = testbed
        .run_container(
            &pod,
            ContainerSpec::new("app", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    let (code, out, _) = testbed.exec_sync(&app, ["echo", "alive"]).await?;
    assert_eq!((code, out.trim()), (0, "alive"));
    testbed.stop_container(&app).await?;
    testbed.remove_container(&app).await?;

    let expected = [
        "CreateContainer",
        "PostCreateContainer",
        "StartContainer",
        "RemoveContainer",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = events_for_container(&bulkhead.log(), "app");
        if expected.iter().all(|e| seen.iter().any(|s| s == e)) {
            // And in lifecycle order.
            let order: Vec<_> = expected
                .iter()
                .map(|e| seen.iter().position(|s| s == e).unwrap_or(usize::MAX))
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "out of order: {seen:?}"
            );
            // The events it only would acknowledge are not subscribed, so containerd never
            // makes those calls.
            for unwanted in ["PostStartContainer", "StopContainer"] {
                assert!(
                    !seen.iter().any(|s| s == unwanted),
                    "{unwanted} was delivered: {seen:?}"
                );
            }
            break;
        }
        assert!(Instant::now() < deadline, "missing events, saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The logged event carries the pod's namespace and name and the container id.
    let create = log_records(&bulkhead.log())
        .into_iter()
        .find(|r| {
            r["message"] == "event"
                && r["span"]["event"] == "CreateContainer"
                && r["span"]["container.name"] == "app"
        })
        .expect("no CreateContainer record");
    assert_eq!(create["span"]["pod.namespace"], "default");
    assert_eq!(create["span"]["pod.name"], "before");
    assert_eq!(create["span"]["container.id"], app.as_str());

    assert!(
        !testbed.containerd_log().contains("closing plugin"),
        "containerd disconnected bulkhead"
    );
    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn re_registers_by_itself_after_containerd_restarts() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let mut bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;

    testbed.restart_containerd().await?;

    // A second "connected and synchronized" line, from the new session.
    let deadline = Instant::now() + Duration::from_secs(15);
    while bulkhead.log().matches("connected and synchronized").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "bulkhead did not re-register:\n{}",
            bulkhead.log()
        );
        assert!(
            bulkhead.try_wait()?.is_none(),
            "bulkhead exited:\n{}",
            bulkhead.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And it keeps seeing events on the new connection.
    let pod = testbed.run_pod("after", "default").await?;
    testbed
        .run_container(
            &pod,
            ContainerSpec::new("after-restart", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    let seen = events_for_container(&bulkhead.log(), "after-restart");
    assert!(seen.iter().any(|e| e == "StartContainer"), "saw {seen:?}");
    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_that_is_not_there_is_an_error_naming_path_and_flag() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let missing = testbed.dir().join("no-such.sock");
    let mut command = testbed.bulkhead_command()?;
    command.arg("--nri-socket").arg(&missing);
    let output = tokio::process::Command::from(command).output().await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains("--nri-socket"), "{stderr}");

    // The containerd state directory exists but is no socket.
    let mut command = testbed.bulkhead_command()?;
    command.arg("--containerd-socket").arg(testbed.dir());
    let output = tokio::process::Command::from(command).output().await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not a unix socket"), "{stderr}");
    assert!(stderr.contains("--containerd-socket"), "{stderr}");
    Ok(())
}
