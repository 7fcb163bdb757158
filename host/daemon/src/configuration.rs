//! The configuration as the daemon runs it: where it comes from (a file and the command line's
//! overrides), reading and validating it, and the plugin chain it describes, loaded into one
//! sandbox. `bulkhead run` uses it at start and on every reload; `check-config` and `eval` to
//! build the same chain offline.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bulkhead_core::config::{Config, PluginConfig, Verify};
use bulkhead_core::seccomp_profiles::HeldProfiles;
use bulkhead_registry::auth::Credentials;
use bulkhead_registry::{Registry, RegistryOptions, sha256_digest};
use bulkhead_runtime::{PluginLimits, Runtime, RuntimeOptions};
use bulkhead_signature::{PublicKey, verify_any};

use crate::engine::chain::{Chain, ChainPlugin};

/// Reads and validates a configuration file; errors name the file.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Config::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Overrides from the command line, applied on top of the configuration file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--nri-socket`.
    pub nri_socket: Option<PathBuf>,
    /// `--containerd-socket`.
    pub containerd_socket: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<bulkhead_core::config::LogFormat>,
    /// `--metrics-address`.
    pub metrics_address: Option<String>,
}

impl Overrides {
    /// Applies the overrides and re-validates.
    pub fn apply(self, mut config: Config) -> anyhow::Result<Config> {
        if let Some(socket) = self.nri_socket {
            config.nri.socket = socket;
        }
        if let Some(socket) = self.containerd_socket {
            config.containerd.socket = socket;
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(address) = self.metrics_address {
            config.metrics.address = address;
        }
        config.validate().context("invalid command-line setting")?;
        Ok(config)
    }
}

/// Where the configuration comes from: a file (or none: the built-in baseline) and the
/// command line's overrides, applied again on every reload.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config`.
    pub path: Option<PathBuf>,
    /// The command line's settings.
    pub overrides: Overrides,
}

/// A configuration as read, with the digest of the text it came from.
pub struct Loaded {
    /// The validated configuration, overrides applied.
    pub config: Config,
    /// `sha256:<hex>` of the file's bytes; `default` without a file.
    pub digest: String,
}

impl ConfigSource {
    /// Reads, parses and validates the configuration; errors name the file.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let (config, digest) = match &self.path {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                let text = String::from_utf8(bytes.clone())
                    .with_context(|| format!("config file {} is not UTF-8", path.display()))?;
                let config = Config::from_toml(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?;
                (config, sha256_digest(&bytes))
            }
            None => (Config::default(), "default".to_string()),
        };
        let config = self.overrides.clone().apply(config)?;
        Ok(Loaded { config, digest })
    }

    /// The digest of the file as it is now, if it can be read.
    pub fn current_digest(&self) -> Option<String> {
        self.path
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .map(|bytes| sha256_digest(&bytes))
    }
}

/// Loads every `[[plugins]]` entry into one sandbox, in order. Errors name the entry and file.
pub fn load_chain(config: &Config) -> anyhow::Result<Chain> {
    if config.plugins.is_empty() {
        return Ok(Chain::default().with_secret_grants(config.secrets.grants.clone()));
    }
    let max_memory = config
        .plugins
        .iter()
        .map(|p| p.memory_limit_mib)
        .max()
        .unwrap_or(16) as usize
        * MIB;
    let cache_dir = &config.sandbox.cache_dir;
    // Parsed and validated once, here; every plugin call shares them.
    let seccomp_profiles = HeldProfiles::from_config(&config.seccomp)
        .context("cannot hold the seccomp profiles of [seccomp]")?;
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: (!cache_dir.as_os_str().is_empty()).then(|| cache_dir.clone()),
        max_memory,
        seccomp_profiles: Arc::new(seccomp_profiles),
        ..RuntimeOptions::default()
    })
    .context("cannot start the plugin sandbox")?;
    // Every `oci` component first: one that cannot be had loads no plugin at all.
    let mut pulled = pull_components(config)?;
    let mut plugins = Vec::with_capacity(config.plugins.len());
    for (i, entry) in config.plugins.iter().enumerate() {
        let limits = PluginLimits {
            time_budget: std::time::Duration::from_millis(entry.time_budget_ms),
            memory_limit: entry.memory_limit_mib as usize * MIB,
            config: entry.config_json(),
            ..PluginLimits::default()
        };
        let loaded = match (&entry.path, entry.builtin) {
            (None, None) if entry.oci.is_some() => {
                let wasm = pulled.remove(&i).unwrap_or_default();
                runtime.load_bytes(Path::new(&entry.source()), &wasm, limits)
            }
            (Some(path), _) => {
                // Read once: the bytes checked against the pin are the bytes compiled.
                let wasm = fs::read(path)
                    .with_context(|| format!("plugins[{i}]: cannot read {}", path.display()))?;
                check_pin(entry, &wasm)
                    .with_context(|| format!("plugins[{i}] ({})", entry.source()))?;
                runtime.load_bytes(path, &wasm, limits)
            }
            (None, Some(builtin)) => runtime.load_bytes(
                Path::new(&entry.source()),
                bulkhead_builtin::component(builtin),
                limits,
            ),
            (None, None) => bail!("plugins[{i}]: needs a path or a builtin"),
        };
        let plugin = loaded.with_context(|| format!("plugins[{i}] ({})", entry.source()))?;
        tracing::info!(
            plugin = plugin.name(),
            digest = plugin.digest(),
            mode = ?entry.mode,
            failure_policy = ?entry.failure_policy,
            "plugin loaded"
        );
        plugins.push(ChainPlugin {
            plugin,
            mode: entry.mode,
            failure_policy: entry.failure_policy,
            kinds: entry.allowed_kinds(),
            grants: entry.grants(),
        });
    }
    let mut names: Vec<&str> = plugins.iter().map(|p| p.plugin.name()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        bail!(
            "two plugins are named {:?}: names identify plugins in audit records and must be unique",
            pair[0]
        );
    }
    Ok(Chain::new(plugins).with_secret_grants(config.secrets.grants.clone()))
}

const MIB: usize = 1 << 20;

/// Pulls every `oci` entry's component, verified against its pinned digest, from the cache
/// under `[sandbox] cache-dir` when it is there (a node restarting without registry access
/// still starts), else from the registry. Keyed by the entry's index.
fn pull_components(config: &Config) -> anyhow::Result<HashMap<usize, Vec<u8>>> {
    let entries: Vec<(usize, &str, Verify)> = config
        .plugins
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let verify = entry.verify.unwrap_or(config.registry.verify);
            entry.oci.as_deref().map(|reference| (i, reference, verify))
        })
        .collect();
    if entries.is_empty() {
        return Ok(HashMap::new());
    }
    let credentials = match &config.registry.auth_file {
        Some(path) => Credentials::from_file(path).context("[registry] auth-file")?,
        None => Credentials::default(),
    };
    let keys = config
        .registry
        .keys
        .iter()
        .map(|path| {
            let pem = fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the cosign public key {} ([registry] keys)",
                    path.display()
                )
            })?;
            PublicKey::from_pem(&pem).with_context(|| {
                format!("the cosign public key {} ([registry] keys)", path.display())
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache_dir = &config.sandbox.cache_dir;
    let registry = Registry::new(RegistryOptions {
        insecure: config.registry.insecure.clone(),
        credentials,
        cache_dir: (!cache_dir.as_os_str().is_empty()).then(|| cache_dir.join("oci")),
        ..RegistryOptions::default()
    });
    // Its own thread and runtime: callers are the daemon's async start, a reload's blocking
    // task and the offline commands alike.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start a runtime to pull plugins")?;
                let mut pulled = HashMap::new();
                for (i, reference, verify) in entries {
                    let started = std::time::Instant::now();
                    let component = runtime
                        .block_on(registry.pull(reference))
                        .with_context(|| format!("plugins[{i}] ({reference})"))?;
                    if verify == Verify::Required {
                        let signatures = runtime
                            .block_on(registry.signatures(reference, &component.manifest_digest))
                            .with_context(|| format!("plugins[{i}] ({reference})"))?;
                        let (key, _) = verify_any(&keys, &signatures, &component.manifest_digest)
                            .with_context(|| {
                                format!("plugins[{i}] ({reference}): no valid cosign signature by a key of [registry] keys; refused")
                            })?;
                        tracing::info!(reference, key, "plugin signature verified");
                    }
                    tracing::info!(
                        reference,
                        digest = %component.manifest_digest,
                        from_cache = component.from_cache,
                        bytes = component.wasm.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "plugin pulled"
                    );
                    pulled.insert(i, component.wasm);
                }
                Ok(pulled)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("pulling plugins panicked")))
    })
}

/// Refuses a component whose sha256 is not the entry's `sha256` pin.
fn check_pin(entry: &PluginConfig, wasm: &[u8]) -> anyhow::Result<()> {
    let Some(pinned) = entry.pinned_digest() else {
        return Ok(());
    };
    let actual = sha256_digest(wasm);
    if actual != pinned {
        bail!("the file's digest is {actual}, not the pinned {pinned} (sha256): refused");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_errors_name_the_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"[nri]\nbogus = 1\n").unwrap();
        let err = load_config(file.path()).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&file.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("bogus"), "{message}");
    }

    #[test]
    fn overrides_replace_file_settings() {
        let config = Overrides {
            nri_socket: Some("/tmp/a.sock".into()),
            containerd_socket: None,
            log_format: Some(bulkhead_core::config::LogFormat::Json),
            metrics_address: None,
        }
        .apply(Config::default())
        .unwrap();
        assert_eq!(config.nri.socket, PathBuf::from("/tmp/a.sock"));
        assert_eq!(config.log.format, bulkhead_core::config::LogFormat::Json);
    }

    #[test]
    fn the_digest_is_of_the_file_and_overrides_apply_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bulkhead.toml");
        std::fs::write(&path, "plugins = []\n").unwrap();
        let source = ConfigSource {
            path: Some(path.clone()),
            overrides: Overrides {
                nri_socket: Some("/tmp/nri.sock".into()),
                ..Overrides::default()
            },
        };
        let loaded = source.load().unwrap();
        assert!(loaded.digest.starts_with("sha256:"), "{}", loaded.digest);
        assert_eq!(loaded.config.nri.socket, PathBuf::from("/tmp/nri.sock"));
        assert_eq!(source.current_digest().unwrap(), loaded.digest);
        std::fs::write(&path, "plugins = [\n").unwrap();
        let error = format!("{:#}", source.load().err().unwrap());
        assert!(error.contains("bulkhead.toml"), "{error}");
        assert_ne!(source.current_digest().unwrap(), loaded.digest);
    }

    #[test]
    fn a_pinned_plugin_loads_only_with_the_pinned_content() {
        let wasm = std::fs::read(bulkhead_test_plugins::SCRIPTED).unwrap();
        let right = sha256_digest(&wasm);
        let wrong = format!("sha256:{}", "0".repeat(64));
        let cache = tempfile::tempdir().unwrap();
        let config = |pins: [&str; 2]| {
            let entries: String = pins
                .iter()
                .enumerate()
                .map(|(i, pin)| {
                    format!(
                        "[[plugins]]\npath = {:?}\nsha256 = {pin:?}\n[plugins.config]\nname = \"p{i}\"\n",
                        bulkhead_test_plugins::SCRIPTED,
                    )
                })
                .collect();
            Config::from_toml(&format!(
                "[sandbox]\ncache-dir = {:?}\n{entries}",
                cache.path().display().to_string()
            ))
            .unwrap()
        };
        let chain = load_chain(&config([&right, &right])).unwrap();
        assert_eq!(chain.plugins().len(), 2);
        assert_eq!(chain.plugins()[0].plugin.digest(), right);
        // One bad pin and nothing loads: the chain is never half loaded.
        let error = format!("{:#}", load_chain(&config([&right, &wrong])).err().unwrap());
        assert!(error.contains("plugins[1]"), "{error}");
        assert!(error.contains(&right) && error.contains(&wrong), "{error}");
        assert!(error.contains("refused"), "{error}");
    }
}
