//! The README's first command: a private containerd 2.1 with NRI, bulkhead registered with its
//! four first-party plugins, and real containers created through the CRI API — one hardened,
//! one privileged (denied), one from a denied registry, one with a mounted secret — followed by
//! the audit records bulkhead wrote about them.
//!
//! Run it with `tests/demo.sh` (which sets up the test bed and builds bulkhead first).

use std::time::Instant;

use anyhow::Context;
use bulkhead_e2e::{ContainerSpec, Testbed, images};

/// The baseline policy, plus a denied registry and one secret grant so every plugin has
/// something to show.
const POLICY: &str = r#"
[[plugins]]
builtin = "image-policy"
[plugins.config]
denied-registries = ["quay.io"]

[[plugins]]
builtin = "seccomp"

[[plugins]]
builtin = "capabilities"
[plugins.config]
drop = ["CAP_NET_RAW"]
exempt-namespaces = ["kube-system"]

[[plugins]]
builtin = "secrets"
[plugins.config]
grants = [{ namespaces = ["demo"], secrets = ["api-token"] }]

# The host's own grant: the secrets plugin may mount api-token into namespace demo.
[[secrets.grants]]
plugins = ["secrets"]
namespaces = ["demo"]
secrets = ["api-token"]
"#;

fn sleeper(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec::new(name, image).command(["sleep", "3600"])
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    println!("==> starting a private containerd 2.1 with NRI enabled");
    let testbed = Testbed::start().await?;
    std::fs::create_dir_all(testbed.secrets_dir())?;
    std::fs::write(
        testbed.secrets_dir().join("api-token"),
        "t0ken-from-the-vault\n",
    )?;

    println!("==> starting bulkhead with image-policy, seccomp, capabilities and secrets");
    let started = Instant::now();
    let bulkhead = testbed
        .start_bulkhead(testbed.bulkhead_command_with_config(POLICY)?, "bulkhead")
        .await?;
    println!(
        "    registered and synchronized in {} ms (log: {}, audit: {})",
        started.elapsed().as_millis(),
        bulkhead.log_path().display(),
        testbed.audit_path().display()
    );

    let pod = testbed
        .run_pod_with("web", "demo", |config| {
            config.annotations.insert(
                "secrets.bulkhead.dev/api-token".into(),
                "/run/secrets/token".into(),
            );
        })
        .await?;
    let privileged_pod = testbed.run_privileged_pod("ops", "demo").await?;

    println!("\n==> 1. an unconfined busybox is hardened (seccomp profile, NET_RAW dropped)");
    let app = testbed
        .run_container(&pod, sleeper("app", images::BUSYBOX))
        .await
        .context("the hardened container did not run")?;
    let (_, status, _) = testbed
        .exec_sync(&app, ["cat", "/proc/self/status"])
        .await?;
    for line in status
        .lines()
        .filter(|l| l.starts_with("Seccomp:") || l.starts_with("CapEff:"))
    {
        println!("    {line}");
    }
    let (_, _, stderr) = testbed.exec_sync(&app, ["unshare", "-U", "true"]).await?;
    println!("    $ unshare -U true  ->  {}", stderr.trim());
    println!("    secret mounted at /run/secrets/token:");
    let (_, stat, _) = testbed
        .exec_sync(&app, ["stat", "-c", "%A %U %n", "/run/secrets/token"])
        .await?;
    println!("    {}", stat.trim());

    println!("\n==> 2. a privileged container is denied");
    match testbed
        .run_container(
            &privileged_pod,
            sleeper("root-of-all-evil", images::BUSYBOX).privileged(true),
        )
        .await
    {
        Err(status) => println!("    CRI error: {:?}: {}", status.code(), status.message()),
        Ok(_) => println!("    !! it ran"),
    }

    println!("\n==> 3. an image from a denied registry is refused");
    match testbed
        .create_container(&pod, sleeper("from-quay", images::QUAY_BUSYBOX))
        .await
    {
        Err(status) => println!("    CRI error: {:?}: {}", status.code(), status.message()),
        Ok(_) => println!("    !! it was created"),
    }

    println!("\n==> 4. the audit records (one JSON line per decision; summarized)");
    for record in testbed.audit_records() {
        let verdicts: Vec<String> = record["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let verdict = match &p["outcome"]["decided"]["verdict"] {
                    serde_json::Value::String(v) => v.clone(),
                    other if other.get("deny").is_some() => "deny".into(),
                    _ => "failed".into(),
                };
                format!("{}={verdict}", p["name"].as_str().unwrap_or("?"))
            })
            .collect();
        println!(
            "    {:20} {:17} {:22} {} [{}]",
            record["event"].as_str().unwrap_or_default(),
            record["container"]["name"].as_str().unwrap_or_default(),
            record["applied"]["action"].as_str().unwrap_or_default(),
            record["image"]["normalized"].as_str().unwrap_or_default(),
            verdicts.join(" ")
        );
    }
    println!("\n==> done; tearing the test bed down");
    Ok(())
}
