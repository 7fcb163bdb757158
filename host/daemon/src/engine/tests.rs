//! Every path by which the engine refuses a container — or, in audit mode, would have — writes
//! an audit record saying so. The plugins are the real scripted test component in the real
//! sandbox; containerd is a client whose every call fails, which is itself one of the paths
//! (the host's own error).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulkhead_core::config::{FailurePolicy, Grants, PluginMode, TIGHTENING};
use bulkhead_core::event::{Container, EventKind, LifecycleEvent, Pod};
use bulkhead_runtime::{PluginLimits, Runtime, RuntimeOptions};
use serde_json::{Value, json};

use super::*;
use crate::engine::chain::ChainPlugin;

/// The bytes the audit writer thread wrote.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An audit log the test can read back: reading waits for the writer thread first.
#[derive(Clone)]
struct Records {
    sink: Sink,
    log: AuditLog,
}

impl Records {
    fn all(&self) -> Vec<Value> {
        self.log.flush();
        let text = String::from_utf8(self.sink.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// One scripted plugin: its config, mode, failure policy and env grants.
struct Entry {
    config: Value,
    mode: PluginMode,
    policy: FailurePolicy,
    env: Vec<String>,
}

fn enforce(config: Value) -> Entry {
    Entry {
        config,
        mode: PluginMode::Enforce,
        policy: FailurePolicy::Deny,
        env: Vec::new(),
    }
}

fn engine(entries: Vec<Entry>) -> (Engine, Records, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    })
    .unwrap();
    let plugins = entries
        .into_iter()
        .map(|entry| {
            let plugin = runtime
                .load(
                    std::path::Path::new(bulkhead_test_plugins::SCRIPTED),
                    PluginLimits {
                        time_budget: Duration::from_millis(20),
                        config: entry.config.to_string(),
                        ..PluginLimits::default()
                    },
                )
                .unwrap();
            ChainPlugin {
                plugin,
                mode: entry.mode,
                failure_policy: entry.policy,
                kinds: TIGHTENING.into_iter().collect(),
                grants: Grants {
                    env: entry.env,
                    ..Grants::default()
                },
            }
        })
        .collect();
    // Every containerd call fails at once: nothing listens on the discard port.
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let containerd = Containerd::from_channel(channel, "k8s.io").unwrap();
    let sink = Sink::default();
    let audit = AuditLog::to_writer(sink.clone());
    let records = Records {
        sink,
        log: audit.clone(),
    };
    (
        Engine::new(Chain::new(plugins), containerd, audit),
        records,
        cache,
    )
}

fn event(kind: EventKind, name: &str) -> LifecycleEvent {
    LifecycleEvent {
        kind,
        pod: Pod {
            id: "pod".into(),
            name: "pod".into(),
            namespace: "team".into(),
            ..Pod::default()
        },
        container: Some(Container {
            id: format!("id-{name}"),
            name: name.into(),
            pod_id: "pod".into(),
            ..Container::default()
        }),
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(1))
}

fn refused(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Refuse { .. })
}

/// The records written for container `name` at `event`.
fn records_for(records: &Records, name: &str, event: &str) -> Vec<Value> {
    records
        .all()
        .into_iter()
        .filter(|r| r["container"]["name"] == name && r["event"] == event)
        .collect()
}

/// A scripted plugin's config deciding at CreateContainer, with `extra` keys.
fn at_create(extra: Value) -> Value {
    let mut config = json!({"points": ["create-container"]});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_at_create_is_recorded() {
    // (what refuses, the plugins, the record's plugin failure kind if any)
    let cases: Vec<(&str, Vec<Entry>, Option<&str>)> = vec![
        (
            "a plugin's deny",
            vec![enforce(at_create(json!({"name": "judge", "deny": "no"})))],
            None,
        ),
        (
            "a grant violation",
            vec![enforce(at_create(
                json!({"name": "envy", "env": {"LD_PRELOAD": "/x.so"}}),
            ))],
            Some("not-granted"),
        ),
        (
            "a failure policy (timeout)",
            vec![enforce(at_create(json!({"name": "spinner", "loop": true})))],
            Some("timeout"),
        ),
        (
            "a conflict",
            vec![
                Entry {
                    env: vec!["MODE".into()],
                    ..enforce(at_create(json!({"name": "a", "env": {"MODE": "1"}})))
                },
                Entry {
                    env: vec!["MODE".into()],
                    ..enforce(at_create(json!({"name": "b", "env": {"MODE": "2"}})))
                },
            ],
            None,
        ),
    ];
    for (what, plugins, kind) in cases {
        let (engine, records, _cache) = engine(plugins);
        let outcome = engine
            .handle(&event(EventKind::CreateContainer, "c"), deadline())
            .await;
        assert!(refused(&outcome), "{what}: {outcome:?}");
        let written = records_for(&records, "c", "CreateContainer");
        assert_eq!(written.len(), 1, "{what}");
        assert_eq!(written[0]["applied"]["action"], "refused", "{what}");
        assert!(
            written[0]["result"]["verdict"]["deny"].is_string(),
            "{what}"
        );
        if let Some(kind) = kind {
            assert_eq!(
                written[0]["plugins"][0]["outcome"]["failed"]["kind"], kind,
                "{what}"
            );
        }
        // A container refused at creation is never created: nothing stays tracked for it.
        assert!(engine.tracked(|t| t.is_empty()), "{what}: tracking leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_own_error_refuses_and_is_recorded_at_post_create_and_start() {
    // containerd cannot be read, so the PostCreate plugin cannot decide: fail closed.
    let (engine, records, _cache) = engine(vec![enforce(
        json!({"name": "hardener", "drop": ["CAP_NET_RAW"]}),
    )]);
    engine
        .handle(&event(EventKind::CreateContainer, "c"), deadline())
        .await;
    let outcome = engine
        .handle(&event(EventKind::PostCreateContainer, "c"), deadline())
        .await;
    assert!(
        !refused(&outcome),
        "PostCreate errors are only logged by containerd"
    );
    let post = records_for(&records, "c", "PostCreateContainer");
    assert_eq!(post[0]["applied"]["action"], "refused-at-start");
    assert!(post[0]["context-error"].is_string(), "{}", post[0]);
    let outcome = engine
        .handle(&event(EventKind::StartContainer, "c"), deadline())
        .await;
    assert!(refused(&outcome));
    let start = records_for(&records, "c", "StartContainer");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0]["applied"]["action"], "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_decisions_refuse_only_when_an_enforcing_plugin_needed_them() {
    for mode in [PluginMode::Enforce, PluginMode::Audit] {
        let plugin = Entry {
            mode,
            ..enforce(json!({"name": "hardener", "drop": ["CAP_NET_RAW"]}))
        };
        let (engine, records, _cache) = engine(vec![plugin]);
        // Never seen: created while bulkhead was away.
        let unseen = engine
            .handle(&event(EventKind::StartContainer, "unseen"), deadline())
            .await;
        // Seen at creation, but its PostCreate decision never completed.
        engine
            .handle(&event(EventKind::CreateContainer, "cut"), deadline())
            .await;
        let cut = engine
            .handle(&event(EventKind::StartContainer, "cut"), deadline())
            .await;
        for (name, outcome, why) in [
            ("unseen", unseen, "creation was not seen"),
            ("cut", cut, "did not complete"),
        ] {
            let record = &records_for(&records, name, "StartContainer")[0];
            match mode {
                PluginMode::Enforce => {
                    assert!(refused(&outcome), "{name}");
                    assert_eq!(record["applied"]["action"], "refused", "{name}");
                    assert!(
                        record["result"]["verdict"]["deny"]
                            .as_str()
                            .is_some_and(|r| r.contains(why)),
                        "{record}"
                    );
                }
                PluginMode::Audit => {
                    assert!(!refused(&outcome), "{name}: audit mode refused");
                    assert_eq!(record["applied"]["action"], "allowed", "{name}");
                    assert!(
                        record["applied"]["would-refuse"]
                            .as_str()
                            .is_some_and(|r| r.contains(why)),
                        "{record}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_deadline_refuses_and_is_recorded() {
    let (engine, records, _cache) = engine(vec![enforce(json!({
        "name": "judge", "points": ["create-container"], "deny": "no"
    }))]);
    let create = event(EventKind::CreateContainer, "late");
    engine.tracked(|t| t.insert("id-late".into(), Tracked::default()));
    let outcome = engine.missed_deadline(&engine.chain(), &create);
    assert!(refused(&outcome));
    let record = &records_for(&records, "late", "CreateContainer")[0];
    assert_eq!(record["applied"]["action"], "refused");
    assert!(engine.tracked(|t| t.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_mode_deny_is_recorded_as_a_would_be_refusal() {
    let plugin = Entry {
        mode: PluginMode::Audit,
        ..enforce(json!({"name": "judge", "points": ["create-container"], "deny": "no"}))
    };
    let (engine, records, _cache) = engine(vec![plugin]);
    let outcome = engine
        .handle(&event(EventKind::CreateContainer, "c"), deadline())
        .await;
    assert!(!refused(&outcome));
    let record = &records_for(&records, "c", "CreateContainer")[0];
    assert_eq!(record["applied"]["action"], "allowed");
    assert!(
        record["applied"]["would-refuse"]
            .as_str()
            .is_some_and(|r| r.contains("judge: no")),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn views_are_recorded_on_request_with_env_values_redacted() {
    let (engine, records, _cache) = engine(vec![enforce(json!({
        "name": "judge", "points": ["create-container"]
    }))]);
    let engine = engine.with_recorded_views(true);
    let mut create = event(EventKind::CreateContainer, "c");
    create.container.as_mut().unwrap().env = vec!["API_KEY=s3cr3t".into()];
    engine.handle(&create, deadline()).await;
    let record = &records_for(&records, "c", "CreateContainer")[0];
    assert_eq!(record["view"]["event"], "create-container", "{record}");
    assert_eq!(record["view"]["process"]["env"][0], "API_KEY=<redacted>");
    assert!(!record.to_string().contains("s3cr3t"));
}

/// The chain's one blocking section, as it runs on either kind of tokio runtime: every plugin
/// in order, each with its own outcome, and a plugin whose budget no longer fits the deadline
/// is not started.
async fn chain_runs_in_order_within_the_deadline() {
    let at_create = |config: Value| {
        let mut config = config;
        config["points"] = json!(["create-container"]);
        enforce(config)
    };
    let (engine, records, _cache) = engine(vec![
        at_create(json!({"name": "first", "drop": ["CAP_NET_RAW"]})),
        at_create(json!({"name": "second", "deny": "no"})),
    ]);
    let outcome = engine
        .handle(&event(EventKind::CreateContainer, "c"), deadline())
        .await;
    assert!(refused(&outcome), "{outcome:?}");
    let record = &records_for(&records, "c", "CreateContainer")[0];
    let names: Vec<_> = record["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["first", "second"], "{record}");
    assert!(
        record["plugins"][0]["outcome"]["decided"].is_object(),
        "{record}"
    );

    // 10 ms left, budgets of 20 ms: neither plugin may start.
    let runs = engine
        .chain()
        .run(
            &view::container_view(
                &event(EventKind::CreateContainer, "d"),
                DecisionPoint::CreateContainer,
                &Context::default(),
            ),
            Deadline::after(Duration::from_millis(10)),
        )
        .await;
    let kinds: Vec<_> = runs
        .iter()
        .map(|run| match &run.outcome {
            CallOutcome::Failed { kind, .. } => kind.clone(),
            CallOutcome::Decided(_) => "decided".into(),
        })
        .collect();
    assert_eq!(kinds, ["no-budget", "no-budget"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chain_runs_on_a_multi_threaded_runtime() {
    chain_runs_in_order_within_the_deadline().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_chain_runs_on_a_current_thread_runtime() {
    chain_runs_in_order_within_the_deadline().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_time_decision_the_runtime_can_apply_needs_no_containerd_at_post_create() {
    let provisioner = Entry {
        env: vec!["APP_MODE".into()],
        ..enforce(json!({
            "name": "provisioner",
            "points": ["create-container"],
            "env": {"APP_MODE": "native"},
        }))
    };
    // Every containerd call fails: PostCreate would fail closed if it touched the stored spec.
    let (engine, records, _cache) = engine(vec![provisioner]);
    let outcome = engine
        .handle(&event(EventKind::CreateContainer, "c"), deadline())
        .await;
    let Outcome::Adjust(adjustment) = outcome else {
        panic!("no adjustment: {outcome:?}");
    };
    assert_eq!(
        adjustment.env,
        [("APP_MODE".to_string(), "native".to_string())]
    );
    let created = &records_for(&records, "c", "CreateContainer")[0];
    assert_eq!(created["applied"]["adjusted-at-create"], true, "{created}");
    for kind in [EventKind::PostCreateContainer, EventKind::StartContainer] {
        let outcome = engine.handle(&event(kind, "c"), deadline()).await;
        assert_eq!(outcome, Outcome::Allow, "{kind}");
    }
    assert!(records_for(&records, "c", "PostCreateContainer").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_post_create_plugin_create_time_changes_stay_on_the_verified_patch() {
    let provisioner = Entry {
        env: vec!["APP_MODE".into()],
        ..enforce(json!({
            "name": "provisioner",
            "points": ["create-container"],
            "env": {"APP_MODE": "native"},
        }))
    };
    let hardener = enforce(json!({"name": "hardener", "drop": ["CAP_NET_RAW"]}));
    let (engine, _records, _cache) = engine(vec![provisioner, hardener]);
    let outcome = engine
        .handle(&event(EventKind::CreateContainer, "c"), deadline())
        .await;
    assert_eq!(outcome, Outcome::Allow);
    assert_eq!(
        engine.tracked(|t| t["id-c"].create_runs.len()),
        1,
        "the create-time run is carried to PostCreate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bulkhead_subscribes_only_to_the_events_its_chain_needs() {
    let subscribed = |engine: &Engine| -> Vec<EventKind> {
        let events = engine.events();
        EventKind::ALL
            .into_iter()
            .filter(|&kind| events.contains(kind))
            .collect()
    };
    let (empty, _records, _cache) = engine(Vec::new());
    assert_eq!(
        subscribed(&empty),
        [EventKind::RemovePodSandbox, EventKind::RemoveContainer],
        "an empty chain needs no container event on the create+start path"
    );
    let (at_create, _records, _cache) =
        engine(vec![enforce(json!({"points": ["create-container"]}))]);
    assert_eq!(
        subscribed(&at_create),
        [
            EventKind::RemovePodSandbox,
            EventKind::CreateContainer,
            EventKind::PostCreateContainer,
            EventKind::StartContainer,
            EventKind::RemoveContainer
        ],
        "create-time decisions are patched at PostCreate and refused at start"
    );
    let (at_start, _records, _cache) =
        engine(vec![enforce(json!({"points": ["start-container"]}))]);
    assert_eq!(
        subscribed(&at_start),
        [
            EventKind::RemovePodSandbox,
            EventKind::StartContainer,
            EventKind::RemoveContainer
        ]
    );
    let (guarded, _records, _cache) = engine(Vec::new());
    let guarded = guarded.with_marker(Box::new(|_| Some(("k".into(), "v".into()))));
    assert!(subscribed(&guarded).contains(&EventKind::PostCreateContainer));
    assert!(subscribed(&guarded).contains(&EventKind::StartContainer));
}

#[tokio::test]
async fn other_nri_plugins_adjustments_are_judged_only_when_validation_is_on() {
    use bulkhead_core::config::ValidationConfig;
    use bulkhead_core::nri_validation::OwnedField;
    let pending = bulkhead_nri::PendingAdjustment {
        owned: vec![OwnedField {
            field: 32,
            entry: None,
            plugin: "10-tuner".into(),
        }],
        ..Default::default()
    };
    let (off, _records, _cache) = engine(Vec::new());
    assert!(!off.validates_adjustments());
    assert_eq!(off.validate_adjustment(&pending).await, None);

    let config: ValidationConfig =
        toml::from_str("enabled = true\n[plugins]\ntuner = [\"cpuset-cpus\"]\n").unwrap();
    let (on, _records, _cache) = engine(Vec::new());
    let on = on.with_validation(config, "bulkhead");
    assert!(on.validates_adjustments());
    let reason = on.validate_adjustment(&pending).await.unwrap();
    assert!(
        reason.starts_with("bulkhead: NRI plugin 10-tuner adjusted `seccomp-policy`"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_chain_decides_from_the_next_event_and_decisions_are_counted() {
    let (engine, _records, _cache) = engine(vec![enforce(at_create(json!({"name": "judge"})))]);
    let telemetry = Arc::new(Telemetry::default());
    let engine = engine.with_telemetry(telemetry.clone());
    let subscribed = engine.events();
    let first = engine
        .handle(&event(EventKind::CreateContainer, "before"), deadline())
        .await;
    assert!(!refused(&first), "{first:?}");

    let (denying, _, _cache2) = engine_chain(vec![enforce(at_create(
        json!({"name": "judge", "deny": "new policy"}),
    ))]);
    engine.replace_chain(denying, subscribed).unwrap();
    let second = engine
        .handle(&event(EventKind::CreateContainer, "after"), deadline())
        .await;
    assert!(refused(&second), "the new chain did not decide: {second:?}");

    let text = telemetry.metrics_text();
    for line in [
        r#"bulkhead_decisions_total{point="CreateContainer",verdict="allow",action="allowed"} 1"#,
        r#"bulkhead_decisions_total{point="CreateContainer",verdict="deny",action="refused"} 1"#,
        r#"bulkhead_plugin_calls_total{plugin="judge",outcome="allow"} 1"#,
        r#"bulkhead_plugin_calls_total{plugin="judge",outcome="deny"} 1"#,
        r#"bulkhead_decision_seconds_count{point="CreateContainer"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_needing_events_the_session_did_not_subscribe_to_is_refused() {
    let (engine, _records, _cache) = engine(Vec::new());
    let subscribed = engine.events();
    assert!(!subscribed.contains(EventKind::CreateContainer));
    let (wanting, _, _cache2) = engine_chain(vec![enforce(json!({
        "name": "late", "points": ["create-container"]
    }))]);
    let error = engine.replace_chain(wanting, subscribed).unwrap_err();
    assert!(
        error.contains("CreateContainer") && error.contains("restart"),
        "{error}"
    );
    assert!(
        engine.chain().plugins().is_empty(),
        "the chain in effect changed"
    );
}

/// The chain of an [`engine`] built from `entries`, to put in another engine.
fn engine_chain(entries: Vec<Entry>) -> (Chain, Records, tempfile::TempDir) {
    let (engine, records, cache) = engine(entries);
    (engine.chain(), records, cache)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_time_profile_goes_to_the_runtime_only_for_unconfined_containers_on_nri_v0_10() {
    let runtime = |version: &str| RuntimeInfo {
        name: "containerd".into(),
        version: version.into(),
        nri_version: String::new(),
        request_timeout: Duration::from_secs(2),
        registration_timeout: Duration::from_secs(5),
    };
    let create = |name: &str, requested: Option<RequestedSeccomp>| {
        let mut event = event(EventKind::CreateContainer, name);
        event.container.as_mut().unwrap().requested_seccomp = requested;
        event
    };
    let (engine, _records, _cache) = engine(vec![enforce(json!({
        "name": "hardener",
        "points": ["create-container"],
        "seccomp-errno": ["ptrace"]
    }))]);

    engine.synchronized(&runtime("v2.2.3"), &[], &[]).await;
    let unconfined = engine
        .handle(
            &create("bare", Some(RequestedSeccomp::Unconfined)),
            deadline(),
        )
        .await;
    let Outcome::Adjust(adjustment) = unconfined else {
        panic!("not adjusted at create: {unconfined:?}");
    };
    let profile = adjustment.seccomp.expect("no profile in the adjustment");
    assert_eq!(profile.syscalls[0].names, ["ptrace"]);
    // A container with a profile of its own: judged against it at PostCreate, on the patch.
    let confined = engine
        .handle(
            &create("confined", Some(RequestedSeccomp::RuntimeDefault)),
            deadline(),
        )
        .await;
    assert_eq!(confined, Outcome::Allow);

    // NRI v0.8 cannot set a profile at create.
    engine.synchronized(&runtime("v2.1.9"), &[], &[]).await;
    let older = engine
        .handle(
            &create("older", Some(RequestedSeccomp::Unconfined)),
            deadline(),
        )
        .await;
    assert_eq!(older, Outcome::Allow);
}
