//! The daemon's Prometheus metrics: one registry, families with bounded labels, and the few
//! calls the engine, the reloader and the NRI session make to update them.
//!
//! Label values come from closed sets (decision points, verdicts, actions, failure kinds,
//! mutation kinds) or from the operator's config (plugin names), never from pods or plugins'
//! free text, so a hostile pod author or plugin cannot grow the series without bound.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `bulkhead_decisions_total` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The NRI event (`CreateContainer`, `PostCreateContainer`, `StartContainer`).
    pub point: String,
    /// `allow` or `deny`: the merged verdict of the enforcing plugins.
    pub verdict: String,
    /// What bulkhead did: `allowed`, `refused`, `refused-at-start`, `would-refuse` (allowed
    /// because only audit-mode plugins denied).
    pub action: String,
}

/// `bulkhead_plugin_calls_total` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginCallLabels {
    /// The plugin's name.
    pub plugin: String,
    /// `allow`, `deny`, or the failure kind (`timeout`, `trap`, `not-granted`, ...).
    pub outcome: String,
}

/// Labels naming one plugin.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin's name.
    pub plugin: String,
}

/// Labels naming one decision point.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PointLabels {
    /// The NRI event.
    pub point: String,
}

/// `bulkhead_refused_mutations_total` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedMutationLabels {
    /// The plugin that asked.
    pub plugin: String,
    /// The mutation's kind (`add-mount`, `set-seccomp`, ...).
    pub mutation: String,
}

/// `bulkhead_config_reloads_total` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: String,
}

/// `bulkhead_info` labels.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    /// bulkhead's version.
    pub version: String,
    /// The runtime's name (`containerd`), empty until it is known.
    pub runtime: String,
    /// The runtime's version.
    pub runtime_version: String,
    /// The NRI level bulkhead uses with it.
    pub nri_level: String,
    /// sha256 of the configuration in effect.
    pub config_digest: String,
}

/// `bulkhead_plugin_info` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginInfoLabels {
    /// The plugin's name.
    pub plugin: String,
    /// Its declared version.
    pub version: String,
    /// sha256 of its component.
    pub digest: String,
    /// `enforce` or `audit`.
    pub mode: String,
}

/// Every metric bulkhead exports.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    plugin_calls: Family<PluginCallLabels, Counter>,
    plugin_call_seconds: Family<PluginLabels, Histogram>,
    decision_seconds: Family<PointLabels, Histogram>,
    spec_patch_seconds: Histogram,
    refused_mutations: Family<RefusedMutationLabels, Counter>,
    nri_reconnects: Counter,
    config_reloads: Family<ReloadLabels, Counter>,
    info: Family<InfoLabels, Gauge>,
    info_now: Mutex<InfoLabels>,
    plugin_info: Family<PluginInfoLabels, Gauge>,
}

/// Buckets from 50 µs to about 1.6 s, doubling: plugin calls take tens of microseconds, a
/// decision with a stored-spec patch a few milliseconds, and containerd's deadline is seconds.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "bulkhead_decisions",
            "Container decisions, by NRI event, merged verdict and what bulkhead did",
            decisions.clone(),
        );
        let plugin_calls = Family::<PluginCallLabels, Counter>::default();
        registry.register(
            "bulkhead_plugin_calls",
            "Plugin calls, by plugin and outcome (allow, deny or the failure kind)",
            plugin_calls.clone(),
        );
        let plugin_call_seconds =
            Family::<PluginLabels, Histogram>::new_with_constructor(latency_buckets as fn() -> _);
        registry.register(
            "bulkhead_plugin_call_seconds",
            "Time of one plugin call",
            plugin_call_seconds.clone(),
        );
        let decision_seconds =
            Family::<PointLabels, Histogram>::new_with_constructor(latency_buckets as fn() -> _);
        registry.register(
            "bulkhead_decision_seconds",
            "Time from an NRI event's arrival to bulkhead's answer",
            decision_seconds.clone(),
        );
        let spec_patch_seconds = latency_buckets();
        registry.register(
            "bulkhead_spec_patch_seconds",
            "Time to patch, store and verify a container's stored OCI spec",
            spec_patch_seconds.clone(),
        );
        let refused_mutations = Family::<RefusedMutationLabels, Counter>::default();
        registry.register(
            "bulkhead_refused_mutations",
            "Mutations a plugin asked for without the grant to make them",
            refused_mutations.clone(),
        );
        let nri_reconnects = Counter::default();
        registry.register(
            "bulkhead_nri_reconnects",
            "NRI connections made again after the runtime closed one",
            nri_reconnects.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "bulkhead_config_reloads",
            "Configuration reloads, by result",
            config_reloads.clone(),
        );
        let info = Family::<InfoLabels, Gauge>::default();
        registry.register(
            "bulkhead_info",
            "bulkhead's version, the runtime it serves and the configuration in effect (always 1)",
            info.clone(),
        );
        let plugin_info = Family::<PluginInfoLabels, Gauge>::default();
        registry.register(
            "bulkhead_plugin_info",
            "The plugins of the chain in effect (always 1)",
            plugin_info.clone(),
        );
        let info_now = InfoLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            ..InfoLabels::default()
        };
        info.get_or_create(&info_now).set(1);
        Metrics {
            registry,
            decisions,
            plugin_calls,
            plugin_call_seconds,
            decision_seconds,
            spec_patch_seconds,
            refused_mutations,
            nri_reconnects,
            config_reloads,
            info,
            info_now: Mutex::new(info_now),
            plugin_info,
        }
    }

    /// One decision and what was done with it.
    pub fn decision(&self, point: &str, verdict: &str, action: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                point: point.into(),
                verdict: verdict.into(),
                action: action.into(),
            })
            .inc();
    }

    /// One plugin call: its outcome label and how long it took.
    pub fn plugin_call(&self, plugin: &str, outcome: &str, took: Duration) {
        self.plugin_calls
            .get_or_create(&PluginCallLabels {
                plugin: plugin.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.plugin_call_seconds
            .get_or_create(&PluginLabels {
                plugin: plugin.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A mutation refused by the grant checker.
    pub fn refused_mutation(&self, plugin: &str, mutation: &str) {
        self.refused_mutations
            .get_or_create(&RefusedMutationLabels {
                plugin: plugin.into(),
                mutation: mutation.into(),
            })
            .inc();
    }

    /// Time from an event's arrival to the answer.
    pub fn decision_time(&self, point: &str, took: Duration) {
        self.decision_seconds
            .get_or_create(&PointLabels {
                point: point.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// One stored-spec patch.
    pub fn spec_patch(&self, took: Duration) {
        self.spec_patch_seconds.observe(took.as_secs_f64());
    }

    /// Sets the reconnection count to what the NRI session reports (it only grows).
    pub fn nri_reconnects(&self, total: u64) {
        let seen = self.nri_reconnects.get();
        if total > seen {
            self.nri_reconnects.inc_by(total - seen);
        }
    }

    /// One configuration reload, `success` or `failure`.
    pub fn config_reload(&self, succeeded: bool) {
        self.config_reloads
            .get_or_create(&ReloadLabels {
                result: if succeeded { "success" } else { "failure" }.into(),
            })
            .inc();
    }

    /// Changes `bulkhead_info` (one series at a time).
    pub fn set_info(&self, change: impl FnOnce(&mut InfoLabels)) {
        let mut now = self
            .info_now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut now);
        self.info.clear();
        self.info.get_or_create(&now).set(1);
    }

    /// Replaces `bulkhead_plugin_info` with the plugins of a new chain.
    pub fn set_plugins(&self, plugins: impl IntoIterator<Item = PluginInfoLabels>) {
        self.plugin_info.clear();
        for plugin in plugins {
            self.plugin_info.get_or_create(&plugin).set(1);
        }
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line starting with `prefix`.
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn counters_and_histograms_appear_with_their_labels() {
        let metrics = Metrics::new();
        metrics.decision("CreateContainer", "deny", "refused");
        metrics.decision("CreateContainer", "deny", "refused");
        metrics.plugin_call("image-policy", "deny", Duration::from_micros(80));
        metrics.refused_mutation("evil", "add-mount");
        metrics.spec_patch(Duration::from_millis(2));
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                r#"bulkhead_decisions_total{point="CreateContainer",verdict="deny",action="refused"}"#
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"bulkhead_plugin_calls_total{plugin="image-policy",outcome="deny"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"bulkhead_plugin_call_seconds_count{plugin="image-policy"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"bulkhead_refused_mutations_total{plugin="evil",mutation="add-mount"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "bulkhead_spec_patch_seconds_count"),
            Some(1.0)
        );
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with EOF");
    }

    #[test]
    fn info_keeps_one_series_and_reconnects_follow_the_session() {
        let metrics = Metrics::new();
        metrics.set_info(|info| info.runtime = "containerd".into());
        metrics.set_info(|info| info.runtime_version = "v2.1.9".into());
        let text = metrics.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("bulkhead_info{"))
            .collect();
        assert_eq!(series.len(), 1, "{text}");
        assert!(series[0].contains(r#"runtime="containerd""#), "{text}");
        assert!(series[0].contains(r#"runtime_version="v2.1.9""#), "{text}");
        metrics.nri_reconnects(2);
        metrics.nri_reconnects(2);
        metrics.nri_reconnects(3);
        assert_eq!(
            sample(&metrics.encode(), "bulkhead_nri_reconnects_total"),
            Some(3.0)
        );
    }

    #[test]
    fn a_new_chain_replaces_the_plugin_series() {
        let metrics = Metrics::new();
        let plugin = |name: &str| PluginInfoLabels {
            plugin: name.into(),
            version: "0.1.0".into(),
            digest: "sha256:00".into(),
            mode: "enforce".into(),
        };
        metrics.set_plugins([plugin("a"), plugin("b")]);
        metrics.set_plugins([plugin("c")]);
        let text = metrics.encode();
        assert!(!text.contains(r#"plugin="a""#), "{text}");
        assert!(text.contains(r#"plugin="c""#), "{text}");
    }
}
