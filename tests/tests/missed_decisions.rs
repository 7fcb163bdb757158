//! Containers bulkhead could not check (created while it was away) against a real containerd:
//! an audit-only chain lets them start and records that they were not checked; the same chain
//! enforcing refuses the start and records the refusal. Audit mode never refuses.

use std::time::Duration;

use bulkhead_e2e::{ContainerSpec, Testbed, images};
use serde_json::Value;
use tonic::Code;

fn observer(mode: &str) -> String {
    bulkhead_e2e::plugin_entry(
        bulkhead_test_plugins::SCRIPTED,
        &format!("mode = \"{mode}\""),
        "name = \"observer\"\ndrop = [\"CAP_CHOWN\"]",
    )
}

fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(name, images::BUSYBOX).command(["sleep", "3600"])
}

/// The StartContainer audit record of container `name`.
fn start_record(testbed: &Testbed, name: &str) -> Value {
    testbed
        .audit_records_for(name, "StartContainer")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no StartContainer record for {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_created_while_bulkhead_was_away_starts_in_audit_mode_only()
-> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let audit_only = observer("audit");
    let mut bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&audit_only)?, "first")
        .await?;
    let pod = testbed.run_pod("away", "default").await?;

    // Audit only: created unseen, started after bulkhead is back.
    bulkhead.terminate(Duration::from_secs(10)).await?;
    let unseen = testbed.create_container(&pod, sleeper("unseen")).await?;
    let mut bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&audit_only)?, "second")
        .await?;
    testbed.start_container(&unseen).await?;
    let (code, _, _) = testbed.exec_sync(&unseen, ["true"]).await?;
    assert_eq!(code, 0, "the container does not run");
    let record = start_record(&testbed, "unseen");
    assert_eq!(record["applied"]["action"], "allowed", "{record}");
    assert!(
        record["applied"]["would-refuse"]
            .as_str()
            .is_some_and(|r| r.contains("creation was not seen")),
        "{record}"
    );

    // The same chain enforcing: refused at start, and the record says so.
    bulkhead.terminate(Duration::from_secs(10)).await?;
    let refused = testbed.create_container(&pod, sleeper("refused")).await?;
    let _bulkhead = testbed
        .start_bulkhead(
            testbed.bulkhead_command_with_config(&observer("enforce"))?,
            "third",
        )
        .await?;
    let error = testbed.start_container(&refused).await.unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
    assert!(
        error.message().contains("creation was not seen"),
        "{}",
        error.message()
    );
    let record = start_record(&testbed, "refused");
    assert_eq!(record["applied"]["action"], "refused", "{record}");
    assert!(
        record["result"]["verdict"]["deny"]
            .as_str()
            .is_some_and(|r| r.contains("creation was not seen")),
        "{record}"
    );
    Ok(())
}
