//! `bulkhead plugin bench P.wasm --container view.json`: what one call of a plugin costs, in the
//! sandbox and under the limits bulkhead runs it with — per-call latency percentiles (a fresh
//! instance each call, as on a node) and the peak linear memory against the memory cap.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{CacheArgs, LimitArgs};

/// Arguments of `bulkhead plugin bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The plugin component.
    pub plugin: PathBuf,
    /// The container view as JSON (`bulkhead view` prints a real one).
    #[arg(long, value_name = "FILE")]
    pub container: PathBuf,
    /// Measured calls (after 10 warm-up calls).
    #[arg(long, default_value_t = 1000)]
    pub iterations: u32,
    /// Limits and config for the plugin.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The compile cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Runs the calls and prints the figures.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.container)
        .with_context(|| format!("while reading {}", args.container.display()))?;
    let view: bulkhead_core::view::ContainerView = serde_json::from_str(&text)
        .with_context(|| format!("while parsing {}", args.container.display()))?;
    let limits = args.limits.limits();
    let runtime = super::runtime_with_cache(&limits, Some(&args.cache))?;
    let plugin = runtime.load(&args.plugin, limits.clone())?;
    for _ in 0..10 {
        plugin.check_container(&view)?;
    }
    let mut times = Vec::with_capacity(args.iterations as usize);
    for _ in 0..args.iterations.max(1) {
        let started = Instant::now();
        plugin.check_container(&view)?;
        times.push(started.elapsed());
    }
    let summary = Summary::of(&mut times);
    println!(
        "plugin {} ({}), {} calls, fresh instance each",
        plugin.name(),
        args.plugin.display(),
        times.len()
    );
    println!(
        "per call: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  (budget {:?})",
        summary.p50, summary.p90, summary.p99, summary.max, limits.time_budget
    );
    println!(
        "peak linear memory: {:.1} MiB of the {:.1} MiB limit",
        plugin.peak_memory() as f64 / MIB,
        limits.memory_limit as f64 / MIB
    );
    Ok(())
}

const MIB: f64 = (1 << 20) as f64;

/// Latency percentiles of a run.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Summary {
    /// Sorts `times` and reads the percentiles (nearest rank).
    fn of(times: &mut [Duration]) -> Summary {
        times.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
            times[rank - 1]
        };
        Summary {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: times[times.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut times: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut times);
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p90, Duration::from_micros(90));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.max, Duration::from_micros(100));
        let mut one = vec![Duration::from_micros(7)];
        assert_eq!(Summary::of(&mut one).p99, Duration::from_micros(7));
    }
}
