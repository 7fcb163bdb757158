//! bulkhead-containerd against a real containerd 2.1 (the e2e test bed), through CRI exactly as
//! a kubelet drives it: the stored spec of a created container is read, hardened with
//! `Containers.Update` and verified, and the effect is checked *inside* the started container;
//! images are resolved the ways CRI names them and checked against what `ctr` reports.
//!
//! Needs root and `tests/testbed/setup.sh` run once. Run with `--nocapture` to see timings.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bulkhead_containerd::spec::{SPEC_TYPE_URL, facts};
use bulkhead_containerd::{Containerd, Error, Hardening};
use bulkhead_e2e::{ContainerSpec, Testbed, images};
use oci_spec::runtime::{
    Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

const IMAGE_NAME_ANNOTATION: &str = "io.kubernetes.cri.image-name";

/// Allow everything except `mkdir`/`mkdirat`, which fail with EPERM.
fn deny_mkdir() -> LinuxSeccomp {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(vec![
            LinuxSyscallBuilder::default()
                .names(vec!["mkdir".to_owned(), "mkdirat".to_owned()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(1u32)
                .build()
                .expect("static syscall rule"),
        ])
        .build()
        .expect("static seccomp profile")
}

fn hardening() -> Hardening {
    Hardening {
        keep_only_capabilities: Some([Capability::NetBindService].into()),
        seccomp: Some(deny_mkdir()),
        no_new_privileges: true,
        readonly_rootfs: true,
        env: vec![("BULKHEAD_HARDENED".to_owned(), "1".to_owned())],
        ..Hardening::default()
    }
}

fn status_line<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "n={} min={:.2}ms median={:.2}ms max={:.2}ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening_a_created_container_takes_effect_inside_it() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let containerd = Containerd::connect(testbed.containerd_socket()).await?;
    let pod = testbed.run_pod("harden", "default").await?;
    let spec = ContainerSpec::new("app", "busybox").command(["sleep", "3600"]);
    let id = testbed.create_container(&pod, spec.clone()).await?;

    // What containerd stored, and what this crate makes of it.
    let stored = containerd.get_stored_spec(&id).await?;
    eprintln!(
        "fields oci-spec does not model: {:?}",
        stored.unmodelled_fields()
    );
    let before = facts(&stored.spec);
    eprintln!("facts before: {before:#?}");
    let annotations = stored.spec.annotations().clone().unwrap_or_default();
    eprintln!(
        "image-name annotation: {:?}",
        annotations.get(IMAGE_NAME_ANNOTATION)
    );
    ensure!(
        before
            .capabilities
            .effective
            .iter()
            .any(|c| c == "CAP_NET_BIND_SERVICE")
    );
    ensure!(
        before.capabilities.effective.len() > 1,
        "expected CRI default caps: {before:?}"
    );
    ensure!(!before.no_new_privileges && !before.readonly_rootfs && !before.privileged);

    // Patch + verify, as the daemon does in PostCreateContainer.
    let outcome = containerd.harden(&id, &hardening()).await?;
    eprintln!(
        "harden (read+update+read back+verify): {:?}, update alone {:?}",
        outcome.elapsed, outcome.update
    );
    let after = facts(&outcome.spec);
    ensure!(
        after.capabilities.effective == ["CAP_NET_BIND_SERVICE"],
        "{after:?}"
    );
    ensure!(
        after.capabilities.bounding == ["CAP_NET_BIND_SERVICE"],
        "{after:?}"
    );
    ensure!(after.no_new_privileges && after.readonly_rootfs && after.seccomp);

    // The task created at start reads the patched spec.
    testbed.start_container(&id).await?;
    let (code, status, stderr) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    ensure!(code == 0, "cat failed: {stderr}");
    assert_eq!(
        status_line(&status, "CapEff"),
        Some("0000000000000400"),
        "{status}"
    );
    assert_eq!(
        status_line(&status, "CapBnd"),
        Some("0000000000000400"),
        "{status}"
    );
    assert_eq!(status_line(&status, "NoNewPrivs"), Some("1"), "{status}");
    assert_eq!(status_line(&status, "Seccomp"), Some("2"), "{status}");
    // EPERM from seccomp, not EROFS from the read-only rootfs: the profile is in force.
    let (code, _, stderr) = testbed.exec_sync(&id, ["mkdir", "/x"]).await?;
    eprintln!("mkdir /x: exit {code}: {}", stderr.trim());
    ensure!(
        code != 0 && stderr.contains("Operation not permitted"),
        "mkdir /x: {stderr}"
    );
    let (code, _, stderr) = testbed.exec_sync(&id, ["touch", "/x"]).await?;
    eprintln!("touch /x: exit {code}: {}", stderr.trim());
    ensure!(
        code != 0 && stderr.contains("Read-only file system"),
        "touch /x: {stderr}"
    );
    // Only mkdir is denied: other writes to a writable mount still work.
    let (code, _, stderr) = testbed.exec_sync(&id, ["touch", "/dev/shm/ok"]).await?;
    ensure!(code == 0, "touch /dev/shm/ok: {stderr}");
    // Once the task exists a patch would verify yet never reach the process: refused.
    let late = containerd.harden(&id, &hardening()).await.unwrap_err();
    ensure!(matches!(late, Error::TaskExists { .. }), "{late}");
    let (_, env, _) = testbed.exec_sync(&id, ["env"]).await?;
    ensure!(env.lines().any(|l| l == "BULKHEAD_HARDENED=1"), "{env}");

    // Timing on fresh created containers, one harden each (what a PostCreate does).
    let (mut samples, mut inspect_samples) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let id = testbed
            .create_container(
                &pod,
                ContainerSpec::new(&format!("t{i}"), images::BUSYBOX).command(["sleep", "3600"]),
            )
            .await?;
        let started = Instant::now();
        let inspection = containerd.inspect(&id).await?;
        inspect_samples.push(started.elapsed());
        ensure!(inspection.image.is_ok() && !inspection.facts.privileged);
        let started = Instant::now();
        containerd.harden(&id, &hardening()).await?;
        samples.push(started.elapsed());
    }
    eprintln!(
        "inspect timing (spec + sandbox spec + image, image cached after the first): {}",
        summary(inspect_samples)
    );
    eprintln!(
        "harden timing (task check + read + update + read back + verify): {}",
        summary(samples)
    );

    // The plain get/update pair, as a caller that builds its own spec would use it.
    let id = testbed
        .create_container(
            &pod,
            ContainerSpec::new("plain-update", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    let mut spec = containerd.get_spec(&id).await?;
    bulkhead_containerd::spec::set_no_new_privileges(&mut spec);
    containerd.update_spec(&id, &spec).await?;
    ensure!(
        containerd.get_spec(&id).await? == spec,
        "the stored spec differs from the one written"
    );

    // NRI CreateContainer runs before the record exists: that must be a typed error.
    let missing = containerd.get_spec("no-such-container").await.unwrap_err();
    ensure!(
        matches!(missing, Error::ContainerNotFound { .. }),
        "{missing}"
    );
    ensure!(SPEC_TYPE_URL.ends_with("/Spec"));

    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}

/// `(digest, ref)` for each line of `ctr images ls`.
fn ctr_images(testbed: &Testbed) -> anyhow::Result<Vec<(String, String)>> {
    let output = testbed
        .ctr()
        .args(["images", "ls"])
        .output()
        .context("while running ctr images ls")?;
    ensure!(output.status.success(), "ctr images ls failed");
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let reference = cols.next()?.to_owned();
            let digest = cols.nth(1)?.to_owned();
            Some((digest, reference))
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn resolves_images_as_cri_names_them() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let containerd = Containerd::connect(testbed.containerd_socket()).await?;
    let listed = ctr_images(&testbed)?;
    eprintln!("ctr images ls: {listed:#?}");
    let ctr_digest = |name: &str| {
        listed
            .iter()
            .find(|(_, r)| r == name)
            .map(|(d, _)| d.clone())
    };

    let started = Instant::now();
    let busybox = containerd.resolve_image("busybox").await?;
    let cold = started.elapsed();
    eprintln!("busybox: {busybox:#?}");
    let reference = busybox
        .reference
        .clone()
        .context("a name has a reference")?;
    assert_eq!(reference.normalized, "docker.io/library/busybox:latest");
    assert_eq!(
        busybox.name.as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    assert_eq!(
        Some(busybox.digest.clone()),
        ctr_digest("docker.io/library/busybox:latest")
    );
    assert_eq!(
        busybox.repo_digest.as_deref(),
        Some(format!("docker.io/library/busybox@{}", busybox.digest).as_str())
    );
    assert_eq!(busybox.config.user, None);
    let started = Instant::now();
    let again = containerd.resolve_image("busybox").await?;
    let warm = started.elapsed();
    assert_eq!(again, busybox);
    eprintln!("resolve busybox: cold {cold:?}, warm {warm:?}");

    // By image id (what a kubelet passes as ImageSpec.image), and by repo digest.
    let by_id = containerd.resolve_image(&busybox.config_digest).await?;
    assert_eq!(
        (by_id.digest.as_str(), by_id.config.clone()),
        (busybox.digest.as_str(), busybox.config.clone())
    );
    eprintln!(
        "by id: name {:?} repo digest {:?}",
        by_id.name, by_id.repo_digest
    );
    let pinned = format!("busybox@{}", busybox.digest);
    let by_digest = containerd.resolve_image(&pinned).await?;
    assert_eq!(by_digest.config_digest, busybox.config_digest);

    let nonroot = containerd.resolve_image(images::BUSYBOX_NONROOT).await?;
    assert_eq!(nonroot.config.user.as_deref(), Some("1000:1000"));
    assert_eq!(
        Some(nonroot.digest.clone()),
        ctr_digest(images::BUSYBOX_NONROOT)
    );

    let missing = containerd
        .resolve_image("no/such-image:1")
        .await
        .unwrap_err();
    ensure!(matches!(missing, Error::ImageNotFound { .. }), "{missing}");
    let invalid = containerd.resolve_image("Busy Box").await.unwrap_err();
    ensure!(
        matches!(invalid, Error::InvalidReference { .. }),
        "{invalid}"
    );

    // What the CRI annotation holds when a kubelet passes the image id plus the name the user
    // wrote (user_specified_image), and when only the name is given.
    let pod = testbed.run_pod("images", "default").await?;
    let kubelet_like = ContainerSpec::new("kubelet", "busybox")
        .command(["sleep", "1"])
        .with(|c| {
            c.image.as_mut().expect("set by new").image = busybox.config_digest.clone();
        });
    let id = testbed.create_container(&pod, kubelet_like).await?;
    let spec = containerd.get_spec(&id).await?;
    let annotations = spec.annotations().clone().unwrap_or_default();
    eprintln!(
        "kubelet-like annotations: {:?}",
        annotations
            .iter()
            .filter(|(k, _)| k.contains("image"))
            .collect::<Vec<_>>()
    );
    let written = annotations
        .get(IMAGE_NAME_ANNOTATION)
        .context("no image-name annotation")?;
    assert_eq!(
        containerd.resolve_image(written).await?.digest,
        busybox.digest
    );

    // The image of a container comes from CRI's record (ImageRef), described with the name the
    // user wrote — not the record's `image` field, which names another tag of the same digest.
    let by_name = testbed
        .create_container(
            &pod,
            ContainerSpec::new("by-name", "busybox").command(["sleep", "1"]),
        )
        .await?;
    for id in [&id, &by_name] {
        let image = containerd.container_image(id).await?;
        assert_eq!(image.as_written, "busybox");
        let reference = image.reference.as_ref().context("written name parsed")?;
        assert_eq!(reference.normalized, "docker.io/library/busybox:latest");
        assert_eq!(image.digest, busybox.digest);
        assert_eq!(image.config_digest, busybox.config_digest);
        assert_eq!(image.repo_digest, busybox.repo_digest);
    }
    let inspection = containerd.inspect(&by_name).await?;
    assert_eq!(inspection.image?.config.cmd, ["sh"]);
    assert_eq!(inspection.facts.host_namespaces, ["network", "uts"]);
    testbed.stop_and_remove_pod(&pod).await?;
    Ok(())
}

/// Stores `bytes` in containerd's content store (one Commit message, as a GC root) and returns
/// its digest.
async fn put_blob(testbed: &Testbed, bytes: &[u8]) -> anyhow::Result<String> {
    use containerd_client::services::v1::WriteContentRequest;
    use containerd_client::services::v1::content_client::ContentClient;
    use sha2::Digest as _;

    let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
    let message = WriteContentRequest {
        action: 2, // WriteAction::Commit, with all the data in the same message
        r#ref: format!("bulkhead-test-{digest}"),
        total: i64::try_from(bytes.len())?,
        expected: digest.clone(),
        offset: 0,
        data: bytes.to_vec(),
        // Unreferenced content is garbage the next collection removes (seen: the index was
        // gone before the image record naming it existed). A GC root label keeps it.
        labels: [(
            "containerd.io/gc.root".to_owned(),
            "bulkhead-test".to_owned(),
        )]
        .into(),
    };
    let mut request = tonic::Request::new(tonic::codegen::tokio_stream::iter([message]));
    request
        .metadata_mut()
        .insert("containerd-namespace", "k8s.io".parse()?);
    let mut responses = ContentClient::new(testbed.channel())
        .write(request)
        .await?
        .into_inner();
    while responses.message().await?.is_some() {}
    Ok(digest)
}

/// Stores an index of `entries` (`(digest, size, architecture)`) of media type `media_type`
/// and names it `name`, like a multi-platform image pulled for one platform.
async fn put_index(
    testbed: &Testbed,
    name: &str,
    media_type: &str,
    entries: &[(&str, u64, &str)],
) -> anyhow::Result<String> {
    use containerd_client::services::v1::images_client::ImagesClient;
    use containerd_client::services::v1::{CreateImageRequest, Image};
    use containerd_client::types::Descriptor;

    let manifests: Vec<_> = entries
        .iter()
        .map(|(digest, size, arch)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": size,
                "platform": {"os": "linux", "architecture": arch}
            })
        })
        .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media_type, "manifests": manifests
    }))?;
    let digest = put_blob(testbed, &index).await?;
    let mut request = tonic::Request::new(CreateImageRequest {
        image: Some(Image {
            name: name.to_owned(),
            target: Some(Descriptor {
                media_type: media_type.to_owned(),
                digest: digest.clone(),
                size: i64::try_from(index.len())?,
                annotations: Default::default(),
            }),
            ..Default::default()
        }),
        source_date_epoch: None,
    });
    request
        .metadata_mut()
        .insert("containerd-namespace", "k8s.io".parse()?);
    ImagesClient::new(testbed.channel()).create(request).await?;
    Ok(digest)
}

#[tokio::test(flavor = "multi_thread")]
async fn picks_this_platform_out_of_an_index_or_manifest_list() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let containerd = Containerd::connect(testbed.containerd_socket()).await?;
    let busybox = containerd.resolve_image(images::BUSYBOX).await?;
    let absent = format!("sha256:{}", "0".repeat(64));
    // The arm64 entry's manifest is not in the store, as after a single-platform pull.
    let entries = [
        (absent.as_str(), 1234, "arm64"),
        (busybox.manifest_digest.as_str(), 500, "amd64"),
    ];

    for (name, media_type) in [
        (
            "docker.io/bulkhead/multi:oci",
            "application/vnd.oci.image.index.v1+json",
        ),
        (
            "docker.io/bulkhead/multi:docker",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ] {
        let index = put_index(&testbed, name, media_type, &entries).await?;
        let multi = containerd.resolve_image(name).await?;
        assert_eq!(multi.digest, index, "{name}");
        assert_eq!(multi.manifest_digest, busybox.manifest_digest, "{name}");
        assert_eq!(multi.config_digest, busybox.config_digest, "{name}");
        assert_eq!(
            multi.repo_digest,
            Some(format!("docker.io/bulkhead/multi@{index}"))
        );
        // Pinned by the index digest, as users write it.
        let pinned = containerd
            .resolve_image(&format!("bulkhead/multi@{index}"))
            .await?;
        assert_eq!(pinned.manifest_digest, busybox.manifest_digest);
    }

    put_index(
        &testbed,
        "docker.io/bulkhead/arm-only:1",
        "application/vnd.oci.image.index.v1+json",
        &entries[..1],
    )
    .await?;
    let error = containerd
        .resolve_image("bulkhead/arm-only:1")
        .await
        .unwrap_err();
    ensure!(
        matches!(error, Error::NoPlatform { ref platform, .. } if platform == "linux/amd64"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn privileged_and_host_namespace_facts() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let containerd = Containerd::connect(testbed.containerd_socket()).await?;

    // The test bed's pods use the host network (no CNI), with their own PID namespace.
    let pod = testbed.run_pod("plain", "default").await?;
    let plain_id = testbed
        .create_container(
            &pod,
            ContainerSpec::new("plain", images::BUSYBOX).command(["sleep", "1"]),
        )
        .await?;
    let (plain_spec, plain) = containerd.container_facts(&plain_id).await?;
    eprintln!("plain container: {plain:?}");
    eprintln!(
        "plain namespaces: {:?}",
        plain_spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
    );
    assert_eq!(plain.host_namespaces, ["network", "uts"], "{plain:?}");
    // The container alone joins the sandbox's namespaces by path: it looks private.
    assert!(facts(&plain_spec).host_namespaces.is_empty());
    assert!(!plain.privileged);
    assert!(!plain.privilege.sys_admin && !plain.privilege.sysfs_writable);
    assert_eq!(plain.uid, 0);

    let nonroot_id = testbed
        .create_container(
            &pod,
            ContainerSpec::new("nonroot", images::BUSYBOX_NONROOT).command(["sleep", "1"]),
        )
        .await?;
    let (_, nonroot) = containerd.container_facts(&nonroot_id).await?;
    assert_eq!((nonroot.uid, nonroot.gid), (1000, 1000));

    let ppod = testbed.run_privileged_pod("priv", "default").await?;
    let privileged_id = testbed
        .create_container(
            &ppod,
            ContainerSpec::new("priv", images::BUSYBOX)
                .command(["sleep", "1"])
                .privileged(true),
        )
        .await?;
    let (privileged_spec, privileged) = containerd.container_facts(&privileged_id).await?;
    eprintln!("privileged container: {privileged:?}");
    let annotations = privileged_spec.annotations().clone().unwrap_or_default();
    eprintln!(
        "privileged annotations: {:?}",
        annotations.keys().collect::<Vec<_>>()
    );
    ensure!(privileged.privileged, "{privileged:?}");
    ensure!(privileged.privilege.all_devices_allowed, "{privileged:?}");
    ensure!(
        privileged.capabilities.effective.len() >= 38,
        "all capabilities: {privileged:?}"
    );
    ensure!(
        !annotations.keys().any(|k| k.contains("privileged")),
        "CRI now writes a privileged annotation"
    );

    testbed.stop_and_remove_pod(&pod).await?;
    testbed.stop_and_remove_pod(&ppod).await?;
    Ok(())
}
