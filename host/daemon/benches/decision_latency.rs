//! In-host decision latency of the four first-party plugins with the baseline policy: build the
//! container view, run every plugin (fresh instance each), merge — what the engine does per
//! container event, minus containerd I/O. Prints p50/p90/p99 over many decisions (criterion
//! reports means, the targets are percentiles), in two modes:
//!
//! - `back-to-back`: one decision right after the other, with caches and branch predictors warm;
//! - `20 ms gaps`: an idle sleep between decisions, as on a node where container events arrive
//!   now and then and each one finds the caches cold.
//!
//! Run: `cargo bench -p bulkhead-daemon --bench decision_latency` (release build, about 15 s).

use std::time::{Duration, Instant};

use bulkhead_core::config::baseline_plugins;
use bulkhead_core::event::{Container, EventKind, LifecycleEvent, Pod};
use bulkhead_core::grants::{CurrentSpec, Subject};
use bulkhead_core::view::DecisionPoint;
use bulkhead_daemon::engine::chain::{Chain, ChainPlugin};
use bulkhead_daemon::engine::view::{Context, container_view};
use bulkhead_nri::Deadline;
use bulkhead_runtime::{PluginLimits, Runtime, RuntimeOptions};

/// Decisions timed back to back.
const DECISIONS: usize = 5000;
/// Decisions timed with [`GAP`] between them (500 × 20 ms ≈ 10 s).
const GAP_DECISIONS: usize = 500;
/// The idle time between two decisions of the cold mode.
const GAP: Duration = Duration::from_millis(20);

const RUNTIME_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The four first-party plugins, embedded, with the baseline policy.
fn chain(runtime: &Runtime) -> Chain {
    Chain::new(
        baseline_plugins()
            .into_iter()
            .map(|entry| {
                let builtin = entry.builtin.expect("the baseline is builtins");
                let limits = PluginLimits {
                    config: entry.config_json(),
                    ..PluginLimits::default()
                };
                let plugin = runtime
                    .load_bytes(
                        entry.source().as_ref(),
                        bulkhead_builtin::component(builtin),
                        limits,
                    )
                    .expect("builtin plugin loads");
                ChainPlugin {
                    plugin,
                    mode: entry.mode,
                    failure_policy: entry.failure_policy,
                    kinds: entry.allowed_kinds(),
                    grants: entry.grants(),
                }
            })
            .collect(),
    )
}

fn event() -> LifecycleEvent {
    let mut container = Container {
        id: "c".repeat(64),
        pod_id: "p".repeat(64),
        name: "web".into(),
        args: vec!["/bin/server".into(), "--port=8080".into()],
        env: (0..20).map(|i| format!("VAR_{i}=value-{i}")).collect(),
        ..Container::default()
    };
    container.annotations.insert(
        Container::IMAGE_NAME_ANNOTATION.into(),
        "registry.example.com/team/web:1.4.2".into(),
    );
    let mut pod = Pod {
        name: "web-7d9f8b6c5-abcde".into(),
        namespace: "production".into(),
        ..Pod::default()
    };
    for i in 0..10 {
        pod.labels
            .insert(format!("label-{i}"), format!("value-{i}"));
    }
    LifecycleEvent {
        kind: EventKind::PostCreateContainer,
        pod,
        container: Some(container),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let chain = chain(&runtime);
    let event = event();
    let rlimits = bulkhead_daemon::engine::view::runtime_rlimits();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let decide = || {
        tokio.block_on(async {
            let mut view = container_view(
                &event,
                DecisionPoint::PostCreateContainer,
                &Context::default(),
            );
            // What containerd 2.1 gives an ordinary CRI container: its default capability set,
            // no seccomp profile (so the seccomp plugin answers with its whole default profile).
            view.capabilities.bounding = RUNTIME_DEFAULT_CAPS.map(String::from).to_vec();
            view.capabilities.effective = view.capabilities.bounding.clone();
            let mut runs = chain
                .run(&view, Deadline::after(Duration::from_secs(1)))
                .await;
            // As the engine does: every answer is judged against its plugin's grants and the
            // container's current spec before it is merged.
            let spec = CurrentSpec {
                seccomp: view.seccomp.as_ref(),
                mounts: &view.mounts,
                rlimits: &rlimits,
            };
            chain.judge(
                &mut runs,
                &Subject {
                    namespace: &view.pod.namespace,
                    spec: Some(spec),
                },
            );
            let merged = bulkhead_daemon::engine::merge_runs(&runs);
            assert!(merged.conflicts.is_empty() && runs.len() == 4);
            merged
        })
    };
    for _ in 0..200 {
        decide();
    }
    let time = |count: usize, gap: Duration| -> Vec<Duration> {
        let mut samples: Vec<Duration> = (0..count)
            .map(|_| {
                if !gap.is_zero() {
                    std::thread::sleep(gap);
                }
                let started = Instant::now();
                std::hint::black_box(decide());
                started.elapsed()
            })
            .collect();
        samples.sort_unstable();
        samples
    };
    let back_to_back = time(DECISIONS, Duration::ZERO);
    let gaps = time(GAP_DECISIONS, GAP);
    println!("decision latency, 4-plugin chain:");
    for (label, samples) in [("back-to-back", &back_to_back), ("20 ms gaps", &gaps)] {
        println!(
            "  {label:<12} {:>5} decisions: p50 {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
            samples.len(),
            percentile(samples, 0.50),
            percentile(samples, 0.90),
            percentile(samples, 0.99),
            samples[samples.len() - 1],
        );
    }
    println!("goals: back-to-back p50 ≤ 100 µs, p99 ≤ 250 µs; 20 ms gaps p50 ≤ 300 µs");
}
