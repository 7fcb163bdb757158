//! A plugin author's whole path against a real containerd: `bulkhead plugin new` scaffolds a
//! crate, it builds into a component, `bulkhead check-config` accepts it with the config the
//! scaffold documents (and names a misspelled key), and `bulkhead run` enforces it on real
//! containers — a root container outside the allowed namespaces is refused, a non-root one
//! runs without CAP_NET_RAW.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use bulkhead_e2e::{ContainerSpec, Testbed, bulkhead_binary, images};
use tonic::Code;

/// Scaffolds `name` under `dir` and builds its component; returns the `.wasm`.
fn scaffold_and_build(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let crate_dir = dir.join(name);
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/rust");
    let out = Command::new(bulkhead_binary()?)
        .args(["plugin", "new", name, "--dir"])
        .arg(&crate_dir)
        .arg("--sdk-path")
        .arg(&sdk)
        .output()?;
    ensure!(
        out.status.success(),
        "plugin new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Share the wasm build of the SDK with the rest of the suite when run from tests/run.sh.
    let target = std::env::var_os("BULKHEAD_COMPONENT_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("target"));
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&crate_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .context("while running cargo")?;
    ensure!(
        out.status.success(),
        "building the scaffold: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_"))))
}

fn plugin_config(wasm: &Path, config: &str) -> String {
    format!(
        "[[plugins]]\npath = {:?}\n[plugins.config]\n{config}\n",
        wasm.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn from_plugin_new_to_enforcement_on_real_containers() -> anyhow::Result<()> {
    let testbed = Testbed::start().await?;
    let wasm = scaffold_and_build(testbed.dir(), "no-root")?;

    // check-config: the documented config passes, a misspelled key is named before any container.
    let checked = |config: &str| -> anyhow::Result<std::process::Output> {
        let path = testbed.dir().join("check.toml");
        std::fs::write(&path, plugin_config(&wasm, config))?;
        Ok(Command::new(bulkhead_binary()?)
            .arg("check-config")
            .arg(&path)
            .output()?)
    };
    let good = checked("allowed-namespaces = [\"kube-system\"]")?;
    ensure!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = checked("allowed-namespace = [\"kube-system\"]")?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("allowed-namespace"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let config = plugin_config(&wasm, "allowed-namespaces = [\"kube-system\"]");
    let _bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(&config)?, "bulkhead")
        .await?;
    let pod = testbed.run_pod("authored", "default").await?;
    let sleeper =
        |name: &str, image: &str| ContainerSpec::new(name, image).command(["sleep", "3600"]);

    let root = testbed
        .create_container(&pod, sleeper("root", images::BUSYBOX))
        .await?;
    let refused = testbed.start_container(&root).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("runs as root"),
        "{}",
        refused.message()
    );

    let nonroot = testbed
        .run_container(&pod, sleeper("nonroot", images::BUSYBOX_NONROOT))
        .await?;
    let (_, status, _) = testbed
        .exec_sync(&nonroot, ["cat", "/proc/self/status"])
        .await?;
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(str::trim)
        .context("no CapBnd line")?;
    let caps = u64::from_str_radix(bounding, 16)?;
    assert_eq!(caps & (1 << 13), 0, "CAP_NET_RAW is still there: {status}");
    let no_new_privs = status
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'));
    assert!(no_new_privs, "{status}");
    Ok(())
}
