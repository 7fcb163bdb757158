//! How much bulkhead slows down the CRI calls a kubelet makes: every ratio of the performance
//! table in one run.
//!
//! One private containerd 2.1 with NRI, one pod, and busybox `sleep 3600` containers created and
//! started through the CRI API; each CreateContainer and StartContainer call is timed, then the
//! container is stopped and removed (untimed) so the node does not fill up. Containers are
//! measured in named arms:
//!
//! | arm           | bulkhead                          | container's seccomp request |
//! | ------------- | --------------------------------- | --------------------------- |
//! | `none`        | not registered                    | none (unconfined)           |
//! | `none-rd`     | not registered                    | RuntimeDefault              |
//! | `baseline`    | the test bed's config (baseline)  | none: the baseline adds one |
//! | `baseline-rd` | the test bed's config (baseline)  | RuntimeDefault              |
//! | `empty`       | a config with `plugins = []`      | none (unconfined)           |
//!
//! The arms run in interleaved rounds, each round measuring a batch of containers per arm, so
//! drift on a shared machine hits every arm alike. Arms that share a bulkhead state (absent,
//! baseline, empty) run next to each other, and each round starts with the state the previous
//! one ended with, so bulkhead restarts stay few while every state takes its turn at going
//! first. Switching states stops bulkhead with SIGTERM (until containerd logs the plugin's
//! connection as closed) and starts the next one (until containerd logs it as connected and
//! synchronized). The first containers of each arm are warm-up and not counted.
//!
//! It prints the median and p90 latencies of each arm, the three create+start ratios the
//! performance issue sets goals for, and bulkhead's own time per event as it logs it
//! (`handler_us` on its `event` lines, when the binary logs it). It exits 0 whatever the
//! numbers: it is a measurement, not a test.
//!
//! Run it with `tests/bench/cri-overhead.sh [OPTIONS]`, which sets up the test bed and builds
//! both binaries in release first. bulkhead is `$BULKHEAD_BIN` or the one built next to this
//! binary; it logs at `$BULKHEAD_LOG`, default `info` (what a node would run, and one log line
//! per event). `--bulkhead-arg` arguments go to the baseline arms' `bulkhead run` only; a
//! `--config FILE` among them replaces the test bed's config (the last `--config` wins), so
//! FILE needs its own audit, sandbox cache and secrets settings.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_e2e::bench::{
    self, Args, BulkheadSwitch, EventRecord, event_records, handler_times, median, ms, percentile,
    positive, ratio, us,
};
use bulkhead_e2e::{Pod, Testbed, bulkhead_binary};

/// Containers of each arm that are created and started but not counted.
const WARMUP: usize = 2;

const USAGE: &str = "\
usage: bulkhead-cri-overhead [--rounds R] [--batch K] [--arms A,B,...] [--bulkhead-arg ARG]...
                             [--release-hint]

  --rounds R          interleaved rounds (default 4)
  --batch K           containers per arm per round (default 5); each arm measures R x K
                      containers after 2 warm-up ones, e.g. --rounds 20 --batch 5 for 100
  --arms A,B,...      the arms to run (default all): none, none-rd, baseline, baseline-rd, empty
                        none         no bulkhead, unconfined container
                        none-rd      no bulkhead, container asks for RuntimeDefault seccomp
                        baseline     bulkhead with the baseline plugins, unconfined container
                        baseline-rd  bulkhead with the baseline plugins, RuntimeDefault seccomp
                        empty        bulkhead with `plugins = []`, unconfined container
  --bulkhead-arg ARG  extra argument for the baseline arms' `bulkhead run`, repeatable (e.g.
                      --bulkhead-arg --config --bulkhead-arg FILE)
  --release-hint      warn if the bulkhead binary is a debug build

Needs root and `tests/testbed/setup.sh`; `tests/bench/cri-overhead.sh` does both builds.";

/// One way of creating a container: with or without bulkhead (and which config), with or
/// without a seccomp request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    None,
    NoneRd,
    Baseline,
    BaselineRd,
    Empty,
}

/// Every arm, in the order the tables list them.
const ARMS: [Arm; 5] = [
    Arm::None,
    Arm::NoneRd,
    Arm::Baseline,
    Arm::BaselineRd,
    Arm::Empty,
];

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::None => "none",
            Arm::NoneRd => "none-rd",
            Arm::Baseline => "baseline",
            Arm::BaselineRd => "baseline-rd",
            Arm::Empty => "empty",
        }
    }

    fn parse(name: &str) -> Option<Arm> {
        ARMS.into_iter().find(|arm| arm.name() == name)
    }

    /// What bulkhead must be doing while this arm's containers are made.
    fn state(self) -> State {
        match self {
            Arm::None | Arm::NoneRd => State::Absent,
            Arm::Baseline | Arm::BaselineRd => State::Baseline,
            Arm::Empty => State::Empty,
        }
    }

    /// Whether the container asks CRI for the runtime's default seccomp profile.
    fn runtime_default(self) -> bool {
        matches!(self, Arm::NoneRd | Arm::BaselineRd)
    }

    /// The name of this arm's `index`th container; warm-up ones are told apart by a `w`.
    fn container(self, index: usize, warmup: bool) -> String {
        let w = if warmup { "w" } else { "" };
        format!("{}-{w}{index}", self.name())
    }

    /// The arm and warm-up flag of a container named by [`Arm::container`].
    fn of_container(name: &str) -> Option<(Arm, bool)> {
        let (arm, index) = name.rsplit_once('-')?;
        let (warmup, digits) = match index.strip_prefix('w') {
            Some(digits) => (true, digits),
            None => (false, index),
        };
        digits.parse::<usize>().ok()?;
        Some((Arm::parse(arm)?, warmup))
    }
}

/// bulkhead's state while an arm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Absent,
    Baseline,
    Empty,
}

/// Every state, in the order of the first round.
const STATES: [State; 3] = [State::Absent, State::Baseline, State::Empty];

/// The order of the arms in each of `rounds` rounds.
///
/// Arms sharing a bulkhead state run back to back (one restart per state), and round `r + 1`
/// starts with the state round `r` ended with, so only the switches inside a round restart
/// bulkhead; that rotation also puts each state first in turn. Within a state the arms swap
/// places every other round.
fn schedule(arms: &[Arm], rounds: usize) -> Vec<Vec<Arm>> {
    let groups: Vec<Vec<Arm>> = STATES
        .into_iter()
        .map(|state| {
            ARMS.into_iter()
                .filter(|arm| arm.state() == state && arms.contains(arm))
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect();
    let n = groups.len();
    let mut plan = Vec::with_capacity(rounds);
    let mut first = 0;
    for round in 0..rounds {
        let mut order = Vec::with_capacity(arms.len());
        for i in 0..n {
            let group = &groups[(first + i) % n];
            if round % 2 == 0 {
                order.extend(group.iter().copied());
            } else {
                order.extend(group.iter().rev().copied());
            }
        }
        plan.push(order);
        first = (first + n - 1) % n;
    }
    plan
}

/// The command line.
#[derive(Debug)]
struct Options {
    rounds: usize,
    batch: usize,
    arms: Vec<Arm>,
    bulkhead_args: Vec<String>,
    release_hint: bool,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
        let mut options = Options {
            rounds: 4,
            batch: 5,
            arms: ARMS.to_vec(),
            bulkhead_args: Vec::new(),
            release_hint: false,
        };
        let mut args = Args::new(args);
        while let Some(name) = args.next_name() {
            match name.as_str() {
                "--rounds" => options.rounds = positive(&name, &args.value(&name)?)?,
                "--batch" => options.batch = positive(&name, &args.value(&name)?)?,
                "--arms" => options.arms = parse_arms(&args.value(&name)?)?,
                "--bulkhead-arg" => options.bulkhead_args.push(args.value(&name)?),
                "--release-hint" if args.is_bare() => options.release_hint = true,
                "-h" | "--help" => return Ok(None),
                _ => bail!("unknown argument {name:?}\n\n{USAGE}"),
            }
        }
        Ok(Some(options))
    }
}

/// A comma-separated list of arm names, in any order, without repeats.
fn parse_arms(value: &str) -> anyhow::Result<Vec<Arm>> {
    let mut arms = Vec::new();
    for name in value.split(',').map(str::trim) {
        let arm = Arm::parse(name).with_context(|| {
            format!(
                "unknown arm {name:?}: the arms are {}",
                ARMS.map(Arm::name).join(", ")
            )
        })?;
        if !arms.contains(&arm) {
            arms.push(arm);
        }
    }
    Ok(arms)
}

/// One container's CRI latencies.
#[derive(Debug, Clone, Copy)]
struct Sample {
    create: Duration,
    start: Duration,
}

/// The benchmark's state: the containerd, its pod, and bulkhead in the state the arm needs.
struct Bench {
    // Declared first so that, on an early return, bulkhead is killed before the test bed.
    bulkhead: BulkheadSwitch,
    testbed: Testbed,
    pod: Pod,
    state: State,
    bulkhead_args: Vec<String>,
}

impl Bench {
    /// Stops and starts bulkhead as `state` needs (nothing when it is already there).
    async fn enter(&mut self, state: State) -> anyhow::Result<()> {
        if state == self.state {
            return Ok(());
        }
        self.bulkhead.stop(&self.testbed).await?;
        let command = match state {
            State::Absent => None,
            State::Baseline => {
                let mut command = self.testbed.bulkhead_command()?;
                command.args(&self.bulkhead_args);
                Some(command)
            }
            // The test bed's config with its plugin list emptied: same audit log, plugin cache
            // and secrets settings, written to the same file in the test bed directory.
            State::Empty => Some(self.testbed.bulkhead_command_with_config("plugins = []")?),
        };
        if let Some(command) = command {
            self.bulkhead.start(&self.testbed, command).await?;
        }
        self.state = state;
        Ok(())
    }

    /// Creates and starts the container `name` of `arm`, timing both calls, then stops and
    /// removes it.
    async fn measure_one(&self, arm: Arm, name: &str) -> anyhow::Result<Sample> {
        let mut spec = bench::sleeper(name);
        if arm.runtime_default() {
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

/// The measured samples of every arm, in [`ARMS`] order.
#[derive(Debug, Default)]
struct Results {
    samples: [Vec<Sample>; ARMS.len()],
    created: [usize; ARMS.len()],
}

impl Results {
    fn of(&self, arm: Arm) -> &[Sample] {
        &self.samples[arm as usize]
    }

    /// The median create+start of `arm`, if it ran.
    fn total(&self, arm: Arm) -> Option<Duration> {
        let samples = self.of(arm);
        (!samples.is_empty()).then(|| median(&pick(samples, |s| s.create + s.start)))
    }
}

fn pick(samples: &[Sample], f: fn(&Sample) -> Duration) -> Vec<Duration> {
    samples.iter().map(f).collect()
}

async fn run(options: Options) -> anyhow::Result<()> {
    let binary = bulkhead_binary()?;
    if options.release_hint {
        bench::warn_if_debug(&binary);
    }
    let plan = schedule(&options.arms, options.rounds);
    let names: Vec<_> = options.arms.iter().map(|arm| arm.name()).collect();
    println!(
        "bulkhead CRI overhead: arms {}; {} rounds of {} containers per arm (+{WARMUP} warm-up \
         per arm)",
        names.join(", "),
        options.rounds,
        options.batch,
    );

    let testbed = Testbed::start().await?;
    println!(
        "bulkhead (baseline arms): {}",
        bench::show_command(&testbed, &options.bulkhead_args)?
    );
    if options.arms.contains(&Arm::Empty) {
        println!("bulkhead (empty arm): the same config with `plugins = []`, no extra arguments");
    }
    let pod = testbed.run_pod("bench", "default").await?;
    let mut bench = Bench {
        bulkhead: BulkheadSwitch::default(),
        testbed,
        pod,
        state: State::Absent,
        bulkhead_args: options.bulkhead_args,
    };

    let began = Instant::now();
    let mut results = Results::default();
    for round in &plan {
        for &arm in round {
            bench.enter(arm.state()).await?;
            let done = results.created[arm as usize];
            let warmup = WARMUP.saturating_sub(done);
            for index in done..done + warmup + options.batch {
                let is_warmup = index < WARMUP;
                let name = arm.container(index, is_warmup);
                let sample = bench.measure_one(arm, &name).await?;
                results.created[arm as usize] += 1;
                if !is_warmup {
                    results.samples[arm as usize].push(sample);
                }
            }
        }
    }
    bench.bulkhead.stop(&bench.testbed).await?;
    bench.testbed.stop_and_remove_pod(&bench.pod).await?;
    let elapsed = began.elapsed();
    let records = event_records(bench.bulkhead.logs());

    println!(
        "measured {} containers per arm in {:.0} s on {} cores, {} bulkhead starts",
        options.rounds * options.batch,
        elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench.bulkhead.starts(),
    );
    warn_about_missing_events(&options.arms, &results, &records);
    println!();
    print_latencies(&options.arms, &results);
    println!();
    print_ratios(&results);
    println!();
    print_handler_times(&options.arms, &records);
    Ok(())
}

/// bulkhead logs one `event` record per NRI event at info level: say so if it saw fewer
/// CreateContainer events than it was sent (e.g. `BULKHEAD_LOG` below info). The empty arm is
/// left out: with no plugin, bulkhead does not subscribe to CreateContainer at all.
fn warn_about_missing_events(arms: &[Arm], results: &Results, records: &[EventRecord]) {
    for &arm in arms.iter().filter(|arm| arm.state() == State::Baseline) {
        let seen = records
            .iter()
            .filter(|r| r.event == "CreateContainer")
            .filter(|r| Arm::of_container(&r.container).is_some_and(|(a, _)| a == arm))
            .count();
        let created = results.created[arm as usize];
        if seen < created {
            println!(
                "warning: bulkhead logged {seen} CreateContainer events for the {created} \
                 containers of arm {} (BULKHEAD_LOG below info?)",
                arm.name()
            );
        }
    }
}

/// Median and p90 of create, start and create+start, one line per arm.
fn print_latencies(arms: &[Arm], results: &Results) {
    println!(
        "{:<12} {:>19}   {:>19}   {:>19}",
        "", "create", "start", "create+start"
    );
    println!(
        "{:<12} {:>9} {:>9}   {:>9} {:>9}   {:>9} {:>9}",
        "arm", "median", "p90", "median", "p90", "median", "p90"
    );
    for &arm in ARMS.iter().filter(|arm| arms.contains(arm)) {
        let samples = results.of(arm);
        let columns: Vec<String> = [
            pick(samples, |s| s.create),
            pick(samples, |s| s.start),
            pick(samples, |s| s.create + s.start),
        ]
        .iter()
        .map(|values| {
            format!(
                "{:>9} {:>9}",
                ms(median(values)),
                ms(percentile(values, 90))
            )
        })
        .collect();
        println!("{:<12} {}", arm.name(), columns.join("   "));
    }
}

/// The three create+start median ratios the performance issue sets goals for.
fn print_ratios(results: &Results) {
    let goals = [
        (
            Arm::Baseline,
            Arm::NoneRd,
            "goal ≤ 0.95: bulkhead's baseline on an unconfined container vs the runtime's own \
             hardening without bulkhead",
        ),
        (
            Arm::BaselineRd,
            Arm::NoneRd,
            "goal ≤ 1.05: bulkhead's own cost",
        ),
        (Arm::Empty, Arm::None, "goal ≤ 1.02: protocol cost"),
    ];
    println!("create+start median ratios:");
    for (numerator, denominator, goal) in goals {
        let label = format!("{} ÷ {}", numerator.name(), denominator.name());
        let value = match (results.total(numerator), results.total(denominator)) {
            (Some(a), Some(b)) => format!("{:.2}x", ratio(a, b)),
            _ => "n/a".to_string(),
        };
        println!("  {label:<22} {value:>6}  ({goal})");
    }
}

/// bulkhead's own time per event (`handler_us`), per arm with bulkhead and event.
fn print_handler_times(arms: &[Arm], records: &[EventRecord]) {
    const EVENTS: [&str; 3] = ["PostCreateContainer", "CreateContainer", "StartContainer"];
    println!("bulkhead's handler time per event (handler_us in its log, measured containers):");
    if records.iter().all(|r| r.handler.is_none()) {
        println!("  n/a: this bulkhead does not log handler_us");
        return;
    }
    println!(
        "  {:<12} {:<20} {:>8} {:>8} {:>5}",
        "arm", "event", "p50", "p90", "n"
    );
    for &arm in ARMS.iter().filter(|arm| arms.contains(arm)) {
        if arm.state() == State::Absent {
            continue;
        }
        for event in EVENTS {
            let times = handler_times(records, event, |name| {
                Arm::of_container(name) == Some((arm, false))
            });
            let (p50, p90) = if times.is_empty() {
                ("n/a".to_string(), "n/a".to_string())
            } else {
                (us(percentile(&times, 50)), us(percentile(&times, 90)))
            };
            println!(
                "  {:<12} {event:<20} {p50:>8} {p90:>8} {:>5}",
                arm.name(),
                times.len()
            );
        }
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
    fn every_round_runs_every_arm_once_and_rounds_chain_their_states() {
        let plan = schedule(&ARMS, 6);
        for round in &plan {
            let mut sorted: Vec<_> = round.iter().map(|&arm| arm as usize).collect();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
        }
        for pair in plan.windows(2) {
            let (last, next) = (pair[0].last().unwrap(), pair[1][0]);
            assert_eq!(last.state(), next.state(), "{plan:?}");
        }
        let firsts: Vec<State> = plan.iter().map(|round| round[0].state()).collect();
        for state in STATES {
            assert!(firsts.contains(&state), "{state:?} never goes first");
        }
        let firsts: Vec<Arm> = plan.iter().map(|round| round[0]).collect();
        assert!(firsts.contains(&Arm::None) && firsts.contains(&Arm::NoneRd));
    }

    #[test]
    fn two_states_alternate_abba() {
        let plan = schedule(&[Arm::None, Arm::Baseline], 4);
        let names: Vec<Vec<&str>> = plan
            .iter()
            .map(|round| round.iter().map(|arm| arm.name()).collect())
            .collect();
        assert_eq!(
            names,
            [
                ["none", "baseline"],
                ["baseline", "none"],
                ["none", "baseline"],
                ["baseline", "none"]
            ]
        );
    }

    #[test]
    fn container_names_map_back_to_their_arm() {
        for arm in ARMS {
            assert_eq!(
                Arm::of_container(&arm.container(3, false)),
                Some((arm, false))
            );
            assert_eq!(
                Arm::of_container(&arm.container(1, true)),
                Some((arm, true))
            );
        }
        assert_eq!(Arm::of_container("bench-1"), None);
        assert_eq!(Arm::of_container("baseline-rd"), None);
    }

    #[test]
    fn arms_parse_and_reject_unknown_names() {
        assert_eq!(
            parse_arms("empty, none,empty").unwrap(),
            [Arm::Empty, Arm::None]
        );
        assert!(parse_arms("none,fast").is_err());
    }
}
