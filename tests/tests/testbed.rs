//! The test bed itself, end to end: a private containerd runs real runc containers through the
//! CRI, images carry the users they claim, the security builder fields reach the container, and
//! teardown leaves no process, mount or cgroup behind.

use std::path::{Path, PathBuf};

use bulkhead_e2e::{ContainerSpec, Testbed, images, mounts_under};

/// Processes whose command line names `dir` (containerd, shims, anything started there).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// The effective capability mask from a `/proc/<pid>/status` text.
fn cap_eff(status: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .expect("no CapEff line")
        .trim();
    u64::from_str_radix(hex, 16).expect("CapEff is hex")
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_root_and_nonroot_containers_and_cleans_up() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let dir = testbed.dir().to_path_buf();
    let cgroup = PathBuf::from(format!("/sys/fs/cgroup/pids{}", testbed.cgroup_parent()));
    assert!(
        testbed.nri_socket().exists(),
        "containerd opened no NRI socket"
    );

    let pod = testbed.run_pod("testbed", "default").await?;
    let root = testbed
        .run_container(
            &pod,
            ContainerSpec::new("root", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;

    let (code, status, stderr) = testbed
        .exec_sync(&root, ["cat", "/proc/self/status"])
        .await?;
    assert_eq!(code, 0, "cat failed: {stderr}");
    assert!(status.lines().any(|l| l.starts_with("CapEff:")), "{status}");
    assert!(
        status.lines().any(|l| l.starts_with("Seccomp:")),
        "{status}"
    );
    let (code, uid, _) = testbed.exec_sync(&root, ["id", "-u"]).await?;
    assert_eq!((code, uid.trim()), (0, "0"));

    let nonroot = testbed
        .run_container(
            &pod,
            ContainerSpec::new("nonroot", images::BUSYBOX_NONROOT).command(["sleep", "3600"]),
        )
        .await?;
    let (code, uid, _) = testbed.exec_sync(&nonroot, ["id", "-u"]).await?;
    assert_eq!((code, uid.trim()), (0, "1000"));

    for id in [&root, &nonroot] {
        testbed.stop_container(id).await?;
        testbed.remove_container(id).await?;
    }
    testbed.stop_and_remove_pod(&pod).await?;

    // Leave one container running: teardown must cope with it.
    let pod = testbed.run_pod("leftover", "default").await?;
    testbed
        .run_container(
            &pod,
            ContainerSpec::new("left", images::QUAY_BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    if Path::new("/sys/fs/cgroup/pids").is_dir() {
        assert!(
            cgroup.is_dir(),
            "pods are not under the test bed's cgroup parent"
        );
    }

    drop(testbed);
    assert_eq!(mounts_under(&dir)?, Vec::<PathBuf>::new());
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    assert!(!cgroup.exists(), "{} was not removed", cgroup.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn security_context_fields_reach_the_container() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let sleep = ["sleep", "3600"];

    let pod = testbed.run_pod("plain", "default").await?;
    let plain = testbed
        .run_container(
            &pod,
            ContainerSpec::new("plain", images::BUSYBOX).command(sleep),
        )
        .await?;
    let (_, status, _) = testbed
        .exec_sync(&plain, ["cat", "/proc/self/status"])
        .await?;
    let default_caps = cap_eff(&status);
    // No seccomp profile in the CRI request means unconfined, as with a default kubelet.
    assert!(status.contains("Seccomp:\t0"), "{status}");
    // The image name as written reaches the annotation NRI plugins see, even though three
    // references share this image's digest.
    let info = testbed
        .ctr()
        .args(["containers", "info", &plain])
        .output()?;
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains(r#""io.kubernetes.cri.image-name": "docker.io/library/busybox:latest""#),
        "{info}"
    );

    let confined = testbed
        .run_container(
            &pod,
            ContainerSpec::new("confined", images::BUSYBOX)
                .command(sleep)
                .seccomp_runtime_default(),
        )
        .await?;
    let (_, status, _) = testbed
        .exec_sync(&confined, ["cat", "/proc/self/status"])
        .await?;
    assert!(status.contains("Seccomp:\t2"), "{status}");

    const CAP_NET_ADMIN: u64 = 1 << 12;
    assert_eq!(default_caps & CAP_NET_ADMIN, 0);
    let netadmin = testbed
        .run_container(
            &pod,
            ContainerSpec::new("netadmin", images::BUSYBOX)
                .command(sleep)
                .add_capabilities(["NET_ADMIN"]),
        )
        .await?;
    let (_, status, _) = testbed
        .exec_sync(&netadmin, ["cat", "/proc/self/status"])
        .await?;
    assert_eq!(cap_eff(&status), default_caps | CAP_NET_ADMIN);

    let user = testbed
        .run_container(
            &pod,
            ContainerSpec::new("user", images::BUSYBOX)
                .command(sleep)
                .run_as_user(4242)
                .readonly_rootfs(true)
                .no_new_privs(true),
        )
        .await?;
    let (_, uid, _) = testbed.exec_sync(&user, ["id", "-u"]).await?;
    assert_eq!(uid.trim(), "4242");
    let (code, _, _) = testbed.exec_sync(&user, ["touch", "/x"]).await?;
    assert_ne!(code, 0, "the root filesystem is writable");
    let (_, status, _) = testbed
        .exec_sync(&user, ["cat", "/proc/self/status"])
        .await?;
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");

    let privileged_pod = testbed.run_privileged_pod("privileged", "default").await?;
    let privileged = testbed
        .run_container(
            &privileged_pod,
            ContainerSpec::new("privileged", images::BUSYBOX)
                .command(sleep)
                .privileged(true),
        )
        .await?;
    let (_, status, _) = testbed
        .exec_sync(&privileged, ["cat", "/proc/self/status"])
        .await?;
    assert!(
        cap_eff(&status).count_ones() > default_caps.count_ones() + 20,
        "{status}"
    );
    assert!(status.contains("Seccomp:\t0"), "{status}");

    testbed.stop_and_remove_pod(&pod).await?;
    testbed.stop_and_remove_pod(&privileged_pod).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_containers_and_the_cri_client_reconnects() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let pod = testbed.run_pod("restart", "default").await?;
    let id = testbed
        .run_container(
            &pod,
            ContainerSpec::new("survivor", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    let log_before = testbed.containerd_log().len();

    testbed.restart_containerd().await?;

    assert!(
        testbed.containerd_log().len() > log_before,
        "containerd logged nothing on restart"
    );
    assert!(
        testbed.nri_socket().exists(),
        "no NRI socket after the restart"
    );
    let (code, stdout, _) = testbed.exec_sync(&id, ["echo", "still here"]).await?;
    assert_eq!((code, stdout.trim()), (0, "still here"));
    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}
