//! `bulkhead plugin push FILE REF` and `bulkhead plugin pull REF -o FILE`: plugin components to
//! and from OCI registries in the Wasm artifact layout, for authors publishing and operators
//! checking what a reference holds. `push` prints the digest to pin in `[[plugins]] oci`.

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
            cache_dir: None,
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
    let repository = args
        .reference
        .rsplit_once(':')
        .filter(|(name, tag)| !tag.contains('/') && !name.is_empty())
        .map_or(args.reference.as_str(), |(name, _)| name);
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
