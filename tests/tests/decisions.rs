//! Decisions take effect on real containers (containerd 2.1.9, runc, CRI): denials reach the
//! CRI caller, hardening shows inside the container, failure policies and audit mode behave,
//! conflicts are reported — and every decision lands in the audit log.
//!
//! The plugin is `bulkhead-test-plugin-scripted`, whose name, decision points and answer come
//! from its `[plugins.config]` table.

use bulkhead_e2e::{ContainerSpec, Pod, Testbed, images, status_field};
use serde_json::Value;
use tonic::Code;

/// A `[[plugins]]` entry for the scripted plugin: `settings` are bulkhead's, `config` the plugin's.
fn scripted(settings: &str, config: &str) -> String {
    bulkhead_e2e::plugin_entry(bulkhead_test_plugins::SCRIPTED, settings, config)
}

fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(name, images::BUSYBOX).command(["sleep", "3600"])
}

/// The audit records for container `name` at `event`.
fn audited(testbed: &Testbed, name: &str, event: &str) -> Vec<Value> {
    testbed.audit_records_for(name, event)
}

/// Whether the container's process ever started, per CRI.
async fn ever_started(testbed: &Testbed, id: &str) -> anyhow::Result<bool> {
    Ok(testbed.container_status(id).await?.started_at != 0)
}

async fn start_with(
    testbed: &Testbed,
    config: &str,
) -> anyhow::Result<(bulkhead_e2e::Process, Pod)> {
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("policy", "default").await?;
    Ok((bulkhead, pod))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_reaches_the_cri_caller_and_no_process_runs() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = [scripted(
        "",
        "name = \"no-busybox\"\npoints = [\"create-container\"]\ndeny = \"busybox is not welcome\"",
    )]
    .concat();
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;

    let refused = testbed
        .create_container(&pod, sleeper("denied"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("no-busybox"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("busybox is not welcome"),
        "{}",
        refused.message()
    );

    let record = &audited(&testbed, "denied", "CreateContainer")[0];
    assert_eq!(record["applied"]["action"], "refused");
    assert_eq!(
        record["image"]["normalized"],
        "docker.io/library/busybox:latest"
    );
    assert!(
        record["image"]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{record}"
    );
    assert_eq!(record["plugins"][0]["name"], "no-busybox");
    assert_eq!(
        record["plugins"][0]["digest"].as_str().map(str::len),
        Some(64 + 7),
        "{record}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_at_post_create_refuses_the_start_before_any_process_runs() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = scripted(
        "",
        "name = \"late-judge\"\ndeny = \"decided after reading the spec\"",
    );
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;

    let id = testbed.create_container(&pod, sleeper("late")).await?;
    let refused = testbed.start_container(&id).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("late-judge"),
        "{}",
        refused.message()
    );
    assert!(
        !ever_started(&testbed, &id).await?,
        "the container's process ran"
    );
    assert_eq!(
        audited(&testbed, "late", "PostCreateContainer")[0]["applied"]["action"],
        "refused-at-start"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening_shows_inside_the_container() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = scripted(
        "",
        r#"name = "hardener"
keep-only = ["CAP_NET_BIND_SERVICE"]
seccomp-errno = ["mkdir", "mkdirat"]
no-new-privileges = true
env = { BULKHEAD_GREETING = "hardened" }
annotations = { "example.com/checked-by" = "hardener" }"#,
    ) + "[plugins.grants]\nenv = [\"BULKHEAD_GREETING\"]\nannotations = [\"example.com/\"]\n";
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;
    let id = testbed.run_container(&pod, sleeper("hard")).await?;

    let (_, status, _) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    let field = |name: &str| status_field(&status, name);
    assert_eq!(field("CapEff:"), "0000000000000400", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");

    let (code, _, stderr) = testbed.exec_sync(&id, ["mkdir", "/tmp/blocked"]).await?;
    assert_ne!(code, 0, "mkdir succeeded under a profile that denies it");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    let (code, _, _) = testbed.exec_sync(&id, ["touch", "/tmp/allowed"]).await?;
    assert_eq!(code, 0, "the profile blocked more than mkdir");

    let (_, env, _) = testbed.exec_sync(&id, ["env"]).await?;
    assert!(
        env.lines().any(|l| l == "BULKHEAD_GREETING=hardened"),
        "{env}"
    );

    let info = testbed.ctr().args(["containers", "info", &id]).output()?;
    let info: Value = serde_json::from_slice(&info.stdout)?;
    assert_eq!(
        info["Spec"]["annotations"]["example.com/checked-by"], "hardener",
        "{info}"
    );

    let record = &audited(&testbed, "hard", "PostCreateContainer")[0];
    assert_eq!(record["applied"]["spec-patched"], true, "{record}");
    assert_eq!(record["applied"]["verified"], true, "{record}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_plugin_is_cut_off_and_its_failure_policy_applies() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = [scripted(
        "failure-policy = \"deny\"\ntime-budget-ms = 100",
        "name = \"spinner\"\npoints = [\"create-container\"]\nloop = true",
    )]
    .concat();
    let (bulkhead, pod) = start_with(&testbed, &config).await?;
    let started = std::time::Instant::now();
    let refused = testbed
        .create_container(&pod, sleeper("spun"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("spinner") && refused.message().contains("timeout"),
        "{}",
        refused.message()
    );
    eprintln!("looping plugin refused after {took:?}");
    let record = &audited(&testbed, "spun", "CreateContainer")[0];
    assert_eq!(
        record["plugins"][0]["outcome"]["failed"]["kind"], "timeout",
        "{record}"
    );
    // containerd never timed bulkhead out: still one session.
    assert_eq!(
        bulkhead.log().matches("connected and synchronized").count(),
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failure_policy_allow_lets_the_container_run_and_says_why() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = scripted(
        "failure-policy = \"allow\"\ntime-budget-ms = 50",
        "name = \"spinner\"\npoints = [\"create-container\"]\nloop = true",
    );
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;
    let id = testbed.run_container(&pod, sleeper("lenient")).await?;
    let (code, _, _) = testbed.exec_sync(&id, ["true"]).await?;
    assert_eq!(code, 0);
    let record = &audited(&testbed, "lenient", "CreateContainer")[0];
    assert_eq!(
        record["plugins"][0]["outcome"]["failed"]["policy"], "allow",
        "{record}"
    );
    assert_eq!(record["result"]["verdict"], "allow", "{record}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_mode_records_the_deny_and_changes_nothing() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = scripted(
        "mode = \"audit\"",
        "name = \"dry-run\"\ndeny = \"would refuse\"\ndrop = [\"CAP_CHOWN\"]",
    );
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;
    let id = testbed.run_container(&pod, sleeper("observed")).await?;
    let (_, status, _) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_default()
        .trim();
    let cap_eff = u64::from_str_radix(cap_eff, 16)?;
    assert_ne!(
        cap_eff & 1,
        0,
        "CAP_CHOWN was dropped by an audit-mode plugin"
    );
    let record = &audited(&testbed, "observed", "PostCreateContainer")[0];
    assert_eq!(record["plugins"][0]["mode"], "audit", "{record}");
    assert_eq!(
        record["plugins"][0]["outcome"]["decided"]["verdict"]["deny"], "would refuse",
        "{record}"
    );
    assert_eq!(record["result"]["verdict"], "allow", "{record}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_seccomp_profiles_refuse_the_start_naming_both_plugins() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = [
        scripted(
            "",
            "name = \"no-mkdir\"\nseccomp-errno = [\"mkdir\", \"mkdirat\"]",
        ),
        scripted("", "name = \"no-ptrace\"\nseccomp-errno = [\"ptrace\"]"),
    ]
    .concat();
    let (_bulkhead, pod) = start_with(&testbed, &config).await?;
    let id = testbed.create_container(&pod, sleeper("torn")).await?;
    let refused = testbed.start_container(&id).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("no-mkdir") && refused.message().contains("no-ptrace"),
        "{}",
        refused.message()
    );
    let record = &audited(&testbed, "torn", "PostCreateContainer")[0];
    let conflict = &record["result"]["conflicts"][0];
    assert_eq!(conflict["first"], "no-mkdir", "{record}");
    assert_eq!(conflict["second"], "no-ptrace", "{record}");
    Ok(())
}
