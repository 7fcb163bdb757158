//! `bulkhead view` against a real container (containerd 2.1.9, CRI): the view it prints carries
//! what plugins are given — pod metadata and labels, the image normalized and resolved, the
//! spec's capabilities and seccomp profile, the process — and `bulkhead eval` takes it as is.
//! No bulkhead daemon runs: `view` needs only containerd's gRPC socket.

use std::process::{Command, Output};

use anyhow::{Context, ensure};
use bulkhead_e2e::{ContainerSpec, Testbed, bulkhead_binary, images};
use serde_json::Value;

/// Runs `bulkhead view <id> --containerd-socket <testbed's> <extra...>`.
fn run_view(testbed: &Testbed, id: &str, extra: &[&str]) -> anyhow::Result<Output> {
    Command::new(bulkhead_binary()?)
        .arg("view")
        .arg(id)
        .arg("--containerd-socket")
        .arg(testbed.containerd_socket())
        .args(extra)
        .output()
        .context("while running bulkhead view")
}

/// The JSON a successful `view` printed.
fn printed(out: &Output) -> anyhow::Result<Value> {
    ensure!(
        out.status.success(),
        "bulkhead view failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("while parsing the printed view")
}

#[tokio::test(flavor = "multi_thread")]
async fn view_prints_what_plugins_get_for_a_real_container() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let pod = testbed.run_pod("viewed", "team-view").await?;
    let spec = ContainerSpec::new("app", images::BUSYBOX)
        .command(["sleep", "3600"])
        .seccomp_runtime_default()
        .label("tier", "front")
        .annotation("example.com/owner", "authors");
    let id = testbed.run_container(&pod, spec).await?;

    let out = run_view(&testbed, &id, &[])?;
    let view = printed(&out)?;
    assert_eq!(view["event"], "post-create-container");
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["name"], "app");
    assert_eq!(view["pod-sandbox-id"], pod.id.as_str());
    assert_eq!(view["pod"]["name"], "viewed");
    assert_eq!(view["pod"]["namespace"], "team-view");
    assert_eq!(
        view["pod"]["uid"],
        pod.config.metadata.as_ref().unwrap().uid.as_str()
    );
    // Pod labels are in no spec: they come from the sandbox's CRI record, as for NRI.
    assert_eq!(view["pod"]["labels"]["app"], "viewed", "{view}");
    assert_eq!(view["labels"]["tier"], "front", "{view}");
    assert_eq!(
        view["annotations"]["example.com/owner"], "authors",
        "{view}"
    );
    assert_eq!(
        view["annotations"]["io.kubernetes.cri.image-name"],
        images::BUSYBOX
    );

    let image = &view["image"];
    assert_eq!(image["reference"], images::BUSYBOX);
    assert_eq!(image["normalized"], "docker.io/library/busybox:latest");
    assert_eq!(image["tag"], "latest");
    assert!(
        image["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:") && d.len() == 71),
        "{image}"
    );
    assert!(image["config"].is_object(), "{image}");

    assert_eq!(
        view["process"]["args"],
        serde_json::json!(["sleep", "3600"])
    );
    assert_eq!(view["process"]["user"]["uid"], 0);
    assert!(view["process"]["env"].is_array(), "{view}");
    assert_eq!(view["process"]["cwd"], "/", "{view}");
    assert_eq!(
        view["seccomp"]["default-action"], "SCMP_ACT_ERRNO",
        "{view}"
    );
    let effective = view["capabilities"]["effective"]
        .as_array()
        .context("no effective capabilities")?;
    assert!(effective.iter().any(|c| c == "CAP_CHOWN"), "{view}");
    assert!(!effective.iter().any(|c| c == "CAP_SYS_ADMIN"), "{view}");
    assert_eq!(view["privileged"], false);
    assert_eq!(view["host-namespaces"]["network"], true, "{view}");
    assert_eq!(view["host-namespaces"]["pid"], false, "{view}");
    assert!(
        view["mounts"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["destination"] == "/proc")),
        "{view}"
    );

    // At create-container the spec is not known to plugins: no capabilities or seccomp.
    let early = printed(&view_at(&testbed, &id, "create-container")?)?;
    assert_eq!(early["event"], "create-container");
    assert_eq!(early["capabilities"]["effective"], serde_json::json!([]));
    assert!(early["seccomp"].is_null(), "{early}");
    assert_eq!(
        early["process"]["args"],
        serde_json::json!(["sleep", "3600"])
    );
    assert_eq!(early["image"]["digest"], view["image"]["digest"]);

    // The printed view is a valid `bulkhead eval --container` input (0 allows, 2 denies).
    let file = testbed.dir().join("view.json");
    std::fs::write(&file, &out.stdout)?;
    let eval = Command::new(bulkhead_binary()?)
        .arg("eval")
        .arg("--container")
        .arg(&file)
        .output()?;
    let stderr = String::from_utf8_lossy(&eval.stderr);
    assert!(matches!(eval.status.code(), Some(0 | 2)), "{stderr}");
    let report: Value = serde_json::from_slice(&eval.stdout).context("eval's report")?;
    assert_eq!(report["event"], "post-create-container", "{report}");

    // A pod sandbox id is refused: plugins are never asked about sandboxes.
    let sandbox = run_view(&testbed, &pod.id, &[])?;
    assert!(!sandbox.status.success());
    assert!(
        String::from_utf8_lossy(&sandbox.stderr).contains("pod sandbox"),
        "{}",
        String::from_utf8_lossy(&sandbox.stderr)
    );
    Ok(())
}

fn view_at(testbed: &Testbed, id: &str, event: &str) -> anyhow::Result<Output> {
    run_view(testbed, id, &["--event", event])
}
