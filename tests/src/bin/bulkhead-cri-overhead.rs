//! How much bulkhead slows down the CRI calls a kubelet makes, as ratios with/without it.
//!
//! One private containerd 2.1 with NRI, one pod, and busybox `sleep 3600` containers created and
//! started through the CRI API; each CreateContainer and StartContainer call is timed, then the
//! container is stopped and removed (untimed) so the node does not fill up. The containers are
//! measured in two arms, *without* bulkhead (no NRI plugin registered) and *with* the real
//! `bulkhead` binary registered, in batches that alternate ABBA-style (without, with, with,
//! without, without, ...) so that drift on a shared machine affects both arms equally. Between
//! arms bulkhead is started (and waited for until synchronized) or stopped with SIGTERM (and
//! waited for until containerd logs the plugin's connection as closed). The first containers
//! of each arm are warm-up and not counted.
//!
//! It prints the median and p90 latencies of each arm and their ratios with/without, and exits 0
//! whatever the ratio: it is a measurement, not a test.
//!
//! Run it with `tests/bench/cri-overhead.sh [OPTIONS]`, which sets up the test bed and builds
//! both binaries in release first. bulkhead is `$BULKHEAD_BIN` or the one built next to this
//! binary; it logs at `$BULKHEAD_LOG`, default `info` (what a node would run, and one log line
//! per event). It runs with the test bed's config, i.e. the built-in baseline plugins; a
//! `--bulkhead-arg --config --bulkhead-arg FILE` replaces that config (the last `--config`
//! wins), so FILE needs its own audit, sandbox cache and secrets settings, and `plugins = []`
//! in it measures bulkhead without any plugin.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_e2e::{ContainerSpec, Pod, Process, Testbed, bulkhead_binary, images, log_records};

/// Containers of each arm that are created and started but not counted.
const WARMUP: usize = 2;
/// What containerd 2.1 logs when an NRI plugin's connection goes away.
const PLUGIN_CLOSED: &str = "connection to plugin";
/// How long bulkhead may take to register, or to exit and be noticed by containerd.
const BULKHEAD_TIMEOUT: Duration = Duration::from_secs(15);

const USAGE: &str = "\
usage: bulkhead-cri-overhead [--rounds N] [--batch K] [--bulkhead-arg ARG]... [--release-hint]
                             [--runtime-default-seccomp]

  --rounds N          containers measured per arm, after 2 warm-up ones (default 20, at least 1)
  --batch K           containers per batch before switching arms (default 5)
  --bulkhead-arg ARG  extra argument for `bulkhead run`, repeatable (e.g. --bulkhead-arg
                      --config --bulkhead-arg FILE)
  --release-hint      warn if the bulkhead binary is a debug build
  --runtime-default-seccomp
                      every container (both arms) asks CRI for the runtime's default seccomp
                      profile, so both arms pay for a seccomp filter and the ratio isolates
                      bulkhead's own cost (the baseline gives unconfined containers a profile,
                      which runc must compile at start)

Needs root and `tests/testbed/setup.sh`; `tests/bench/cri-overhead.sh` does both builds.";

/// The command line.
#[derive(Debug)]
struct Options {
    rounds: usize,
    batch: usize,
    bulkhead_args: Vec<String>,
    release_hint: bool,
    runtime_default_seccomp: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
        let mut options = Options {
            rounds: 20,
            batch: 5,
            bulkhead_args: Vec::new(),
            release_hint: false,
            runtime_default_seccomp: false,
        };
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
                _ => (arg.clone(), None),
            };
            let mut value = || -> anyhow::Result<String> {
                match inline {
                    Some(value) => Ok(value.to_string()),
                    None => args.next().with_context(|| format!("{name} needs a value")),
                }
            };
            match name.as_str() {
                "--rounds" => options.rounds = positive(&name, &value()?)?,
                "--batch" => options.batch = positive(&name, &value()?)?,
                "--bulkhead-arg" => options.bulkhead_args.push(value()?),
                "--release-hint" if inline.is_none() => options.release_hint = true,
                "--runtime-default-seccomp" if inline.is_none() => {
                    options.runtime_default_seccomp = true
                }
                "-h" | "--help" => return Ok(None),
                _ => bail!("unknown argument {arg:?}\n\n{USAGE}"),
            }
        }
        Ok(Some(options))
    }
}

fn positive(name: &str, value: &str) -> anyhow::Result<usize> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name} wants a positive integer, not {value:?}"),
    }
}

/// The two sides of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Without,
    With,
}

/// One container's CRI latencies.
#[derive(Debug, Clone, Copy)]
struct Sample {
    create: Duration,
    start: Duration,
}

/// Which arm runs how many containers, in order: batches of at most `batch` containers per arm,
/// paired ABBA-style (without+with, then with+without, ...) so neither arm always goes first.
fn schedule(per_arm: usize, batch: usize) -> Vec<(Arm, usize)> {
    let mut plan: Vec<(Arm, usize)> = Vec::new();
    let mut left = per_arm;
    let mut pair = 0;
    while left > 0 {
        let n = left.min(batch);
        left -= n;
        let order = if pair % 2 == 0 {
            [Arm::Without, Arm::With]
        } else {
            [Arm::With, Arm::Without]
        };
        for arm in order {
            match plan.last_mut() {
                Some((last, count)) if *last == arm => *count += n,
                _ => plan.push((arm, n)),
            }
        }
        pair += 1;
    }
    plan
}

/// The median (mean of the middle two for an even count) of non-empty `values`.
fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// The nearest-rank 90th percentile of non-empty `values`.
fn p90(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (sorted.len() * 9).div_ceil(10).max(1);
    sorted[rank - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn ratio(with: Duration, without: Duration) -> f64 {
    with.as_secs_f64() / without.as_secs_f64()
}

/// The benchmark's state: the containerd, its pod, and bulkhead when the with-arm runs.
struct Bench {
    testbed: Testbed,
    pod: Pod,
    bulkhead_args: Vec<String>,
    bulkhead: Option<Process>,
    starts: usize,
    containers: usize,
    bulkhead_logs: Vec<String>,
    runtime_default_seccomp: bool,
}

impl Bench {
    /// Registers bulkhead with containerd and waits until it is synchronized.
    async fn start_bulkhead(&mut self) -> anyhow::Result<()> {
        let mut command = self.testbed.bulkhead_command()?;
        command.args(&self.bulkhead_args).env(
            "BULKHEAD_LOG",
            std::env::var("BULKHEAD_LOG").unwrap_or_else(|_| "info".to_string()),
        );
        self.starts += 1;
        // One log per start: start_bulkhead looks for the first "synchronized" line of the log.
        let name = format!("bulkhead-{}", self.starts);
        let started = Instant::now();
        let mut process = self.testbed.start_bulkhead(command, &name).await?;
        // The with-arm only counts once containerd itself has the plugin in its list.
        let deadline = started + BULKHEAD_TIMEOUT;
        while containerd_count(&self.testbed, "connected and synchronized") < self.starts {
            if let Some(status) = process.try_wait()? {
                bail!("bulkhead exited ({status}):\n{}", process.log());
            }
            if Instant::now() >= deadline {
                bail!("containerd did not log bulkhead as connected and synchronized");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.bulkhead = Some(process);
        Ok(())
    }

    /// Stops bulkhead (SIGTERM) and waits until containerd has dropped the plugin.
    async fn stop_bulkhead(&mut self) -> anyhow::Result<()> {
        let Some(mut process) = self.bulkhead.take() else {
            return Ok(());
        };
        let closed_before = containerd_count(&self.testbed, PLUGIN_CLOSED);
        let status = process.terminate(BULKHEAD_TIMEOUT).await?;
        if !status.success() {
            eprintln!("warning: bulkhead exited with {status}");
        }
        self.bulkhead_logs.push(process.log());
        let deadline = Instant::now() + BULKHEAD_TIMEOUT;
        while containerd_count(&self.testbed, PLUGIN_CLOSED) <= closed_before {
            if Instant::now() >= deadline {
                bail!("containerd did not log the bulkhead plugin's connection as closed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Creates and starts one container, timing both calls, then stops and removes it.
    async fn measure_one(&mut self) -> anyhow::Result<Sample> {
        self.containers += 1;
        let name = format!("bench-{}", self.containers);
        let mut spec = ContainerSpec::new(&name, images::BUSYBOX).command(["sleep", "3600"]);
        if self.runtime_default_seccomp {
            spec = spec.seccomp_runtime_default();
        }

        let started = Instant::now();
        let id = self
            .testbed
            .create_container(&self.pod, spec)
            .await
            .with_context(|| format!("while creating container {name}"))?;
        let create = started.elapsed();

        let started = Instant::now();
        let start = self.testbed.start_container(&id).await;
        let start_time = started.elapsed();

        let stopped = self.testbed.stop_container(&id).await;
        let removed = self.testbed.remove_container(&id).await;
        start.with_context(|| format!("while starting container {name}"))?;
        stopped.with_context(|| format!("while stopping container {name}"))?;
        removed.with_context(|| format!("while removing container {name}"))?;
        Ok(Sample {
            create,
            start: start_time,
        })
    }
}

/// How many lines of containerd's log contain `pattern`.
fn containerd_count(testbed: &Testbed, pattern: &str) -> usize {
    testbed
        .containerd_log()
        .lines()
        .filter(|line| line.contains(pattern))
        .count()
}

/// One row of the table: a latency of both arms and their ratios.
fn row(label: &str, without: &[Duration], with: &[Duration]) -> f64 {
    let (without_median, with_median) = (median(without), median(with));
    let (without_p90, with_p90) = (p90(without), p90(with));
    let median_ratio = ratio(with_median, without_median);
    println!(
        "{label:<13} {:>9} {:>9}   {:>9} {:>9}   {:>6.2}x {:>6.2}x",
        ms(without_median),
        ms(without_p90),
        ms(with_median),
        ms(with_p90),
        median_ratio,
        ratio(with_p90, without_p90),
    );
    median_ratio
}

async fn run(options: Options) -> anyhow::Result<()> {
    let binary = bulkhead_binary()?;
    if options.release_hint && binary.to_string_lossy().contains("/debug/") {
        println!(
            "note: {} is a debug build; for numbers that mean something use a release build \
             (tests/bench/cri-overhead.sh builds one)",
            binary.display()
        );
    }
    let per_arm = options.rounds + WARMUP;
    let plan = schedule(per_arm, options.batch);
    println!(
        "bulkhead CRI overhead: {} containers per arm (+{WARMUP} warm-up), batches of {}, {} \
         arm switches",
        options.rounds,
        options.batch,
        plan.len() - 1
    );

    let testbed = Testbed::start().await?;
    // The fixture's command already carries a config (the baseline plugins, with audit log,
    // plugin cache and secrets inside the test bed); a later --config given with
    // --bulkhead-arg replaces it.
    let mut command = testbed.bulkhead_command()?;
    command.args(&options.bulkhead_args);
    let shown: Vec<_> = command
        .get_args()
        .map(|arg| arg.to_string_lossy())
        .collect();
    println!(
        "bulkhead: {} {}",
        command.get_program().display(),
        shown.join(" ")
    );
    let pod = testbed.run_pod("bench", "default").await?;
    let mut bench = Bench {
        testbed,
        pod,
        bulkhead_args: options.bulkhead_args,
        bulkhead: None,
        starts: 0,
        containers: 0,
        bulkhead_logs: Vec::new(),
        runtime_default_seccomp: options.runtime_default_seccomp,
    };

    let began = Instant::now();
    let mut without: Vec<Sample> = Vec::new();
    let mut with: Vec<Sample> = Vec::new();
    for (arm, count) in plan {
        match arm {
            Arm::With => bench.start_bulkhead().await?,
            Arm::Without => bench.stop_bulkhead().await?,
        }
        for _ in 0..count {
            let sample = bench.measure_one().await?;
            match arm {
                Arm::With => with.push(sample),
                Arm::Without => without.push(sample),
            }
        }
    }
    bench.stop_bulkhead().await?;
    bench.testbed.stop_and_remove_pod(&bench.pod).await?;
    let elapsed = began.elapsed();

    // bulkhead logs one "event" record per NRI event at info level: make sure it saw them.
    let seen = bench
        .bulkhead_logs
        .iter()
        .flat_map(|log| log_records(log))
        .filter(|r| r["message"] == "event" && r["span"]["event"] == "CreateContainer")
        .count();
    if seen < with.len() {
        println!(
            "warning: bulkhead logged {seen} CreateContainer events for {} containers \
             (BULKHEAD_LOG below info?)",
            with.len()
        );
    }

    let without = &without[WARMUP..];
    let with = &with[WARMUP..];
    let pick = |samples: &[Sample], f: fn(&Sample) -> Duration| -> Vec<Duration> {
        samples.iter().map(f).collect()
    };
    println!(
        "measured {} + {} containers in {:.0} s on {} cores",
        without.len(),
        with.len(),
        elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<13} {:>19}   {:>19}   {:>15}",
        "", "without bulkhead", "with bulkhead", "ratio with/w/o"
    );
    println!(
        "{:<13} {:>9} {:>9}   {:>9} {:>9}   {:>7} {:>7}",
        "", "median", "p90", "median", "p90", "median", "p90"
    );
    row(
        "create",
        &pick(without, |s| s.create),
        &pick(with, |s| s.create),
    );
    row(
        "start",
        &pick(without, |s| s.start),
        &pick(with, |s| s.start),
    );
    let total = row(
        "create+start",
        &pick(without, |s| s.create + s.start),
        &pick(with, |s| s.create + s.start),
    );
    println!();
    println!("create+start ratio: {total:.2}x (goal <= 1.10x)");
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    // On Ctrl-C, dropping the benchmark kills bulkhead and tears the containerd down.
    tokio::select! {
        result = run(options) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}
