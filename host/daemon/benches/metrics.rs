//! What metrics cost a decision: the counter and histogram updates the engine makes for one
//! container decision of the baseline chain (one decision, four plugin calls, the decision's
//! latency, one stored-spec patch), and one scrape of the populated registry.
//!
//! Run: `cargo bench -p bulkhead-daemon --bench metrics` (release build, about 10 s). Compare
//! the first figure with `decision_latency`'s p50 to get the share of a decision.

use std::hint::black_box;
use std::time::Duration;

use bulkhead_daemon::telemetry::Metrics;
use criterion::{Criterion, criterion_group, criterion_main};

const PLUGINS: [&str; 4] = ["image-policy", "seccomp", "capabilities", "secrets"];

/// The updates of one PostCreateContainer decision of the baseline chain.
fn one_decision(metrics: &Metrics) {
    for plugin in PLUGINS {
        metrics.plugin_call(black_box(plugin), "allow", Duration::from_micros(30));
    }
    metrics.decision("PostCreateContainer", "allow", "allowed");
    metrics.spec_patch(Duration::from_millis(3));
    metrics.decision_time("PostCreateContainer", Duration::from_millis(4));
}

fn bench(c: &mut Criterion) {
    let metrics = Metrics::new();
    c.bench_function("metrics updates of one decision", |b| {
        b.iter(|| one_decision(&metrics))
    });
    c.bench_function("one scrape (encode every family)", |b| {
        b.iter(|| black_box(metrics.encode()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
