//! How much bulkhead slows down a burst of pod starts: N concurrent CRI create+starts with and
//! without it.
//!
//! containerd holds one lock across every NRI call on the node, so when a kubelet starts many
//! containers at once the time bulkhead spends inside each call adds up: the burst waits for the
//! sum, not for one call. This benchmark makes such bursts: one private containerd 2.1 with NRI,
//! one pod, and for each burst size N, N tokio tasks that each create and start their own
//! busybox `sleep 3600` container through the CRI API, all released at once by a barrier. A
//! burst's wall time runs from the first task's release to the last StartContainer's answer;
//! each container's own create+start latency is kept too. Afterwards the containers are stopped
//! and removed (untimed).
//!
//! For each size the bursts alternate ABBA-style between the arms *without* bulkhead (no NRI
//! plugin registered) and *with* the real `bulkhead` binary and the test bed's config (the
//! baseline plugins), continuing from the previous size's last arm so no restart is wasted.
//! After each switch (SIGTERM until containerd logs the plugin's connection as closed, or start
//! until it logs it as synchronized) two containers are created and started one by one,
//! untimed, so no lazy first-event work lands in a burst.
//!
//! It prints, per size, the median wall time of each arm, their ratio and the per-container
//! p50/p95; for the with-arm also bulkhead's own time per event (`handler_us` on its `event`
//! log lines, when the binary logs it), summed per burst: that is the time the burst spent
//! serialized inside containerd's lock. It exits 0 whatever the numbers: it is a measurement,
//! not a test.
//!
//! Run it with `tests/bench/burst.sh [OPTIONS]`, which sets up the test bed and builds both
//! binaries in release first. bulkhead is `$BULKHEAD_BIN` or the one built next to this binary;
//! it logs at `$BULKHEAD_LOG`, default `info`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_e2e::bench::{
    self, Args, BulkheadSwitch, EventRecord, event_records, handler_times, median, ms, percentile,
    positive, positive_list, ratio, us,
};
use bulkhead_e2e::{Pod, Testbed, bulkhead_binary};
use tokio::sync::Barrier;

/// Untimed containers created and started one by one after each switch of arm.
const WARMUP: usize = 2;
/// The events of a create+start, in the order containerd sends them.
const EVENTS: [&str; 4] = [
    "CreateContainer",
    "PostCreateContainer",
    "StartContainer",
    "PostStartContainer",
];

const USAGE: &str = "\
usage: bulkhead-burst [--sizes N,N,...] [--rounds R] [--bulkhead-arg ARG]...

  --sizes N,N,...     burst sizes: containers created and started concurrently (default 10,20,50)
  --rounds R          bursts per arm per size (default 3)
  --bulkhead-arg ARG  extra argument for `bulkhead run`, repeatable (e.g. --bulkhead-arg
                      --config --bulkhead-arg FILE)

Needs root and `tests/testbed/setup.sh`; `tests/bench/burst.sh` does both builds.";

/// The two sides of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Without,
    With,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Without => "without",
            Arm::With => "with",
        }
    }

    fn other(self) -> Arm {
        match self {
            Arm::Without => Arm::With,
            Arm::With => Arm::Without,
        }
    }
}

/// `rounds` bursts per arm, ABBA-style from `first`: first, other, other, first, first, ...
fn abba(rounds: usize, first: Arm) -> Vec<Arm> {
    (0..rounds)
        .flat_map(|pair| {
            if pair % 2 == 0 {
                [first, first.other()]
            } else {
                [first.other(), first]
            }
        })
        .collect()
}

/// The prefix of the names of the containers of `arm`'s bursts of `size`.
fn prefix(size: usize, arm: Arm) -> String {
    format!("n{size}-{}-", arm.name())
}

/// The command line.
#[derive(Debug)]
struct Options {
    sizes: Vec<usize>,
    rounds: usize,
    bulkhead_args: Vec<String>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
        let mut options = Options {
            sizes: vec![10, 20, 50],
            rounds: 3,
            bulkhead_args: Vec::new(),
        };
        let mut args = Args::new(args);
        while let Some(name) = args.next_name() {
            match name.as_str() {
                "--sizes" => options.sizes = positive_list(&name, &args.value(&name)?)?,
                "--rounds" => options.rounds = positive(&name, &args.value(&name)?)?,
                "--bulkhead-arg" => options.bulkhead_args.push(args.value(&name)?),
                "-h" | "--help" => return Ok(None),
                _ => bail!("unknown argument {name:?}\n\n{USAGE}"),
            }
        }
        Ok(Some(options))
    }
}

/// One burst: its wall time and each container's create+start latency.
#[derive(Debug)]
struct Burst {
    wall: Duration,
    latencies: Vec<Duration>,
}

/// The benchmark's state: bulkhead when the with-arm runs, the containerd and its pod.
struct Bench {
    // Declared first so that, on an early return, bulkhead is killed before the test bed.
    bulkhead: BulkheadSwitch,
    testbed: Arc<Testbed>,
    pod: Pod,
    bulkhead_args: Vec<String>,
    warm: bool,
    warmups: usize,
}

impl Bench {
    /// Starts or stops bulkhead as `arm` needs, then warms the new state up (untimed).
    async fn enter(&mut self, arm: Arm) -> anyhow::Result<()> {
        let running = self.bulkhead.running();
        match arm {
            Arm::With if !running => {
                let mut command = self.testbed.bulkhead_command()?;
                command.args(&self.bulkhead_args);
                self.bulkhead.start(&self.testbed, command).await?;
            }
            Arm::Without if running => self.bulkhead.stop(&self.testbed).await?,
            _ if self.warm => return Ok(()),
            _ => {}
        }
        for _ in 0..WARMUP {
            self.warmups += 1;
            let name = format!("warm-{}", self.warmups);
            let id = run_one(&self.testbed, &self.pod, &name).await?.0;
            stop_and_remove(&self.testbed, &id, &name).await?;
        }
        self.warm = true;
        Ok(())
    }

    /// Creates and starts `size` containers at once, named `<tag>c<i>`; stops and removes
    /// them afterwards.
    async fn burst(&self, size: usize, tag: &str) -> anyhow::Result<Burst> {
        let barrier = Arc::new(Barrier::new(size));
        let tasks: Vec<_> = (0..size)
            .map(|i| {
                let (testbed, pod) = (Arc::clone(&self.testbed), self.pod.clone());
                let barrier = Arc::clone(&barrier);
                let name = format!("{tag}c{i}");
                tokio::spawn(async move {
                    barrier.wait().await;
                    let began = Instant::now();
                    let result = run_one(&testbed, &pod, &name).await;
                    (began, Instant::now(), name, result)
                })
            })
            .collect();

        let mut spans = Vec::with_capacity(size);
        let mut created = Vec::with_capacity(size);
        let mut failure = None;
        for task in tasks {
            let (began, ended, name, result) = task.await.context("a burst task panicked")?;
            match result {
                Ok((id, latency)) => {
                    spans.push((began, ended, latency));
                    created.push((id, name));
                }
                Err(error) => {
                    if let Some(id) = error.created.clone() {
                        created.push((id, name));
                    }
                    failure.get_or_insert(error.error);
                }
            }
        }

        // Untimed: the containers go away concurrently too, so large bursts stay quick.
        let cleanups: Vec<_> = created
            .into_iter()
            .map(|(id, name)| {
                let testbed = Arc::clone(&self.testbed);
                tokio::spawn(async move { stop_and_remove(&testbed, &id, &name).await })
            })
            .collect();
        for cleanup in cleanups {
            cleanup.await.context("a cleanup task panicked")??;
        }
        if let Some(error) = failure {
            return Err(error);
        }

        let first = spans.iter().map(|&(began, _, _)| began).min();
        let last = spans.iter().map(|&(_, ended, _)| ended).max();
        Ok(Burst {
            wall: match (first, last) {
                (Some(first), Some(last)) => last - first,
                _ => Duration::ZERO,
            },
            latencies: spans.into_iter().map(|(_, _, latency)| latency).collect(),
        })
    }
}

/// Why creating and starting one container failed, and its id if it was created.
struct RunError {
    created: Option<String>,
    error: anyhow::Error,
}

/// Creates and starts the container `name`; returns its id and the create+start latency.
async fn run_one(testbed: &Testbed, pod: &Pod, name: &str) -> Result<(String, Duration), RunError> {
    let began = Instant::now();
    let id = testbed
        .create_container(pod, bench::sleeper(name))
        .await
        .map_err(|status| RunError {
            created: None,
            error: anyhow::Error::new(status).context(format!("while creating container {name}")),
        })?;
    match testbed.start_container(&id).await {
        Ok(()) => Ok((id, began.elapsed())),
        Err(status) => Err(RunError {
            created: Some(id),
            error: anyhow::Error::new(status).context(format!("while starting container {name}")),
        }),
    }
}

impl From<RunError> for anyhow::Error {
    fn from(error: RunError) -> Self {
        error.error
    }
}

async fn stop_and_remove(testbed: &Testbed, id: &str, name: &str) -> anyhow::Result<()> {
    testbed
        .stop_container(id)
        .await
        .with_context(|| format!("while stopping container {name}"))?;
    testbed
        .remove_container(id)
        .await
        .with_context(|| format!("while removing container {name}"))
}

/// Every burst of one size, per arm.
#[derive(Debug, Default)]
struct SizeResults {
    without: Vec<Burst>,
    with: Vec<Burst>,
}

impl SizeResults {
    fn of(&self, arm: Arm) -> &[Burst] {
        match arm {
            Arm::Without => &self.without,
            Arm::With => &self.with,
        }
    }

    fn wall_median(&self, arm: Arm) -> Duration {
        median(&self.of(arm).iter().map(|b| b.wall).collect::<Vec<_>>())
    }

    fn wall_ratio(&self) -> f64 {
        ratio(self.wall_median(Arm::With), self.wall_median(Arm::Without))
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let binary = bulkhead_binary()?;
    bench::warn_if_debug(&binary);
    println!(
        "bulkhead burst: sizes {}; {} bursts per arm per size, ABBA",
        options
            .sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        options.rounds,
    );
    let testbed = Testbed::start().await?;
    println!(
        "bulkhead: {}",
        bench::show_command(&testbed, &options.bulkhead_args)?
    );
    let pod = testbed.run_pod("burst", "default").await?;
    let mut bench = Bench {
        bulkhead: BulkheadSwitch::default(),
        testbed: Arc::new(testbed),
        pod,
        bulkhead_args: options.bulkhead_args,
        warm: false,
        warmups: 0,
    };

    let began = Instant::now();
    let mut results: Vec<(usize, SizeResults)> = Vec::new();
    let mut next = Arm::Without;
    for &size in &options.sizes {
        let mut size_results = SizeResults::default();
        let plan = abba(options.rounds, next);
        for (round, &arm) in plan.iter().enumerate() {
            bench.enter(arm).await?;
            let tag = format!("{}r{round}-", prefix(size, arm));
            let burst = bench.burst(size, &tag).await?;
            match arm {
                Arm::Without => size_results.without.push(burst),
                Arm::With => size_results.with.push(burst),
            }
            next = arm;
        }
        results.push((size, size_results));
    }
    bench.bulkhead.stop(&bench.testbed).await?;
    bench.testbed.stop_and_remove_pod(&bench.pod).await?;
    println!(
        "measured in {:.0} s on {} cores, {} bulkhead starts",
        began.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench.bulkhead.starts(),
    );

    let records = event_records(bench.bulkhead.logs());
    for (size, size_results) in &results {
        println!();
        print_size(*size, size_results, options.rounds, &records);
    }
    println!();
    println!("wall-time ratio with ÷ without (medians):");
    for (size, size_results) in &results {
        println!("  N={size:<4} {:>6.2}x", size_results.wall_ratio());
    }
    println!("goal: N=20 ratio ≤ 1.10, not growing with N");
    Ok(())
}

/// The table of one burst size.
fn print_size(size: usize, results: &SizeResults, rounds: usize, records: &[EventRecord]) {
    println!("N={size}, {rounds} bursts per arm");
    println!(
        "  {:<8} {:>12} {:>15} {:>15}",
        "arm", "wall median", "container p50", "container p95"
    );
    for arm in [Arm::Without, Arm::With] {
        let latencies: Vec<Duration> = results
            .of(arm)
            .iter()
            .flat_map(|burst| burst.latencies.iter().copied())
            .collect();
        println!(
            "  {:<8} {:>12} {:>15} {:>15}",
            arm.name(),
            ms(results.wall_median(arm)),
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 95)),
        );
    }
    println!("  wall ratio with ÷ without: {:.2}x", results.wall_ratio());

    let with = prefix(size, Arm::With);
    let rows: Vec<(&str, Vec<Duration>)> = EVENTS
        .iter()
        .map(|&event| {
            let times = handler_times(records, event, |name| name.starts_with(&with));
            (event, times)
        })
        .filter(|(_, times)| !times.is_empty())
        .collect();
    if rows.is_empty() {
        println!("  bulkhead's handler time: n/a (this bulkhead does not log handler_us)");
        return;
    }
    println!(
        "  bulkhead's handler time in the with-arm (serialized inside containerd's NRI lock):"
    );
    println!(
        "    {:<20} {:>14} {:>9} {:>5}",
        "event", "sum per burst", "p95", "n"
    );
    for (event, times) in rows {
        let sum: Duration = times.iter().sum();
        println!(
            "    {event:<20} {:>14} {:>9} {:>5}",
            ms(sum / rounds as u32),
            us(percentile(&times, 95)),
            times.len(),
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    bench::until_interrupted(run(options)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abba_alternates_and_balances_the_arms() {
        use Arm::{With, Without};
        assert_eq!(abba(1, Without), [Without, With]);
        assert_eq!(abba(3, With), [With, Without, Without, With, With, Without]);
    }

    #[test]
    fn prefixes_tell_sizes_and_arms_apart() {
        assert!(!prefix(10, Arm::With).starts_with(&prefix(1, Arm::With)));
        assert!(!prefix(10, Arm::Without).starts_with(&prefix(10, Arm::With)));
    }
}
