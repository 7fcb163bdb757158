//! `bulkhead run`: load the configuration, check the sockets, start the metrics endpoint, then
//! keep an NRI session with containerd alive until asked to stop, reloading the chain when the
//! configuration changes.

use std::fs;
use std::future::Future;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use bulkhead_core::config::Config;
use bulkhead_core::seccomp_profiles::HeldProfiles;

use bulkhead_containerd::Containerd;
use bulkhead_runtime::{PluginLimits, Runtime, RuntimeOptions};

use crate::engine::Engine;
use crate::engine::audit::AuditLog;
use crate::engine::chain::{Chain, ChainPlugin};
use crate::reload::{self, ConfigSource, Loaded, Reloader};
use crate::secrets::SecretStore;
use crate::telemetry::{Telemetry, http};
use bulkhead_nri::{self as nri, Registration};

/// Reads and validates a configuration file; errors name the file.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Config::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Checks that `path` is an existing unix socket; the error names the path and where it was set.
pub fn check_socket(path: &Path, setting: &str) -> anyhow::Result<()> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} ({setting}) does not exist", path.display())
        }
        Err(error) => bail!("{} ({setting}) cannot be read: {error}", path.display()),
    };
    if !metadata.file_type().is_socket() {
        bail!("{} ({setting}) is not a unix socket", path.display());
    }
    Ok(())
}

/// Runs the daemon with the configuration `loaded` from `source` until `shutdown` resolves.
pub async fn run(
    source: ConfigSource,
    loaded: Loaded,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &loaded.config;
    check_socket(&config.nri.socket, "--nri-socket / nri.socket")?;
    check_socket(
        &config.containerd.socket,
        "--containerd-socket / containerd.socket",
    )?;
    let telemetry = Arc::new(Telemetry::default());
    // Up before the chain compiles, so liveness answers while it does.
    let endpoint = match http::Address::parse(&config.metrics.address) {
        Some(address) => {
            let listener = http::Listener::bind(&address).await?;
            let shown = listener
                .local_tcp()
                .map_or_else(|| config.metrics.address.clone(), |a| a.to_string());
            tracing::info!(address = %shown, "metrics endpoint listening (/metrics, /healthz, /readyz)");
            Some(tokio::spawn(listener.serve(telemetry.clone())))
        }
        None => None,
    };
    let chain = load_chain(config)?;
    telemetry.metrics.set_plugins(reload::plugin_labels(&chain));
    telemetry
        .metrics
        .set_info(|info| info.config_digest = loaded.digest.clone());
    let containerd =
        Containerd::connect_in(&config.containerd.socket, &config.containerd.namespace)
            .await
            .context(
                "cannot reach containerd's gRPC API (--containerd-socket / containerd.socket)",
            )?;
    let audit = AuditLog::open(&config.audit.path).with_context(|| {
        format!(
            "cannot open the audit log {} (audit.path)",
            config.audit.path.display()
        )
    })?;
    let secrets = SecretStore::open(&config.secrets)
        .context("cannot prepare the secrets runtime directory (secrets.runtime-dir)")?;
    let audit_on_exit = audit.clone();
    let mut engine = Engine::new(chain, containerd, audit)
        .with_secrets(secrets)
        .with_recorded_views(config.audit.include_view)
        .with_validation(config.nri.validation.clone(), &config.nri.plugin_name)
        .with_telemetry(telemetry.clone());
    if let Some(path) = &config.guard.key_file {
        let key = bulkhead_guard::GuardKey::load(path).with_context(|| {
            format!(
                "cannot load the guard key {} (guard.key-file)",
                path.display()
            )
        })?;
        engine = engine.with_marker(Box::new(move |id: &str| {
            Some((
                bulkhead_guard::MARKER_ANNOTATION.to_string(),
                bulkhead_guard::marker(&key, id),
            ))
        }));
        tracing::info!(key = %path.display(), "guard marking enabled");
    }
    let registration = Registration {
        socket: config.nri.socket.clone(),
        name: config.nri.plugin_name.clone(),
        index: config.nri.plugin_index.clone(),
        events: engine.events(),
    };
    tracing::info!(
        nri_socket = %registration.socket.display(),
        containerd_socket = %config.containerd.socket.display(),
        plugin = %registration.name,
        index = %registration.index,
        "starting"
    );
    let engine = Arc::new(engine);
    let reloader = tokio::spawn(
        Reloader::new(
            source,
            Loaded {
                config: config.clone(),
                digest: loaded.digest.clone(),
            },
            engine.clone(),
            registration.events,
            telemetry.clone(),
        )
        .run(),
    );
    let ended = nri::run_observed(&registration, engine, &telemetry.session, shutdown).await;
    reloader.abort();
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    // Records are written by their own thread: let it finish before the process exits.
    audit_on_exit.flush();
    ended.context("NRI session with the runtime ended")?;
    tracing::info!("stopped");
    Ok(())
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
    let mut plugins = Vec::with_capacity(config.plugins.len());
    for (i, entry) in config.plugins.iter().enumerate() {
        let limits = PluginLimits {
            time_budget: std::time::Duration::from_millis(entry.time_budget_ms),
            memory_limit: entry.memory_limit_mib as usize * MIB,
            config: entry.config_json(),
            ..PluginLimits::default()
        };
        let loaded = match (&entry.path, entry.builtin) {
            (Some(path), _) => runtime.load(path, limits),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_names_path_and_flag() {
        let err = check_socket(Path::new("/nonexistent/nri.sock"), "--nri-socket").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/nri.sock"), "{message}");
        assert!(message.contains("--nri-socket"), "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }

    #[test]
    fn regular_file_is_not_a_socket() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = check_socket(file.path(), "--containerd-socket").unwrap_err();
        assert!(err.to_string().contains("is not a unix socket"), "{err}");
    }

    #[test]
    fn listening_socket_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        check_socket(&path, "--nri-socket").unwrap();
    }

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
}
