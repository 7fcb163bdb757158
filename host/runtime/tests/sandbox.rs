//! The sandbox against real components: normal plugins, hostile ones, load failures and the
//! compilation cache. Every hostile case must end in a clear per-plugin error within its
//! deadline, and the runtime must keep serving the next call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_core::decision::{Capability, Mutation, Verdict};
use bulkhead_core::seccomp_profiles::HeldProfiles;
use bulkhead_core::view::{ContainerView, DecisionPoint};
use bulkhead_runtime::{Error, Plugin, PluginLimits, Runtime, RuntimeOptions};
use bulkhead_test_plugins::{HOSTILE, NOOP, REALISTIC};

fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions::default()).expect("runtime")
}

fn hostile(rt: &Runtime, mode: &str) -> Plugin {
    let limits = PluginLimits {
        time_budget: Duration::from_millis(200),
        memory_limit: 8 << 20,
        config: mode.into(),
        ..PluginLimits::default()
    };
    rt.load(Path::new(HOSTILE), limits)
        .expect("hostile plugin loads")
}

/// Runs a hostile mode, checks the error names the plugin and came within the deadline, then
/// checks the same runtime still serves a well-behaved plugin.
fn contained(mode: &str) -> Error {
    let rt = runtime();
    let noop = rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    let plugin = hostile(&rt, mode);
    let started = Instant::now();
    let err = plugin
        .check_container(&ContainerView::default())
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{mode}: took {:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().starts_with("plugin hostile:"),
        "{mode}: {err}"
    );
    // The runtime keeps serving: the well-behaved plugin, and the hostile one again.
    assert_eq!(
        noop.check_container(&ContainerView::default())
            .unwrap()
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        plugin
            .check_container(&ContainerView::default())
            .unwrap_err()
            .kind(),
        err.kind()
    );
    err
}

#[test]
fn noop_loads_and_allows() {
    let rt = runtime();
    let plugin = rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    assert_eq!(plugin.name(), "noop");
    assert_eq!(plugin.info().version, "0.1.0");
    assert!(plugin.wants(DecisionPoint::CreateContainer));
    assert!(plugin.digest().starts_with("sha256:"));
    let decision = plugin.check_container(&ContainerView::default()).unwrap();
    assert_eq!(decision, bulkhead_core::decision::Decision::allow());
}

#[test]
fn realistic_plugin_reads_the_view_and_hardens() {
    let rt = runtime();
    let limits = PluginLimits {
        config: "docker.io,ghcr.io".into(),
        ..PluginLimits::default()
    };
    let plugin = rt.load(Path::new(REALISTIC), limits).unwrap();
    let mut view: ContainerView = serde_json::from_str(
        r#"{"event": "post-create-container", "name": "web",
            "image": {"reference": "nginx", "registry": "docker.io", "tag": "latest"},
            "capabilities": {"effective": ["CAP_CHOWN", "CAP_NET_RAW"]}}"#,
    )
    .unwrap();
    let d = plugin.check_container(&view).unwrap();
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(
        d.mutations[0],
        Mutation::DropCapabilities(vec![Capability::NetRaw])
    );
    assert_eq!(d.mutations[1], Mutation::SetNoNewPrivileges);
    assert!(matches!(&d.mutations[2], Mutation::SetSeccomp(p) if p.syscalls.len() == 2));

    view.privileged = true;
    let d = plugin.check_container(&view).unwrap();
    assert_eq!(
        d.verdict,
        Verdict::Deny("container web is privileged".into())
    );
    view.privileged = false;
    view.image.registry = "quay.io".into();
    assert!(plugin.check_container(&view).unwrap().is_deny());
}

#[test]
fn infinite_loop_times_out() {
    let err = contained("loop");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[test]
fn memory_growth_hits_the_cap() {
    let err = contained("grow-memory");
    assert!(
        matches!(err, Error::MemoryLimit { limit, .. } if limit == 8 << 20),
        "{err}"
    );
}

#[test]
fn unbounded_recursion_traps() {
    let err = contained("recurse");
    assert!(matches!(err, Error::Trap { .. }), "{err}");
    assert!(err.to_string().contains("call stack exhausted"), "{err}");
}

#[test]
fn panic_traps_with_its_message() {
    let err = contained("panic");
    assert!(matches!(err, Error::Trap { .. }), "{err}");
    assert!(
        err.to_string().contains("hostile plugin panics on purpose"),
        "{err}"
    );
}

#[test]
fn log_flood_is_rate_limited_not_fatal() {
    let rt = runtime();
    let plugin = hostile(&rt, "log-flood");
    let started = Instant::now();
    // 100k log calls cost the plugin time but the host drops all but the first few.
    let result = plugin.check_container(&ContainerView::default());
    assert!(started.elapsed() < Duration::from_secs(2));
    match result {
        Ok(d) => assert_eq!(d.verdict, Verdict::Allow),
        Err(e) => assert!(matches!(e, Error::Timeout { .. }), "{e}"),
    }
}

#[test]
fn unknown_capability_is_invalid_output() {
    let err = contained("bad-capability");
    assert!(matches!(err, Error::InvalidOutput { .. }), "{err}");
    assert!(err.to_string().contains("CAP_NET_RAWW"), "{err}");
}

#[test]
fn malformed_seccomp_is_invalid_output() {
    let err = contained("bad-seccomp");
    assert!(matches!(err, Error::InvalidOutput { .. }), "{err}");
    assert!(
        err.to_string().contains("`open at` is not a syscall name"),
        "{err}"
    );
}

#[test]
fn plugin_reported_error_is_passed_on() {
    let err = contained("report-error");
    assert!(
        matches!(&err, Error::Reported { kind: "invalid-config", message, .. } if message.contains("different config")),
        "{err}"
    );
}

#[test]
fn wasi_clock_is_not_granted() {
    let err = contained("read-clock");
    assert!(matches!(err, Error::Trap { .. }), "{err}");
}

#[test]
fn finite_but_slow_work_within_budget_succeeds() {
    let rt = runtime();
    let limits = PluginLimits {
        time_budget: Duration::from_secs(5),
        config: "sleep-ish".into(),
        ..PluginLimits::default()
    };
    let plugin = rt.load(Path::new(HOSTILE), limits).unwrap();
    assert!(
        plugin
            .check_container(&ContainerView::default())
            .unwrap()
            .is_deny()
    );
}

#[test]
fn garbage_and_core_modules_are_not_components() {
    let rt = runtime();
    let err = rt
        .load_bytes(
            Path::new("junk.wasm"),
            b"not wasm at all",
            PluginLimits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotAComponent { .. }), "{err}");
    assert!(err.to_string().starts_with("plugin junk.wasm:"), "{err}");
    // The smallest core module: magic + version 1.
    let core = b"\0asm\x01\0\0\0";
    let err = rt
        .load_bytes(Path::new("core.wasm"), core, PluginLimits::default())
        .unwrap_err();
    assert!(matches!(err, Error::NotAComponent { .. }), "{err}");
}

#[test]
fn the_empty_component_lacks_the_exports() {
    let rt = runtime();
    // The smallest component: magic + component layer version.
    let empty = b"\0asm\x0d\0\x01\0";
    let err = rt
        .load_bytes(Path::new("empty.wasm"), empty, PluginLimits::default())
        .unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("check-container"), "{err}");
}

#[test]
fn missing_file_is_named() {
    let err = runtime()
        .load(Path::new("/nonexistent/p.wasm"), PluginLimits::default())
        .unwrap_err();
    assert!(matches!(err, Error::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/p.wasm"), "{err}");
}

#[test]
fn memory_limit_above_the_pool_is_refused() {
    let limits = PluginLimits {
        memory_limit: usize::MAX,
        ..PluginLimits::default()
    };
    assert!(matches!(
        runtime().load(Path::new(NOOP), limits),
        Err(Error::Setup { .. })
    ));
}

#[test]
fn compiled_artifacts_are_cached_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeOptions::default()
    };
    let rt = Runtime::new(options.clone()).unwrap();
    rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    drop(rt);

    // A new runtime (a restarted daemon) loads from the cache and still works.
    let rt = Runtime::new(options).unwrap();
    let plugin = rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    assert!(
        !plugin
            .check_container(&ContainerView::default())
            .unwrap()
            .is_deny()
    );

    // A corrupt artifact is recompiled, not fatal.
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&path, b"corrupt").unwrap();
    rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 100);
}

#[test]
fn plugins_are_callable_from_many_threads() {
    let rt = runtime();
    let plugin = rt.load(Path::new(NOOP), PluginLimits::default()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    plugin.check_container(&ContainerView::default()).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn std_hash_map_works_with_the_fixed_seed() {
    let rt = runtime();
    let plugin = hostile(&rt, "hash-map");
    let d = plugin.check_container(&ContainerView::default()).unwrap();
    assert_eq!(d.verdict, Verdict::Deny("map has 1 entry".into()));
}

#[test]
fn runtime_and_plugins_can_move_to_blocking_threads() {
    // The daemon moves plugins into `tokio::task::spawn_blocking`; this must keep compiling.
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Plugin>();
    send_sync::<Runtime>();
    send_sync::<Error>();
}

#[test]
fn a_plugin_built_for_another_abi_version_is_refused_by_name() {
    let err = runtime()
        .load(
            Path::new(bulkhead_test_plugins::WRONG_VERSION),
            PluginLimits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("bulkhead_test_plugin_wrong_version.wasm"),
        "{message}"
    );
    assert!(message.contains("bulkhead:plugin/host@0.9.0"), "{message}");
}

#[test]
fn a_component_built_against_abi_0_1_0_keeps_loading_and_deciding() {
    let plugin = runtime()
        .load(
            Path::new(bulkhead_test_plugins::SCRIPTED_V0_1),
            PluginLimits {
                config: r#"{"name": "old-timer", "drop": ["CAP_NET_RAW"], "env": {"A": "b"}}"#
                    .into(),
                ..PluginLimits::default()
            },
        )
        .unwrap();
    assert_eq!(plugin.abi_version(), "0.1.0");
    assert_eq!(plugin.name(), "old-timer");
    let decision = plugin.check_container(&ContainerView::default()).unwrap();
    assert_eq!(
        decision.mutations[0],
        bulkhead_core::decision::Mutation::DropCapabilities(vec![
            bulkhead_core::decision::Capability::NetRaw
        ])
    );
    assert_eq!(decision.mutations.len(), 2);
}

#[test]
fn a_component_built_against_abi_0_2_0_keeps_loading_and_deciding() {
    let plugin = runtime()
        .load(
            Path::new(bulkhead_test_plugins::SCRIPTED_V0_2),
            PluginLimits {
                config:
                    r#"{"name": "last-year", "drop": ["CAP_NET_RAW"], "no-new-privileges": true}"#
                        .into(),
                ..PluginLimits::default()
            },
        )
        .unwrap();
    assert_eq!(plugin.abi_version(), "0.2.0");
    assert_eq!(plugin.name(), "last-year");
    let decision = plugin.check_container(&ContainerView::default()).unwrap();
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(
        decision.mutations,
        [
            Mutation::DropCapabilities(vec![Capability::NetRaw]),
            Mutation::SetNoNewPrivileges
        ]
    );
}

fn scripted(config: &str, options: RuntimeOptions) -> (Runtime, Plugin) {
    let rt = Runtime::new(options).expect("runtime");
    let plugin = rt
        .load(
            Path::new(bulkhead_test_plugins::SCRIPTED),
            PluginLimits {
                config: config.into(),
                ..PluginLimits::default()
            },
        )
        .unwrap();
    (rt, plugin)
}

#[test]
fn a_named_profile_resolves_to_the_one_the_host_holds() {
    let seccomp: bulkhead_core::config::SeccompConfig = toml::from_str(
        r#"[profiles.no-ptrace]
        default-action = "SCMP_ACT_ALLOW"
        syscalls = [{ names = ["ptrace"], action = "SCMP_ACT_ERRNO" }]"#,
    )
    .unwrap();
    let held = Arc::new(HeldProfiles::from_config(&seccomp).unwrap());
    let options = RuntimeOptions {
        seccomp_profiles: held.clone(),
        ..RuntimeOptions::default()
    };
    let (_rt, plugin) = scripted(r#"{"seccomp-profile": "no-ptrace"}"#, options);
    let view = ContainerView {
        event: DecisionPoint::PostCreateContainer,
        ..ContainerView::default()
    };
    for _ in 0..2 {
        let d = plugin.check_container(&view).unwrap();
        let [Mutation::SetSeccomp(profile)] = d.mutations.as_slice() else {
            panic!("expected one seccomp mutation: {d:?}");
        };
        assert!(Arc::ptr_eq(
            profile,
            &held.get("no-ptrace").unwrap().profile
        ));
    }
}

#[test]
fn a_profile_name_the_host_does_not_hold_is_invalid_output() {
    let (_rt, plugin) = scripted(
        r#"{"seccomp-profile": "unconfined"}"#,
        RuntimeOptions::default(),
    );
    let view = ContainerView {
        event: DecisionPoint::PostCreateContainer,
        ..ContainerView::default()
    };
    let err = plugin.check_container(&view).unwrap_err();
    assert!(matches!(err, Error::InvalidOutput { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("\"unconfined\""), "{message}");
    assert!(message.contains("default, strict"), "{message}");
}

#[test]
fn a_current_component_reports_its_abi_version() {
    let plugin = runtime()
        .load(
            Path::new(bulkhead_test_plugins::NOOP),
            PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(plugin.abi_version(), "0.3.0");
}
