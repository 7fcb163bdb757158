//! Plugins in a real OCI registry (Debian's `docker-registry` on loopback): a component pushed
//! in the Wasm artifact layout is pulled back byte for byte, by tag and by digest; the pull
//! refuses a wrong digest and a blob tampered with in the registry's storage; pinned components
//! come from the verified cache once the registry is gone, and a tampered cache is not used.

use std::time::Duration;

use bulkhead_e2e::registry::Registry;
use bulkhead_e2e::{ContainerSpec, Testbed, images, status_field};
use bulkhead_registry::{Registry as Client, RegistryError, RegistryOptions};
use bulkhead_signature::SigningKey;

fn scripted() -> Vec<u8> {
    std::fs::read(bulkhead_test_plugins::SCRIPTED).expect("the scripted test plugin")
}

fn client(cache: Option<&std::path::Path>) -> Client {
    Client::new(RegistryOptions {
        cache_dir: cache.map(std::path::Path::to_path_buf),
        ..RegistryOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_component_is_pulled_back_verified_by_tag_and_by_digest() -> anyhow::Result<()> {
    let registry = Registry::start().await?;
    let wasm = scripted();
    let tag = format!("{}/plugins/scripted:1.0.0", registry.address());
    let digest = client(None).push(&wasm, &tag).await?;
    assert!(digest.starts_with("sha256:"), "{digest}");
    let again = client(None).push(&wasm, &tag).await?;
    assert_eq!(again, digest, "the same component gives the same digest");

    let by_tag = client(None).pull(&tag).await?;
    assert_eq!(by_tag.wasm, wasm);
    assert_eq!(by_tag.manifest_digest, digest);
    let pinned = format!("{tag}@{digest}");
    let by_digest = client(None).pull(&pinned).await?;
    assert_eq!(by_digest.wasm, wasm);

    let wrong = format!("{tag}@sha256:{}", "0".repeat(64));
    let error = client(None).pull(&wrong).await.unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Registry { .. } | RegistryError::DigestMismatch { .. }
        ),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_changed_in_the_registry_is_refused() -> anyhow::Result<()> {
    let registry = Registry::start().await?;
    let wasm = scripted();
    let tag = format!("{}/plugins/tampered:1.0.0", registry.address());
    client(None).push(&wasm, &tag).await?;
    // Someone with access to the registry's storage swaps the component's bytes.
    let blob = registry.blob_path(&bulkhead_registry::sha256_digest(&wasm));
    let mut evil = std::fs::read(&blob)?;
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    std::fs::write(&blob, evil)?;
    let error = client(None).pull(&tag).await.unwrap_err().to_string();
    // oci-client checks the digest as it reads the blob; bulkhead checks it again after.
    assert!(
        error.contains("wasm layer") && error.to_lowercase().contains("digest"),
        "{error}"
    );
    assert!(
        error.contains(&bulkhead_registry::sha256_digest(&wasm)),
        "the error names the digest the manifest promised: {error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_components_come_from_the_verified_cache_when_the_registry_is_gone()
-> anyhow::Result<()> {
    let mut registry = Registry::start().await?;
    let cache = tempfile::tempdir()?;
    let wasm = scripted();
    let tag = format!("{}/plugins/offline:1.0.0", registry.address());
    let digest = client(None).push(&wasm, &tag).await?;
    let pinned = format!("{tag}@{digest}");
    let pulled = client(Some(cache.path())).pull(&pinned).await?;
    assert!(!pulled.from_cache);
    registry.stop().await?;

    let offline = client(Some(cache.path())).pull(&pinned).await?;
    assert!(
        offline.from_cache,
        "the registry is gone: it must come from the cache"
    );
    assert_eq!(offline.wasm, wasm);
    // A tag is never served from the cache: it may have moved.
    assert!(client(Some(cache.path())).pull(&tag).await.is_err());

    // A cached blob changed on disk is not used (and with no registry, the pull fails).
    let hex = bulkhead_registry::sha256_digest(&wasm)["sha256:".len()..].to_string();
    let cached = cache.path().join("blobs").join(hex);
    let mut evil = std::fs::read(&cached)?;
    evil.push(0);
    std::fs::write(&cached, evil)?;
    let error = client(Some(cache.path())).pull(&pinned).await.unwrap_err();
    assert!(matches!(error, RegistryError::Registry { .. }), "{error}");
    Ok(())
}

/// Signs the artifact `digest` of `repository` with `key` and stores the signature where cosign
/// would.
async fn sign(key: &SigningKey, repository: &str, digest: &str) -> anyhow::Result<()> {
    let signed = key.sign_manifest(repository, digest)?;
    client(None)
        .push_signature(repository, digest, &(signed.payload, signed.signature_b64))
        .await?;
    Ok(())
}

/// The `[[plugins]]` entry of the scripted plugin at `reference`, and `[registry] keys`.
fn config(reference: &str, key_file: &std::path::Path) -> String {
    format!(
        "[registry]\nkeys = [{:?}]\n\n[[plugins]]\noci = \"{reference}\"\n[plugins.config]\nname = \"from-registry\"\npoints = [\"post-create-container\"]\nno-new-privileges = true\n",
        key_file.display().to_string()
    )
}

/// Starts bulkhead with `body`; it must refuse to start, with an error line containing every
/// one of `expected`.
async fn refuses_to_start(
    testbed: &Testbed,
    name: &str,
    body: &str,
    expected: &[&str],
) -> anyhow::Result<()> {
    let mut failing = testbed.spawn(name, testbed.bulkhead_command_with_config(body)?)?;
    let line = failing
        .wait_for_log_line("bulkhead: error:", Duration::from_secs(20))
        .await?;
    for part in expected {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        match failing.try_wait()? {
            Some(status) => break status,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => panic!("bulkhead kept running without its plugin"),
        }
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(
        !failing.log().contains("connected and synchronized"),
        "bulkhead started without its plugin"
    );
    Ok(())
}

/// bulkhead configured by reference: the plugin is pulled and its cosign signature verified at
/// start, and it decides real containers. Refused at start, naming the entry and why, with no
/// chain loaded half: a digest the registry does not have, an unsigned component, and one
/// signed by a key the operator does not trust.
#[tokio::test(flavor = "multi_thread")]
async fn bulkhead_runs_a_signed_plugin_pulled_by_digest_on_real_containers() -> anyhow::Result<()> {
    let registry = Registry::start().await?;
    let dir = tempfile::tempdir()?;
    let trusted = SigningKey::generate()?;
    let stranger = SigningKey::generate()?;
    let key_file = dir.path().join("cosign.pub");
    std::fs::write(&key_file, trusted.public_key().to_pem()?)?;

    let repository = format!("{}/plugins/scripted", registry.address());
    let digest = client(None)
        .push(&scripted(), &format!("{repository}:1.0.0"))
        .await?;
    sign(&trusted, &repository, &digest).await?;
    let pinned = format!("{repository}:1.0.0@{digest}");

    let testbed = Testbed::start().await?;
    let mut bulkhead = testbed
        .start_bulkhead(
            testbed.bulkhead_command_with_config(&config(&pinned, &key_file))?,
            "bulkhead",
        )
        .await?;
    let log = bulkhead.log();
    assert!(log.contains("plugin signature verified"), "{log}");
    assert!(log.contains(trusted.public_key().fingerprint()), "{log}");

    let pod = testbed.run_pod("web", "default").await?;
    let id = testbed
        .run_container(
            &pod,
            ContainerSpec::new("app", images::BUSYBOX).command(["sleep", "3600"]),
        )
        .await?;
    // The pulled plugin's decision reached the real container.
    let (_, status, _) = testbed.exec_sync(&id, ["cat", "/proc/self/status"]).await?;
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1", "{status}");
    let record = &testbed.audit_records_for("app", "PostCreateContainer")[0];
    assert_eq!(record["plugins"][0]["name"], "from-registry", "{record}");
    bulkhead.terminate(Duration::from_secs(5)).await?;

    let missing = format!("sha256:{}", "0".repeat(64));
    refuses_to_start(
        &testbed,
        "bulkhead-missing",
        &config(&format!("{repository}:1.0.0@{missing}"), &key_file),
        &["plugins[0]", &missing],
    )
    .await?;

    // Another component, never signed.
    let unsigned_repository = format!("{}/plugins/unsigned", registry.address());
    let noop = std::fs::read(bulkhead_test_plugins::NOOP)?;
    let unsigned = client(None)
        .push(&noop, &format!("{unsigned_repository}:1.0.0"))
        .await?;
    refuses_to_start(
        &testbed,
        "bulkhead-unsigned",
        &config(&format!("{unsigned_repository}@{unsigned}"), &key_file),
        &["plugins[0]", "no valid cosign signature"],
    )
    .await?;

    // The same component signed by someone else's key.
    sign(&stranger, &unsigned_repository, &unsigned).await?;
    refuses_to_start(
        &testbed,
        "bulkhead-stranger",
        &config(&format!("{unsigned_repository}@{unsigned}"), &key_file),
        &["plugins[0]", "no valid cosign signature"],
    )
    .await?;
    Ok(())
}

/// The author's path with the CLI alone: keygen, push, sign, verify and pull against the real
/// registry; verification with a key that did not sign fails.
#[tokio::test(flavor = "multi_thread")]
async fn authors_publish_sign_and_verify_with_the_cli() -> anyhow::Result<()> {
    let registry = Registry::start().await?;
    let dir = tempfile::tempdir()?;
    let bulkhead = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let out = std::process::Command::new(bulkhead_e2e::bulkhead_binary()?)
            .args(args)
            .output()?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    };
    let path = |name: &str| dir.path().join(name).display().to_string();
    let tag = format!("{}/plugins/cli:1.0.0", registry.address());

    let (ok, out) = bulkhead(&["plugin", "keygen", "--output", &path("author")])?;
    assert!(ok, "{out}");
    let (ok, _) = bulkhead(&["plugin", "keygen", "--output", &path("other")])?;
    assert!(ok);
    let (ok, out) = bulkhead(&["plugin", "push", bulkhead_test_plugins::SCRIPTED, &tag])?;
    assert!(ok, "{out}");
    let digest = out
        .lines()
        .find_map(|line| line.strip_prefix("digest: "))
        .expect("push prints the digest")
        .to_string();
    assert!(
        out.contains(&format!("@{digest}")),
        "push prints the pinned reference: {out}"
    );
    let pinned = format!("{tag}@{digest}");

    let (ok, out) = bulkhead(&["plugin", "sign", &tag, "--key", &path("author.key")])?;
    assert!(ok, "{out}");
    let (ok, out) = bulkhead(&["plugin", "verify", &pinned, "--key", &path("author.pub")])?;
    assert!(ok, "{out}");
    assert!(out.contains("verified"), "{out}");
    let (ok, out) = bulkhead(&["plugin", "verify", &pinned, "--key", &path("other.pub")])?;
    assert!(!ok, "verified with a key that did not sign: {out}");

    let (ok, out) = bulkhead(&["plugin", "pull", &pinned, "-o", &path("pulled.wasm")])?;
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(path("pulled.wasm"))?,
        std::fs::read(bulkhead_test_plugins::SCRIPTED)?
    );
    Ok(())
}
