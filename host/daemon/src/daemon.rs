//! `bulkhead run`: load the configuration, check the sockets, start the metrics endpoint, then
//! keep an NRI session with containerd alive until asked to stop, reloading the chain when the
//! configuration changes.

use std::fs;
use std::future::Future;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use bulkhead_containerd::Containerd;

use crate::configuration::{ConfigSource, Loaded, load_chain};
use crate::engine::Engine;
use crate::engine::audit::AuditLog;
use crate::reload::{self, Reloader};
use crate::secrets::SecretStore;
use crate::telemetry::{Telemetry, http};
use bulkhead_nri::{self as nri, Registration};

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
}
