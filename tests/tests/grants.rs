//! A hostile third-party plugin against a real containerd: everything it asks for beyond its
//! grants is refused by the host, and the container either is refused or runs without the
//! weakening — checked inside the container. bulkhead stays connected throughout (one session,
//! containerd never closes the plugin) and every refused mutation is named in the audit log.
//!
//! The hostile plugin is the scripted test plugin loaded by path, which asks for whatever its
//! config says: the rows of the grants issue, one plugin instance per row.

use bulkhead_e2e::{ContainerSpec, Containerd, Testbed, images};

/// A `[[plugins]]` entry for the scripted plugin: `settings` are bulkhead's, `config` the plugin's.
fn scripted_plugin(settings: &str, config: &str) -> String {
    bulkhead_e2e::plugin_entry(bulkhead_test_plugins::SCRIPTED, settings, config)
}
use serde_json::Value;
use tonic::Code;

const SECRET_VALUE: &str = "the-ungranted-secret-value";

fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(name, images::BUSYBOX).command(["sleep", "3600"])
}

/// The first audit record for container `name` at `event`.
fn audited(testbed: &Testbed, name: &str, event: &str) -> Value {
    testbed
        .audit_records_for(name, event)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {event} audit record for {name}"))
}

/// The hard and soft limit of `resource` (a `/proc/<pid>/limits` row title) in `limits`.
fn limit(limits: &str, resource: &str) -> (String, String) {
    let row = limits
        .lines()
        .find(|l| l.starts_with(resource))
        .unwrap_or_else(|| panic!("no {resource} in {limits}"));
    let fields: Vec<&str> = row[resource.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

/// One above this process's hard limit of `resource`: a raise for containers, which inherit it
/// through containerd (the test bed starts containerd from this process).
fn raised(resource: &str) -> u64 {
    let own = std::fs::read_to_string("/proc/self/limits").expect("own limits");
    let (_, hard) = limit(&own, resource);
    hard.parse::<u64>().map_or(u64::MAX, |hard| hard + 1)
}

/// Asserts bulkhead kept one session and containerd never closed it.
fn still_connected(testbed: &Testbed, bulkhead: &bulkhead_e2e::Process) {
    let sessions = bulkhead.log().matches("connected and synchronized").count();
    assert_eq!(sessions, 1, "bulkhead reconnected: {}", bulkhead.log());
    let containerd = testbed.containerd_log();
    assert!(
        !containerd.contains("closing plugin"),
        "containerd closed bulkhead:\n{containerd}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_gets_nothing_it_was_not_granted() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    std::fs::create_dir_all(testbed.secrets_dir())?;
    std::fs::write(testbed.secrets_dir().join("token"), SECRET_VALUE)?;
    let nofile = raised("Max open files").min(1 << 20);
    let memlock = raised("Max locked memory");
    // Failure policy allow: each refused decision is dropped and the container runs, so the
    // absence of every weakening can be checked inside it.
    let hostile = |name: &str, ask: &str| {
        scripted_plugin(
            "failure-policy = \"allow\"",
            &format!("name = \"{name}\"\n{ask}"),
        )
    };
    let config = [
        hostile(
            "mounter",
            r#"mounts = [{ source = "/", destination = "/host", options = ["rbind", "rw"] }]"#,
        ),
        hostile("unfilter", "seccomp-allow-all = true"),
        hostile("weakfilter", "seccomp-errno = [\"mount\"]"),
        hostile("preloader", "env = { LD_PRELOAD = \"/tmp/evil.so\" }"),
        hostile(
            "thief",
            r#"secrets = [{ secret = "token", target = "/run/secrets/token", mode = 292 }]"#,
        ),
        hostile(
            "sysfs",
            r#"mounts = [{ source = "sysfs", destination = "/sys", type = "sysfs", options = ["rw", "nosuid"] }]"#,
        ),
        hostile(
            "raiser",
            &format!(
                "rlimits = [{{ kind = \"RLIMIT_NOFILE\", soft = {nofile}, hard = {nofile} }}, {{ kind = \"RLIMIT_MEMLOCK\", soft = {memlock}, hard = {memlock} }}]"
            ),
        ),
    ]
    .concat();
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("hostile", "default").await?;
    let id = testbed
        .run_container(&pod, sleeper("target").seccomp_runtime_default())
        .await?;
    let run = |cmd: &'static str| testbed.exec_sync(&id, ["sh", "-c", cmd]);

    let (code, _, _) = run("test -e /host").await?;
    assert_ne!(code, 0, "the host's root is mounted at /host");
    let (code, _, stderr) = run("unshare -U true").await?;
    assert_ne!(code, 0, "unshare -U succeeded: RuntimeDefault was weakened");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    let (_, env, _) = run("env").await?;
    assert!(!env.contains("LD_PRELOAD"), "{env}");
    let (code, _, _) = run("test -e /run/secrets/token").await?;
    assert_ne!(code, 0, "an ungranted secret was mounted");
    let (_, mounts, _) = run("grep ' /sys ' /proc/mounts").await?;
    assert!(
        mounts.lines().all(|l| l.contains(" ro,")),
        "/sys is writable: {mounts}"
    );
    let (_, limits, _) = run("cat /proc/1/limits").await?;
    assert_ne!(
        limit(&limits, "Max open files").1,
        nofile.to_string(),
        "{limits}"
    );
    assert_ne!(
        limit(&limits, "Max locked memory").1,
        memlock.to_string(),
        "{limits}"
    );

    // The audit record names each plugin, the mutation refused and the missing grant.
    let record = audited(&testbed, "target", "PostCreateContainer");
    let refused: Vec<(String, String)> = record["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|run| {
            let failed = &run["outcome"]["failed"];
            assert_eq!(failed["kind"], "not-granted", "{run}");
            assert_eq!(failed["policy"], "allow", "{run}");
            (
                run["name"].as_str().unwrap_or_default().to_string(),
                failed["violation"]["mutation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let expect = [
        ("mounter", "add-mount / at /host"),
        ("unfilter", "set-seccomp"),
        ("weakfilter", "set-seccomp"),
        ("preloader", "add-env LD_PRELOAD"),
        (
            "thief",
            "mount-secret token at /run/secrets/token mode 0444",
        ),
        ("sysfs", "add-mount sysfs at /sys"),
        ("raiser", "add-rlimit RLIMIT_NOFILE"),
    ];
    assert_eq!(refused.len(), expect.len(), "{record}");
    for ((name, mutation), (want_name, want_mutation)) in refused.iter().zip(expect) {
        assert_eq!(name, want_name);
        assert!(mutation.starts_with(want_mutation), "{name}: {mutation}");
    }
    assert!(
        record["plugins"][0]["outcome"]["failed"]["violation"]["missing"]
            .as_str()
            .is_some_and(|m| m.contains("outside the plugin's mount grants")),
        "{record}"
    );

    still_connected(&testbed, &bulkhead);
    assert!(!bulkhead.log().contains(SECRET_VALUE));
    assert!(!std::fs::read_to_string(testbed.audit_path())?.contains(SECRET_VALUE));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_default_policy_an_ungranted_request_refuses_the_container() -> anyhow::Result<()>
{
    let testbed = Testbed::start().await?;
    let config = scripted_plugin(
        "",
        r#"name = "mounter"
mounts = [{ source = "/", destination = "/host", options = ["rbind", "rw"] }]"#,
    );
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("hostile", "default").await?;
    let id = testbed.create_container(&pod, sleeper("refused")).await?;
    let refused = testbed.start_container(&id).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("mounter") && message.contains("add-mount / at /host"),
        "{message}"
    );
    assert!(
        message.contains("outside the plugin's mount grants"),
        "{message}"
    );
    let record = audited(&testbed, "refused", "PostCreateContainer");
    assert_eq!(record["applied"]["action"], "refused-at-start", "{record}");
    let start = audited(&testbed, "refused", "StartContainer");
    assert_eq!(start["applied"]["action"], "refused", "{start}");
    still_connected(&testbed, &bulkhead);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_megabyte_deny_reason_is_cut_and_answered_in_time() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = scripted_plugin(
        "",
        "name = \"shouter\"\npoints = [\"create-container\"]\ndeny-bytes = 5242880",
    );
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("loud", "default").await?;
    for name in ["first", "second"] {
        let refused = testbed
            .create_container(&pod, sleeper(name))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let message = refused.message();
        assert!(message.contains("shouter"), "{}", &message[..200]);
        assert!(message.contains("[cut "), "{}", &message[..200]);
        assert!(
            message.len() < 2048,
            "{} bytes reached the CRI caller",
            message.len()
        );
    }
    let record = audited(&testbed, "first", "CreateContainer");
    assert_eq!(record["applied"]["action"], "refused");
    assert!(
        record.to_string().len() < 16 * 1024,
        "the audit record is not bounded"
    );
    still_connected(&testbed, &bulkhead);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_env_grant_gives_exactly_that() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = [
        scripted_plugin("", "name = \"configurer\"\nenv = { APP_MODE = \"safe\" }")
            + "[plugins.grants]\nenv = [\"APP_MODE\"]\n",
        scripted_plugin(
            "failure-policy = \"allow\"",
            "name = \"overreacher\"\nenv = { APP_DEBUG = \"1\" }",
        ) + "[plugins.grants]\nenv = [\"APP_MODE\"]\n",
    ]
    .concat();
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("granted", "default").await?;
    let id = testbed.run_container(&pod, sleeper("granted")).await?;
    let (_, env, _) = testbed.exec_sync(&id, ["env"]).await?;
    assert!(env.lines().any(|l| l == "APP_MODE=safe"), "{env}");
    assert!(!env.contains("APP_DEBUG"), "{env}");
    let record = audited(&testbed, "granted", "PostCreateContainer");
    assert_eq!(
        record["plugins"][0]["outcome"]["decided"]["mutations"][0]["add-env"]["name"],
        "APP_MODE"
    );
    assert_eq!(
        record["plugins"][1]["outcome"]["failed"]["kind"],
        "not-granted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_hub_aliases_do_not_escape_a_registry_rule() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = "[[plugins]]\nbuiltin = \"image-policy\"\n[plugins.config]\ndenied-registries = [\"docker.io\"]\n";
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("aliases", "default").await?;
    let spelled = ContainerSpec::new("aliased", "index.docker.io/library/busybox:latest")
        .command(["sleep", "3600"]);
    let refused = testbed.create_container(&pod, spelled).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("denied"),
        "{}",
        refused.message()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_volume_at_sys_does_not_hide_a_privileged_container() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    let pod = testbed.run_privileged_pod("disguised", "default").await?;
    let volume = tempfile::tempdir_in(testbed.dir())?;
    let disguised = sleeper("disguised").privileged(true).mount(
        &volume.path().display().to_string(),
        "/sys",
        true,
    );
    let id = testbed.create_container(&pod, disguised).await;
    let refused = match id {
        Err(status) => status,
        Ok(id) => testbed.start_container(&id).await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("privileged"),
        "{}",
        refused.message()
    );
    Ok(())
}

/// A plugin that decides at CreateContainer and asks only for what containerd applies natively
/// (env, annotations, a granted mount, a lower rlimit) gets it as an NRI adjustment: the
/// runtime builds the container with it, and bulkhead makes no stored-spec round trip.
#[tokio::test(flavor = "multi_thread")]
async fn create_time_env_mounts_and_rlimits_are_applied_by_the_runtime() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let shared = std::fs::canonicalize(testbed.dir())?.join("shared");
    std::fs::create_dir_all(&shared)?;
    std::fs::write(shared.join("greeting"), "hello from the host\n")?;
    let plugin_config = format!(
        r#"name = "provisioner"
points = ["create-container"]
env = {{ APP_MODE = "native" }}
annotations = {{ "example.com/tier" = "gold" }}
rlimits = [{{ kind = "RLIMIT_NOFILE", soft = 256, hard = 512 }}]
mounts = [{{ source = "{source}", destination = "/data", options = ["rbind", "ro"] }}]"#,
        source = shared.display()
    );
    let config = scripted_plugin("", &plugin_config)
        + &format!(
            "[plugins.grants]\nenv = [\"APP_MODE\"]\nannotations = [\"example.com/\"]\nmounts = [{{ source = \"{}\" }}]\n",
            shared.display()
        );
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("native", "default").await?;
    let id = testbed.run_container(&pod, sleeper("native")).await?;

    let (_, env, _) = testbed.exec_sync(&id, ["env"]).await?;
    assert!(env.lines().any(|l| l == "APP_MODE=native"), "{env}");
    let (_, limits, _) = testbed.exec_sync(&id, ["cat", "/proc/1/limits"]).await?;
    assert_eq!(
        limit(&limits, "Max open files"),
        ("256".to_string(), "512".to_string())
    );
    let (code, greeting, _) = testbed.exec_sync(&id, ["cat", "/data/greeting"]).await?;
    assert_eq!((code, greeting.as_str()), (0, "hello from the host\n"));
    let (code, _, _) = testbed.exec_sync(&id, ["touch", "/data/x"]).await?;
    assert_ne!(code, 0, "the granted mount is read-only");
    let info = testbed.ctr().args(["containers", "info", &id]).output()?;
    let info: Value = serde_json::from_slice(&info.stdout)?;
    assert_eq!(info["Spec"]["annotations"]["example.com/tier"], "gold");

    let record = audited(&testbed, "native", "CreateContainer");
    assert_eq!(record["applied"]["action"], "allowed", "{record}");
    assert_eq!(record["applied"]["adjusted-at-create"], true, "{record}");
    let post_create = testbed.audit_records_for("native", "PostCreateContainer");
    if testbed.containerd() == Containerd::V1_7 {
        // containerd 1.7 may annotate another name of the image: the decision is then judged
        // again at PostCreate under the requested name (and recorded), but nothing is patched.
        for record in &post_create {
            assert_eq!(record["applied"]["action"], "allowed", "{record}");
            assert_eq!(record["applied"]["spec-patched"], false, "{record}");
        }
    } else {
        // Nothing was left for PostCreate: no spec read, no patch, no record.
        assert!(post_create.is_empty(), "a PostCreate record was written");
    }
    still_connected(&testbed, &bulkhead);
    Ok(())
}

/// Starts bulkhead with `config` on a fresh test bed and asserts that creating a container is
/// refused at CreateContainer with a message containing `expected`, and audited so.
async fn refused_at_create(config: &str, name: &str, expected: &str) -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod(name, "default").await?;
    let status = testbed
        .create_container(&pod, sleeper(name))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(expected), "{}", status.message());
    let record = audited(&testbed, name, "CreateContainer");
    assert_eq!(record["applied"]["action"], "refused", "{record}");
    still_connected(&testbed, &bulkhead);
    Ok(())
}

/// The native path is judged as strictly as the stored-spec patch: at CreateContainer a raised
/// rlimit is judged against the limits containerd sent over NRI, and refused before the
/// container exists.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_time_rlimit_raise_is_refused_at_create() -> anyhow::Result<()> {
    let raise = raised("Max open files");
    let config = scripted_plugin(
        "",
        &format!(
            "name = \"raiser\"\npoints = [\"create-container\"]\nrlimits = [{{ kind = \"RLIMIT_NOFILE\", soft = {raise}, hard = {raise} }}]"
        ),
    );
    refused_at_create(&config, "raised", "limits only go down").await
}

/// A granted directory holding a symbolic link to `/` does not carry a create-time mount out
/// of the grant: the runtime is never asked to mount it.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_time_mount_through_a_symlink_is_refused_at_create() -> anyhow::Result<()> {
    let granted = tempfile::tempdir()?;
    let granted = std::fs::canonicalize(granted.path())?;
    std::os::unix::fs::symlink("/", granted.join("escape"))?;
    let config = scripted_plugin(
        "",
        &format!(
            "name = \"linker\"\npoints = [\"create-container\"]\nmounts = [{{ source = \"{}\", destination = \"/host\", options = [\"rbind\", \"ro\"] }}]",
            granted.join("escape").display()
        ),
    ) + &format!(
        "[plugins.grants]\nmounts = [{{ source = \"{}\" }}]\n",
        granted.display()
    );
    refused_at_create(&config, "linked", "symbolic link").await
}
