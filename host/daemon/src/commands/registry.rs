//! `bulkhead plugin push FILE REF`, `pull REF -o FILE`, `keygen`, `sign REF --key` and
//! `verify REF --key`: plugin components to and from OCI registries in the Wasm artifact
//! layout, and their cosign key-based signatures (stored where cosign stores them, so `cosign
//! verify --key` accepts them too), for authors publishing and operators checking what a
//! reference holds. `push` prints the digest to pin in `[[plugins]] oci`.

use std::path::PathBuf;

use anyhow::Context;
use bulkhead_registry::auth::Credentials;
use bulkhead_registry::{Registry, RegistryOptions};

/// How to reach the registry (shared by push and pull).
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// A docker-style config.json with credentials [default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json, when it exists].
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Speak plain HTTP to this registry (`host:port`); loopback registries always may.
    /// Repeatable.
    #[arg(long, value_name = "REGISTRY")]
    pub insecure: Vec<String>,
}

impl RegistryArgs {
    fn registry(&self) -> anyhow::Result<Registry> {
        let default = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
            .map(|dir| dir.join("config.json"))
            .filter(|path| path.exists());
        let credentials = match self.auth_file.clone().or(default) {
            Some(path) => Credentials::from_file(&path)?,
            None => Credentials::default(),
        };
        Ok(Registry::new(RegistryOptions {
            insecure: self.insecure.clone(),
            credentials,
            ..RegistryOptions::default()
        }))
    }
}

/// Arguments of `bulkhead plugin push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Where to push it: `registry/repository:tag`.
    pub reference: String,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `bulkhead plugin pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to pull: `registry/repository:tag` or `...@sha256:<digest>`.
    pub reference: String,
    /// Where to write the `.wasm`.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Pushes, then prints the digest and the pinned reference.
pub fn push(args: PushArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let registry = args.registry.registry()?;
    let digest = runtime()?.block_on(registry.push(&wasm, &args.reference))?;
    let repository = repository_of(&args.reference);
    println!("pushed {} ({} bytes)", args.file.display(), wasm.len());
    println!("digest: {digest}");
    println!("pin it: oci = \"{repository}@{digest}\"");
    Ok(())
}

/// Pulls (verified), writes the component, prints its digest.
pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let registry = args.registry.registry()?;
    let component = runtime()?.block_on(registry.pull(&args.reference))?;
    std::fs::write(&args.output, &component.wasm)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "pulled {} ({} bytes) to {}",
        args.reference,
        component.wasm.len(),
        args.output.display()
    );
    println!("digest: {}", component.manifest_digest);
    Ok(())
}

/// Arguments of `bulkhead plugin keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key (the private key, PKCS#8 PEM, mode 0600) and PREFIX.pub (the public
    /// key for `[registry] keys`).
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    pub output: PathBuf,
}

/// Arguments of `bulkhead plugin sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// What to sign: `registry/repository:tag` (resolved to its digest now) or
    /// `...@sha256:<digest>`.
    pub reference: String,
    /// The private key (PKCS#8 PEM, ECDSA P-256, from `bulkhead plugin keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `bulkhead plugin verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// What to verify: `...@sha256:<digest>` (or a tag, resolved now).
    pub reference: String,
    /// A public key the signature must verify with (PEM); repeatable.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Writes a new key pair.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = bulkhead_signature::SigningKey::generate()?;
    let private = args.output.with_extension("key");
    let public = args.output.with_extension("pub");
    let pem = key.to_pkcs8_pem()?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut file| file.write_all(pem.as_bytes()))
        .with_context(|| format!("cannot write {} (it must not exist yet)", private.display()))?;
    std::fs::write(&public, key.public_key().to_pem()?)
        .with_context(|| format!("cannot write {}", public.display()))?;
    println!("private key: {} (keep it secret)", private.display());
    println!("public key:  {} (for [registry] keys)", public.display());
    println!("fingerprint: {}", key.public_key().fingerprint());
    Ok(())
}

/// Signs the artifact's digest and pushes the signature next to it.
pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let key = bulkhead_signature::SigningKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("the key {}", args.key.display()))?;
    let registry = args.registry.registry()?;
    let runtime = runtime()?;
    let component = runtime.block_on(registry.pull(&args.reference))?;
    let repository = repository_of(&args.reference);
    let signed = key.sign_manifest(repository, &component.manifest_digest)?;
    runtime.block_on(registry.push_signature(
        &args.reference,
        &component.manifest_digest,
        &(signed.payload, signed.signature_b64),
    ))?;
    println!(
        "signed {repository}@{} with key {}",
        component.manifest_digest,
        key.public_key().fingerprint()
    );
    Ok(())
}

/// Pulls the artifact and checks its signatures against the keys.
pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let keys = args
        .key
        .iter()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            bulkhead_signature::PublicKey::from_pem(&pem)
                .with_context(|| format!("the key {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let registry = args.registry.registry()?;
    let runtime = runtime()?;
    let component = runtime.block_on(registry.pull(&args.reference))?;
    let signatures =
        runtime.block_on(registry.signatures(&args.reference, &component.manifest_digest))?;
    let (fingerprint, payload) =
        bulkhead_signature::verify_any(&keys, &signatures, &component.manifest_digest)
            .with_context(|| format!("{}: not verified", args.reference))?;
    println!(
        "verified {}@{} (signed for {}) with key {fingerprint}",
        repository_of(&args.reference),
        component.manifest_digest,
        payload.docker_reference
    );
    Ok(())
}

/// `registry/repository` of a reference, without tag or digest.
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => name,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_drops_tag_and_digest_but_keeps_the_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/p/x:1.0"),
            "127.0.0.1:5000/p/x"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/p/x:1.0@sha256:ab"),
            "127.0.0.1:5000/p/x"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/p/x@sha256:ab"),
            "127.0.0.1:5000/p/x"
        );
        assert_eq!(repository_of("ghcr.io/org/x"), "ghcr.io/org/x");
    }
}
