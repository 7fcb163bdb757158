//! The first-party plugins on real containers: the embedded baseline hardens and denies as the
//! product contract says, image-policy refuses registries and revoked digests, and secrets are
//! mounted for granted pods only and cleaned up with the container.

use std::time::{Duration, Instant};

use bulkhead_e2e::{ContainerSpec, Containerd, Testbed, images, status_field};
use tonic::Code;

fn sleeper(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec::new(name, image).command(["sleep", "3600"])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_baseline_hardens_an_unconfined_container() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("web", "default").await?;
    // No seccomp in the CRI request: unconfined, as with a default kubelet.
    let id = testbed
        .run_container(&pod, sleeper("app", images::BUSYBOX))
        .await?;

    let (_, status, _) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    assert_eq!(status_field(&status, "Seccomp:"), "2", "{status}");
    let cap_eff = u64::from_str_radix(&status_field(&status, "CapEff:"), 16)?;
    assert_eq!(
        cap_eff & (1 << 13),
        0,
        "CAP_NET_RAW is still effective: {cap_eff:#x}"
    );
    assert_ne!(cap_eff & 1, 0, "CAP_CHOWN was dropped too: {cap_eff:#x}");

    // A syscall outside the default profile fails; ordinary work does not.
    let (code, _, stderr) = testbed.exec_sync(&id, ["unshare", "-U", "true"]).await?;
    assert_ne!(code, 0, "unshare succeeded under the default profile");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    let (code, _, stderr) = testbed
        .exec_sync(&id, ["sh", "-c", "mkdir /tmp/d && ls /tmp"])
        .await?;
    assert_eq!(code, 0, "{stderr}");

    let records = testbed.audit_records();
    let record = records
        .iter()
        .find(|r| r["container"]["name"] == "app" && r["event"] == "PostCreateContainer")
        .expect("no PostCreate audit record");
    let names: Vec<_> = record["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(
        names,
        ["image-policy", "seccomp", "capabilities", "secrets"],
        "{record}"
    );
    assert_eq!(record["applied"]["verified"], true, "{record}");
    Ok(())
}

/// A profile the operator defines in bulkhead's config, held by the host and named by the
/// seccomp plugin, filters the real container; a pod can pick only what the operator allowed.
#[tokio::test(flavor = "multi_thread")]
async fn operator_profiles_held_by_the_host_filter_the_containers_that_name_them()
-> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let config = r#"
[seccomp]
architectures = ["SCMP_ARCH_X86_64"]

[seccomp.profiles.no-mkdir]
default-action = "SCMP_ACT_ALLOW"
syscalls = [{ names = ["mkdir", "mkdirat"], action = "SCMP_ACT_ERRNO" }]

[[plugins]]
builtin = "seccomp"
[plugins.config]
namespace-profiles = { batch = "no-mkdir" }
annotation = "seccomp.bulkhead.dev/profile"
allowed-annotation-profiles = ["strict"]
"#;
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(config)?, "bulkhead")
        .await?;

    // Namespace `batch` gets the operator's profile: mkdir fails, everything else runs.
    let batch = testbed.run_pod("jobs", "batch").await?;
    let id = testbed
        .run_container(&batch, sleeper("job", images::BUSYBOX))
        .await?;
    let (code, _, stderr) = testbed.exec_sync(&id, ["mkdir", "/tmp/d"]).await?;
    assert_ne!(code, 0, "mkdir succeeded under no-mkdir");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    let (code, _, stderr) = testbed
        .exec_sync(&id, ["sh", "-c", "touch /tmp/f && ls /tmp/f"])
        .await?;
    assert_eq!(code, 0, "{stderr}");

    // A pod may pick `strict` by annotation (no mkdir, no touch, no sockets)...
    let picky = testbed
        .run_pod_with("picky", "default", |pod| {
            pod.annotations
                .insert("seccomp.bulkhead.dev/profile".into(), "strict".into());
        })
        .await?;
    let id = testbed
        .run_container(&picky, sleeper("strict", images::BUSYBOX))
        .await?;
    let (code, _, _) = testbed.exec_sync(&id, ["touch", "/tmp/f"]).await?;
    assert_ne!(code, 0, "touch succeeded under strict");
    let (code, out, stderr) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status_field(&out, "Seccomp:"), "2", "{out}");

    // ...but not a profile the operator did not allow for annotations.
    let sneaky = testbed
        .run_pod_with("sneaky", "default", |pod| {
            pod.annotations
                .insert("seccomp.bulkhead.dev/profile".into(), "no-mkdir".into());
        })
        .await?;
    // The seccomp plugin judges at post-create: the start is refused before any process runs.
    let id = testbed
        .create_container(&sneaky, sleeper("sneaky", images::BUSYBOX))
        .await?;
    let refused = testbed.start_container(&id).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("allowed-annotation-profiles"),
        "{}",
        refused.message()
    );

    // The audit record names the profile by digest, as `check-config` lists it.
    let records = testbed.audit_records_for("job", "PostCreateContainer");
    let chosen = &records.first().expect("no PostCreate audit record for job")["result"]["mutations"]
        ["seccomp"];
    assert_eq!(chosen["plugin"], "seccomp", "{chosen}");
    assert_eq!(chosen["value"]["rules"], 1, "{chosen}");
    assert!(chosen["value"]["sha256"].is_string(), "{chosen}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_baseline_denies_privileged_and_added_capabilities_outside_kube_system()
-> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command()?, "bulkhead")
        .await?;
    for namespace in ["default", "kube-system"] {
        let pod = testbed.run_privileged_pod("ops", namespace).await?;
        let privileged = sleeper("privileged", images::BUSYBOX).privileged(true);
        let sys_admin = sleeper("sys-admin", images::BUSYBOX).add_capabilities(["SYS_ADMIN"]);
        for spec in [privileged, sys_admin] {
            let name = spec
                .config()
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let result = testbed.run_container(&pod, spec).await;
            if namespace == "kube-system" {
                let id = result.map_err(|e| anyhow::anyhow!("{name} in kube-system: {e:?}"))?;
                let (code, _, _) = testbed.exec_sync(&id, ["true"]).await?;
                assert_eq!(code, 0);
            } else {
                let refused = result.expect_err(&format!("{name} ran in {namespace}"));
                assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
                assert!(
                    refused.message().contains("capabilities"),
                    "{}",
                    refused.message()
                );
            }
        }
    }
    Ok(())
}

/// The repo digest containerd has for `image`.
fn image_digest(testbed: &Testbed, image: &str) -> anyhow::Result<String> {
    let output = testbed
        .ctr()
        .args(["images", "ls", &format!("name=={image}")])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .skip(1)
        .flat_map(str::split_whitespace)
        .find(|field| field.starts_with("sha256:"))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no digest for {image} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn image_policy_refuses_denied_registries_and_revoked_digests() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let revoked = image_digest(&testbed, images::BUSYBOX_NONROOT)?;
    let config = format!(
        "[[plugins]]\nbuiltin = \"image-policy\"\n[plugins.config]\ndenied-registries = [\"quay.io\"]\ndenied-digests = [{revoked:?}]\n"
    );
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("images", "default").await?;

    // The same image as busybox, stored under a second name. containerd 1.7 annotates it with
    // its first stored name, so there the refusal comes at start, once bulkhead has read the
    // requested name from the container's record; no process runs either way.
    let refused = match testbed
        .create_container(&pod, sleeper("quay", images::QUAY_BUSYBOX))
        .await
    {
        Err(refused) => refused,
        Ok(id) if testbed.containerd() == Containerd::V1_7 => {
            let refused = testbed.start_container(&id).await.unwrap_err();
            let record = &testbed.audit_records_for("quay", "PostCreateContainer")[0];
            assert_eq!(record["applied"]["action"], "refused-at-start", "{record}");
            assert!(
                record["applied"]["image-annotated-as"].is_string(),
                "{record}"
            );
            assert!(
                record["image"]["normalized"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("quay.io/")),
                "{record}"
            );
            refused
        }
        Ok(id) => panic!("quay.io container {id} was created"),
    };
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("image-policy") && refused.message().contains("quay.io"),
        "{}",
        refused.message()
    );

    let refused = testbed
        .create_container(&pod, sleeper("revoked", images::BUSYBOX_NONROOT))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("denied-digests"),
        "{}",
        refused.message()
    );

    testbed
        .run_container(&pod, sleeper("fine", images::BUSYBOX))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn granted_secrets_are_mounted_read_only_and_removed_with_the_container() -> anyhow::Result<()>
{
    const VALUE: &str = "correct-horse-battery-staple";
    let testbed = Testbed::start().await?;
    std::fs::create_dir_all(testbed.secrets_dir())?;
    std::fs::write(testbed.secrets_dir().join("db-password"), VALUE)?;
    let config = "[[plugins]]\nbuiltin = \"secrets\"\n[plugins.config]\ngrants = [{ namespaces = [\"team-a\"], secrets = [\"db-password\"] }]\n\n[[secrets.grants]]\nplugins = [\"secrets\"]\nnamespaces = [\"team-a\"]\nsecrets = [\"db-password\"]\n";
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(config)?, "bulkhead")
        .await?;
    let request = |config: &mut bulkhead_e2e::cri_api::PodSandboxConfig| {
        config.annotations.insert(
            "secrets.bulkhead.dev/db-password".into(),
            "/run/secrets/db".into(),
        );
    };

    let pod = testbed.run_pod_with("api", "team-a", request).await?;
    let id = testbed
        .run_container(&pod, sleeper("api", images::BUSYBOX_NONROOT))
        .await?;
    let (code, content, stderr) = testbed.exec_sync(&id, ["cat", "/run/secrets/db"]).await?;
    assert_eq!((code, content.as_str()), (0, VALUE), "{stderr}");
    let (_, mode, _) = testbed
        .exec_sync(&id, ["stat", "-c", "%a %u", "/run/secrets/db"])
        .await?;
    assert_eq!(mode.trim(), "400 1000");
    let (code, _, _) = testbed
        .exec_sync(&id, ["sh", "-c", "echo x > /run/secrets/db"])
        .await?;
    assert_ne!(code, 0, "the secret is writable");

    let on_host = testbed.dir().join("secrets-run").join(&id);
    assert!(on_host.join("db-password").exists());
    testbed.stop_container(&id).await?;
    testbed.remove_container(&id).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while on_host.exists() {
        assert!(
            Instant::now() < deadline,
            "the secret stayed on the host after removal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another namespace has no grant: refused, naming the secret and the namespace.
    let other = testbed.run_pod_with("api", "team-b", request).await?;
    let refused = testbed
        .run_container(&other, sleeper("api", images::BUSYBOX_NONROOT))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused
            .message()
            .contains("not granted to namespace \"team-b\""),
        "{}",
        refused.message()
    );

    // The value never reached the logs or the audit records.
    assert!(!bulkhead.log().contains(VALUE));
    assert!(!std::fs::read_to_string(testbed.audit_path())?.contains(VALUE));
    Ok(())
}
