//! Reloading the configuration without a restart: on SIGHUP, or when the config file's content
//! changes (an edit, a rename over it, or a Kubernetes ConfigMap update, which swaps a symlink
//! in the file's directory), the new configuration is read, validated and its chain loaded and
//! compiled off the event path; only then is it put in effect, between two events.
//!
//! A configuration that fails at any step leaves the chain in effect untouched, is logged with
//! the reason and counted as a failed reload. Settings that bulkhead applies once at start (the
//! sockets and the registration, the audit log, the secrets directories, the guard key, logging
//! and the metrics endpoint) cannot change by reload: a file that changes them is refused,
//! naming the section, so that what runs never silently differs from what the file says.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bulkhead_core::config::Config;
use bulkhead_core::event::EventMask;
use notify::Watcher as _;
use tokio::sync::Notify;

use crate::configuration::{ConfigSource, Loaded, load_chain};
use crate::engine::Engine;
use crate::engine::chain::Chain;
use crate::telemetry::Telemetry;
use crate::telemetry::metrics::PluginInfoLabels;

/// How long a file change may keep changing before it is read: editors and the kubelet write
/// in several steps.
const SETTLE: Duration = Duration::from_millis(100);

/// Refuses a new configuration that changes what only a restart applies; names the first such
/// section.
pub fn check_fixed(running: &Config, new: &Config) -> anyhow::Result<()> {
    let sections: [(&str, serde_json::Value, serde_json::Value); 9] = [
        ("[nri]", json(&running.nri), json(&new.nri)),
        (
            "[containerd]",
            json(&running.containerd),
            json(&new.containerd),
        ),
        ("[log]", json(&running.log), json(&new.log)),
        ("[audit]", json(&running.audit), json(&new.audit)),
        ("[guard]", json(&running.guard), json(&new.guard)),
        ("[metrics]", json(&running.metrics), json(&new.metrics)),
        (
            "[secrets] provider-dir",
            json(&running.secrets.provider_dir),
            json(&new.secrets.provider_dir),
        ),
        (
            "[secrets] runtime-dir",
            json(&running.secrets.runtime_dir),
            json(&new.secrets.runtime_dir),
        ),
        ("[sandbox]", json(&running.sandbox), json(&new.sandbox)),
    ];
    for (name, before, after) in sections {
        if before != after {
            bail!(
                "{name} changed, and bulkhead applies it only at start: restart bulkhead to apply it (the chain in effect stays)"
            );
        }
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The `bulkhead_plugin_info` series of `chain`.
pub fn plugin_labels(chain: &Chain) -> Vec<PluginInfoLabels> {
    chain
        .plugins()
        .iter()
        .map(|p| PluginInfoLabels {
            plugin: p.plugin.name().to_string(),
            version: p.plugin.info().version.clone(),
            digest: p.plugin.digest().to_string(),
            mode: match p.mode {
                bulkhead_core::config::PluginMode::Enforce => "enforce",
                bulkhead_core::config::PluginMode::Audit => "audit",
            }
            .into(),
        })
        .collect()
}

/// Puts new configurations in effect while the daemon runs.
pub struct Reloader {
    source: ConfigSource,
    running: Config,
    digest: String,
    engine: Arc<Engine>,
    subscribed: EventMask,
    telemetry: Arc<Telemetry>,
}

impl Reloader {
    /// A reloader for the daemon started with `loaded` from `source`, whose session subscribed
    /// to `subscribed`.
    pub fn new(
        source: ConfigSource,
        loaded: Loaded,
        engine: Arc<Engine>,
        subscribed: EventMask,
        telemetry: Arc<Telemetry>,
    ) -> Reloader {
        Reloader {
            source,
            running: loaded.config,
            digest: loaded.digest,
            engine,
            subscribed,
            telemetry,
        }
    }

    /// Reloads on SIGHUP and on changes of the config file's content, until dropped.
    pub async fn run(mut self) {
        let changed = Arc::new(Notify::new());
        // Kept alive for as long as this loop runs.
        let _watcher = self
            .source
            .path
            .as_deref()
            .and_then(|path| watch_file(path, changed.clone()));
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; reload on file changes only");
                None
            }
        };
        loop {
            let forced = tokio::select! {
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                () = changed.notified() => false,
            };
            let triggered = Instant::now();
            if !forced {
                // Let the writer finish, and fold its other events into this one.
                tokio::time::sleep(SETTLE).await;
                if self.source.current_digest().as_deref() == Some(self.digest.as_str()) {
                    continue;
                }
            }
            self.reload(triggered, if forced { "SIGHUP" } else { "file change" })
                .await;
        }
    }

    /// One reload attempt; the outcome is logged and counted.
    pub async fn reload(&mut self, triggered: Instant, cause: &str) {
        let source = self.source.clone();
        let running = self.running.clone();
        let prepared = tokio::task::spawn_blocking(move || -> anyhow::Result<(Loaded, Chain)> {
            let loaded = source.load()?;
            check_fixed(&running, &loaded.config)?;
            let chain = load_chain(&loaded.config)?;
            Ok((loaded, chain))
        })
        .await
        .unwrap_or_else(|panic| Err(anyhow::anyhow!("loading the new chain panicked: {panic}")));
        let result = prepared.and_then(|(loaded, chain)| {
            let labels = plugin_labels(&chain);
            let plugins = chain.plugins().len();
            self.engine
                .replace_chain(chain, self.subscribed)
                .map_err(anyhow::Error::msg)?;
            Ok((loaded, labels, plugins))
        });
        let metrics = &self.telemetry.metrics;
        match result {
            Ok((loaded, labels, plugins)) => {
                metrics.config_reload(true);
                metrics.set_plugins(labels);
                metrics.set_info(|info| info.config_digest = loaded.digest.clone());
                tracing::info!(
                    cause,
                    plugins,
                    config_digest = %loaded.digest,
                    took_ms = triggered.elapsed().as_millis() as u64,
                    "configuration reloaded; the new chain decides from the next event on"
                );
                self.digest = loaded.digest;
                self.running = loaded.config;
            }
            Err(error) => {
                metrics.config_reload(false);
                // Remember the refused file, so the same content is not retried on every
                // unrelated change in its directory; a SIGHUP retries it.
                if let Some(digest) = self.source.current_digest() {
                    self.digest = digest;
                }
                tracing::error!(
                    cause,
                    error = %format!("{error:#}"),
                    "configuration reload failed; the chain in effect stays"
                );
            }
        }
    }
}

/// Watches the directory holding `path` (a ConfigMap update replaces a symlink next to the file,
/// not the file); every event in it wakes `changed`. `None`, logged, when inotify is
/// unavailable: SIGHUP still works.
fn watch_file(path: &Path, changed: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            changed.notify_one();
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the config file; reload on SIGHUP only");
            return None;
        }
    };
    if let Err(error) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(%error, dir = %dir.display(), "cannot watch the config file's directory; reload on SIGHUP only");
        return None;
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ConfigMap volume: `bulkhead.toml -> ..data/bulkhead.toml`, `..data -> ..<timestamp>`;
    /// the kubelet updates it by writing a new timestamped directory and renaming a new `..data`
    /// symlink over the old one. The file itself is never written.
    #[tokio::test]
    async fn a_config_map_update_is_seen_through_its_symlink_swap() {
        use std::os::unix::fs::symlink;
        let volume = tempfile::tempdir().unwrap();
        let dir = volume.path();
        std::fs::create_dir(dir.join("..2026_12_01_a")).unwrap();
        std::fs::write(dir.join("..2026_12_01_a/bulkhead.toml"), "plugins = []\n").unwrap();
        symlink("..2026_12_01_a", dir.join("..data")).unwrap();
        symlink("..data/bulkhead.toml", dir.join("bulkhead.toml")).unwrap();
        let source = ConfigSource {
            path: Some(dir.join("bulkhead.toml")),
            ..ConfigSource::default()
        };
        let before = source.current_digest().unwrap();
        let changed = Arc::new(Notify::new());
        let _watcher = watch_file(source.path.as_deref().unwrap(), changed.clone()).unwrap();

        std::fs::create_dir(dir.join("..2026_12_01_b")).unwrap();
        std::fs::write(
            dir.join("..2026_12_01_b/bulkhead.toml"),
            "[[plugins]]\nbuiltin = \"seccomp\"\n",
        )
        .unwrap();
        symlink("..2026_12_01_b", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();

        tokio::time::timeout(Duration::from_secs(5), changed.notified())
            .await
            .expect("the swap woke no reload");
        assert_ne!(source.current_digest().unwrap(), before);
        assert_eq!(source.load().unwrap().config.plugins.len(), 1);
    }

    #[test]
    fn fixed_settings_cannot_change_by_reload() {
        let running = Config::default();
        let mut new = running.clone();
        new.plugins.truncate(1);
        new.secrets.grants.clear();
        check_fixed(&running, &new).expect("the chain and the grants reload");
        let mut new = running.clone();
        new.nri.plugin_index = "10".into();
        let error = check_fixed(&running, &new).unwrap_err().to_string();
        assert!(
            error.contains("[nri]") && error.contains("restart"),
            "{error}"
        );
        let mut new = running.clone();
        new.audit.path = "/elsewhere.jsonl".into();
        let error = check_fixed(&running, &new).unwrap_err().to_string();
        assert!(error.contains("[audit]"), "{error}");
    }
}
