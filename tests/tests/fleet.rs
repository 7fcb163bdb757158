//! What an operator running bulkhead across a fleet relies on, on a real containerd: the metrics
//! endpoint counts the decisions that were made, readiness follows the NRI session (down when
//! containerd stops, up again when it is back), and a configuration change is put in effect
//! without a restart — while containers are being created, with no CRI call failing for any
//! other reason than the new policy, and a broken file leaving the chain in effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bulkhead_e2e::{ContainerSpec, Testbed, http_get, images, log_records, metrics_address};
use tonic::Code;

fn sleeper(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec::new(name, image).command(["sleep", "3600"])
}

/// The value of the sample `series` (the whole text before the value) in `/metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// Polls `/readyz` until it answers `status`; fails after `timeout`.
async fn wait_ready_status(address: &str, status: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = http_get(address, "/readyz").await?;
        if answer.0 == status {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "/readyz still answers {answer:?}, not {status}, after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_decisions_and_readiness_follows_containerd() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let mut bulkhead = testbed
        .start_bulkhead(
            testbed.bulkhead_command_with_config(
                "[[plugins]]\nbuiltin = \"image-policy\"\n[plugins.config]\ndenied-registries = [\"quay.io\"]\n\
                 [[plugins]]\nbuiltin = \"seccomp\"\n\
                 [[plugins]]\nbuiltin = \"capabilities\"\n[plugins.config]\ndeny-privileged = true\n",
            )?,
            "bulkhead",
        )
        .await?;
    let address = metrics_address(&bulkhead.log()).expect("no metrics endpoint in the log");
    assert_eq!(http_get(&address, "/healthz").await?.0, 200);
    assert_eq!(http_get(&address, "/readyz").await?.0, 200);

    let pod = testbed.run_pod("web", "default").await?;
    for name in ["one", "two"] {
        testbed
            .run_container(&pod, sleeper(name, images::BUSYBOX))
            .await?;
    }
    let quay = testbed
        .create_container(&pod, sleeper("quay", images::QUAY_BUSYBOX))
        .await
        .expect_err("a quay.io container was created");
    assert_eq!(quay.code(), Code::PermissionDenied, "{quay:?}");
    let ops = testbed.run_privileged_pod("ops", "default").await?;
    let privileged = testbed
        .run_container(&ops, sleeper("root", images::BUSYBOX).privileged(true))
        .await
        .expect_err("a privileged container ran");
    assert_eq!(privileged.code(), Code::PermissionDenied, "{privileged:?}");

    let (status, metrics) = http_get(&address, "/metrics").await?;
    assert_eq!(status, 200);
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&metrics, series), Some(value), "{series}\n{metrics}");
    };
    // Three containers were created; quay.io was refused at CreateContainer.
    expect(
        r#"bulkhead_decisions_total{point="CreateContainer",verdict="allow",action="allowed"}"#,
        3.0,
    );
    expect(
        r#"bulkhead_decisions_total{point="CreateContainer",verdict="deny",action="refused"}"#,
        1.0,
    );
    // The privileged one was decided at PostCreate and refused at its start.
    expect(
        r#"bulkhead_decisions_total{point="PostCreateContainer",verdict="allow",action="allowed"}"#,
        2.0,
    );
    expect(
        r#"bulkhead_decisions_total{point="PostCreateContainer",verdict="deny",action="refused-at-start"}"#,
        1.0,
    );
    expect(
        r#"bulkhead_plugin_calls_total{plugin="image-policy",outcome="deny"}"#,
        1.0,
    );
    expect(
        r#"bulkhead_plugin_calls_total{plugin="capabilities",outcome="deny"}"#,
        1.0,
    );
    expect(
        r#"bulkhead_plugin_calls_total{plugin="capabilities",outcome="allow"}"#,
        2.0,
    );
    expect(
        r#"bulkhead_plugin_call_seconds_count{plugin="seccomp"}"#,
        3.0,
    );
    expect("bulkhead_spec_patch_seconds_count", 2.0);
    let info = metrics
        .lines()
        .find(|line| line.starts_with("bulkhead_info{"))
        .expect("no bulkhead_info");
    assert!(info.contains(r#"runtime="containerd""#), "{info}");
    assert!(info.contains(r#"config_digest="sha256:"#), "{info}");
    let plugins = metrics
        .lines()
        .filter(|line| line.starts_with("bulkhead_plugin_info{"))
        .count();
    assert_eq!(plugins, 3, "{metrics}");

    // containerd goes away: bulkhead is no longer ready; it comes back: ready again.
    testbed.stop_containerd().await?;
    wait_ready_status(&address, 503, Duration::from_secs(10)).await?;
    assert_eq!(
        http_get(&address, "/healthz").await?.0,
        200,
        "alive meanwhile"
    );
    testbed.start_containerd().await?;
    wait_ready_status(&address, 200, Duration::from_secs(20)).await?;
    let metrics = http_get(&address, "/metrics").await?.1;
    assert!(
        sample(&metrics, "bulkhead_nri_reconnects_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(bulkhead.try_wait()?.is_none(), "bulkhead exited");
    Ok(())
}

/// The outcome of one create+start of the loop: when it began, and the refusal, if any.
struct Attempt {
    began: Instant,
    refusal: Option<tonic::Status>,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_change_takes_effect_between_containers_and_a_broken_one_changes_nothing()
-> anyhow::Result<()> {
    let testbed = Arc::new(Testbed::start().await?);
    let mut bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    let address = metrics_address(&bulkhead.log()).expect("no metrics endpoint in the log");
    let pod = testbed.run_pod("batch", "default").await?;

    // Containers are created one after another while the policy changes under them.
    let stop = Arc::new(AtomicBool::new(false));
    let creating = {
        let (testbed, pod, stop) = (testbed.clone(), pod.clone(), stop.clone());
        tokio::spawn(async move {
            let mut attempts = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let began = Instant::now();
                let result = testbed
                    .run_container(&pod, sleeper(&format!("c{n}"), images::QUAY_BUSYBOX))
                    .await;
                attempts.push(Attempt {
                    began,
                    refusal: result.err(),
                });
            }
            attempts
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let changed = Instant::now();
    testbed.write_bulkhead_config(
        "[[plugins]]\nbuiltin = \"image-policy\"\n[plugins.config]\ndenied-registries = [\"quay.io\"]\n\
         [[plugins]]\nbuiltin = \"seccomp\"\n\
         [[plugins]]\nbuiltin = \"capabilities\"\n",
    )?;
    let line = bulkhead
        .wait_for_log_line("configuration reloaded", Duration::from_secs(20))
        .await?;
    let in_effect = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let attempts = creating.await?;
    let reloaded = log_records(&line).remove(0);
    eprintln!(
        "reload: file written -> new chain in effect {} ms (bulkhead's took_ms: {}), {} containers created meanwhile",
        (in_effect - changed).as_millis(),
        reloaded["took_ms"],
        attempts.len()
    );

    for attempt in &attempts {
        if let Some(refusal) = &attempt.refusal {
            assert_eq!(refusal.code(), Code::PermissionDenied, "{refusal:?}");
            assert!(
                refusal.message().contains("image-policy") && refusal.message().contains("quay.io"),
                "a CRI call failed for another reason than the new policy: {refusal:?}"
            );
        }
    }
    let before: Vec<_> = attempts.iter().filter(|a| a.began < changed).collect();
    let after: Vec<_> = attempts.iter().filter(|a| a.began > in_effect).collect();
    assert!(
        !before.is_empty() && !after.is_empty(),
        "too few containers"
    );
    assert!(
        before.iter().all(|a| a.refusal.is_none()),
        "refused before the change"
    );
    assert!(
        after.iter().all(|a| a.refusal.is_some()),
        "a container created after the swap was not judged by the new chain"
    );

    // A broken file is refused and the chain in effect keeps deciding.
    testbed.write_bulkhead_config("plugins = [")?;
    bulkhead
        .wait_for_log_line("configuration reload failed", Duration::from_secs(20))
        .await?;
    let refused = testbed
        .run_container(&pod, sleeper("still-judged", images::QUAY_BUSYBOX))
        .await
        .expect_err("the broken config let quay.io through");
    assert!(refused.message().contains("quay.io"), "{refused:?}");
    let fine = testbed
        .run_container(&pod, sleeper("fine", images::BUSYBOX))
        .await?;
    let (code, _, _) = testbed.exec_sync(&fine, ["true"]).await?;
    assert_eq!(code, 0);
    let metrics = http_get(&address, "/metrics").await?.1;
    assert_eq!(
        sample(
            &metrics,
            r#"bulkhead_config_reloads_total{result="success"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"bulkhead_config_reloads_total{result="failure"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(http_get(&address, "/readyz").await?.0, 200);
    assert!(bulkhead.try_wait()?.is_none(), "bulkhead exited");
    Ok(())
}
