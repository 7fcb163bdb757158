//! What the CRI benchmarks (`bulkhead-cri-overhead`, `bulkhead-burst`) share: starting and
//! stopping the real bulkhead between measurements, reading its per-event handler times back
//! from its log, percentiles, and their small command lines.
//!
//! These are measurements, not tests: nothing here asserts, and the numbers only mean something
//! with release builds on a quiet machine.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{ContainerSpec, Process, Testbed, images, log_records};

/// What containerd 2.1 logs when an NRI plugin's connection goes away.
const PLUGIN_CLOSED: &str = "connection to plugin";
/// How long bulkhead may take to register, or to exit and be noticed by containerd.
const BULKHEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// How often containerd's log is reread while waiting.
const POLL: Duration = Duration::from_millis(20);

/// The container every benchmark creates: busybox sleeping for an hour, unconfined (no seccomp
/// request), as a kubelet without `seccompDefault` makes it.
pub fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(name, images::BUSYBOX).command(["sleep", "3600"])
}

/// bulkhead started and stopped between the arms of a benchmark, as containerd sees it.
///
/// Each start gets its own log file, so waiting for "synchronized" never matches an older
/// process's line; the logs of stopped processes are kept for [`event_records`].
#[derive(Debug, Default)]
pub struct BulkheadSwitch {
    process: Option<Process>,
    starts: usize,
    logs: Vec<String>,
}

impl BulkheadSwitch {
    /// Whether a bulkhead is registered now.
    pub fn running(&self) -> bool {
        self.process.is_some()
    }

    /// Starts `command` (from [`Testbed::bulkhead_command`] or its `_with_config` sibling) and
    /// returns once containerd itself lists the plugin as synchronized: only then do its calls
    /// go through bulkhead. It logs at `$BULKHEAD_LOG`, default `info` (what a node runs).
    pub async fn start(&mut self, testbed: &Testbed, mut command: Command) -> anyhow::Result<()> {
        if self.running() {
            bail!("bulkhead is already running");
        }
        command.env(
            "BULKHEAD_LOG",
            std::env::var("BULKHEAD_LOG").unwrap_or_else(|_| "info".to_string()),
        );
        self.starts += 1;
        let connected = testbed.containerd().plugin_connected_log();
        let synchronized_before = containerd_count(testbed, connected);
        let deadline = Instant::now() + BULKHEAD_TIMEOUT;
        let name = format!("bulkhead-{}", self.starts);
        let mut process = testbed.start_bulkhead(command, &name).await?;
        while containerd_count(testbed, connected) <= synchronized_before {
            if let Some(status) = process.try_wait()? {
                bail!("bulkhead exited ({status}):\n{}", process.log());
            }
            if Instant::now() >= deadline {
                bail!("containerd did not log bulkhead as connected ({connected:?})");
            }
            tokio::time::sleep(POLL).await;
        }
        self.process = Some(process);
        Ok(())
    }

    /// Stops bulkhead with SIGTERM, keeps its log, and returns once containerd has dropped the
    /// plugin. Does nothing when none runs.
    pub async fn stop(&mut self, testbed: &Testbed) -> anyhow::Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        let closed_before = containerd_count(testbed, PLUGIN_CLOSED);
        let status = process.terminate(BULKHEAD_TIMEOUT).await?;
        if !status.success() {
            eprintln!("warning: bulkhead exited with {status}");
        }
        self.logs.push(process.log());
        let deadline = Instant::now() + BULKHEAD_TIMEOUT;
        while containerd_count(testbed, PLUGIN_CLOSED) <= closed_before {
            if Instant::now() >= deadline {
                bail!("containerd did not log the bulkhead plugin's connection as closed");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// How many times bulkhead was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// The logs of every stopped bulkhead, oldest first.
    pub fn logs(&self) -> &[String] {
        &self.logs
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

/// One `event` line of bulkhead's log: which NRI event, for which container, and how long
/// bulkhead's handler took when the line says so (`handler_us`, logged once the event has been
/// answered; older binaries log the line before handling and without it).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The NRI event, as bulkhead names it (`CreateContainer`, `PostCreateContainer`, ...).
    pub event: String,
    /// The container's CRI name, empty for pod events.
    pub container: String,
    /// Time spent in bulkhead's handler.
    pub handler: Option<Duration>,
}

/// Every `event` record in `logs` (bulkhead's JSON logs), in order.
pub fn event_records(logs: &[String]) -> Vec<EventRecord> {
    logs.iter()
        .flat_map(|log| log_records(log))
        .filter(|record| record["message"] == "event")
        .map(|record| {
            let span = &record["span"];
            // Event fields are flattened into the record by bulkhead's JSON logger; accept the
            // nested `fields` object of tracing's default JSON layout too.
            let micros = [&record["handler_us"], &record["fields"]["handler_us"]]
                .into_iter()
                .find_map(serde_json::Value::as_f64);
            EventRecord {
                event: span["event"].as_str().unwrap_or_default().to_string(),
                container: span["container.name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                handler: micros.map(|us| Duration::from_secs_f64(us.max(0.0) / 1e6)),
            }
        })
        .collect()
}

/// The handler times of the `event` records of `records` whose container name passes `keep`.
pub fn handler_times(
    records: &[EventRecord],
    event: &str,
    keep: impl Fn(&str) -> bool,
) -> Vec<Duration> {
    records
        .iter()
        .filter(|r| r.event == event && keep(&r.container))
        .filter_map(|r| r.handler)
        .collect()
}

/// The median (mean of the middle two for an even count); zero for no values.
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// The nearest-rank `pct`th percentile; zero for no values.
pub fn percentile(values: &[Duration], pct: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// `duration` in milliseconds with one decimal, e.g. `12.3 ms`.
pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// `duration` in microseconds, e.g. `212 µs`, for bulkhead's own handler times.
pub fn us(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

/// `numerator / denominator` as a float (`NaN` for a zero denominator).
pub fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64()
}

/// Prints a note when `bulkhead_binary` looks like a debug build.
pub fn warn_if_debug(bulkhead_binary: &std::path::Path) {
    if bulkhead_binary.to_string_lossy().contains("/debug/") {
        println!(
            "note: {} is a debug build; for numbers that mean something use a release build \
             (the scripts in tests/bench build one)",
            bulkhead_binary.display()
        );
    }
}

/// The `bulkhead run` command line `testbed` would start with `extra` arguments, to print.
pub fn show_command(testbed: &Testbed, extra: &[String]) -> anyhow::Result<String> {
    let mut command = testbed.bulkhead_command()?;
    command.args(extra);
    let args: Vec<_> = command
        .get_args()
        .map(|arg| arg.to_string_lossy())
        .collect();
    Ok(format!(
        "{} {}",
        command.get_program().display(),
        args.join(" ")
    ))
}

/// A benchmark's command line: `--name value` or `--name=value` options and bare flags.
#[derive(Debug)]
pub struct Args<I> {
    args: I,
    inline: Option<String>,
}

impl<I: Iterator<Item = String>> Args<I> {
    /// Reads `args` (without the program name).
    pub fn new(args: I) -> Self {
        Args { args, inline: None }
    }

    /// The next option's name (`--rounds` for `--rounds=3`), or `None` at the end.
    pub fn next_name(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                self.inline = Some(value.to_string());
                Some(name.to_string())
            }
            _ => {
                self.inline = None;
                Some(arg)
            }
        }
    }

    /// Whether the current option came without `=value` (so it can be a flag).
    pub fn is_bare(&self) -> bool {
        self.inline.is_none()
    }

    /// The current option's value: after its `=`, or the next argument.
    pub fn value(&mut self, name: &str) -> anyhow::Result<String> {
        match self.inline.take() {
            Some(value) => Ok(value),
            None => self
                .args
                .next()
                .with_context(|| format!("{name} needs a value")),
        }
    }
}

/// `value` as a positive integer, for option `name`.
pub fn positive(name: &str, value: &str) -> anyhow::Result<usize> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name} wants a positive integer, not {value:?}"),
    }
}

/// `value` as a comma-separated list of positive integers, for option `name`.
pub fn positive_list(name: &str, value: &str) -> anyhow::Result<Vec<usize>> {
    value.split(',').map(|n| positive(name, n.trim())).collect()
}

/// Runs a benchmark until it ends or Ctrl-C; on Ctrl-C, dropping it kills bulkhead and tears
/// the containerd down.
pub async fn until_interrupted(
    benchmark: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        result = benchmark => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&millis(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(median(&millis(&[4, 1, 2, 3])), Duration::from_micros(2500));
        assert_eq!(median(&[]), Duration::ZERO);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&millis(&hundred), 90), Duration::from_millis(90));
        assert_eq!(percentile(&millis(&hundred), 95), Duration::from_millis(95));
        assert_eq!(percentile(&millis(&[7]), 90), Duration::from_millis(7));
        assert_eq!(percentile(&[], 90), Duration::ZERO);
    }

    #[test]
    fn args_take_inline_and_separate_values() {
        let line = ["--rounds=3", "--sizes", "5,10", "--flag"].map(String::from);
        let mut args = Args::new(line.into_iter());
        assert_eq!(args.next_name().as_deref(), Some("--rounds"));
        assert!(!args.is_bare());
        assert_eq!(args.value("--rounds").unwrap(), "3");
        assert_eq!(args.next_name().as_deref(), Some("--sizes"));
        let sizes = args.value("--sizes").unwrap();
        assert_eq!(positive_list("--sizes", &sizes).unwrap(), [5, 10]);
        assert_eq!(args.next_name().as_deref(), Some("--flag"));
        assert!(args.is_bare());
        assert!(args.value("--flag").is_err());
        assert_eq!(args.next_name(), None);
        assert!(positive("--rounds", "0").is_err());
    }

    #[test]
    fn event_records_read_flattened_and_nested_handler_times() {
        let log = [
            r#"{"message":"event","handler_us":250,"span":{"event":"CreateContainer","container.name":"a"}}"#,
            r#"{"fields":{"message":"x"},"message":"event","span":{"event":"StartContainer","container.name":"a"}}"#,
            r#"{"fields":{"handler_us":1000.0},"message":"event","span":{"event":"CreateContainer","container.name":"b"}}"#,
            r#"{"message":"synchronized with the runtime"}"#,
        ]
        .join("\n");
        let records = event_records(&[log]);
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].handler, None);
        assert_eq!(
            handler_times(&records, "CreateContainer", |_| true),
            [Duration::from_micros(250), Duration::from_millis(1)]
        );
        assert_eq!(
            handler_times(&records, "CreateContainer", |name| name == "b"),
            [Duration::from_millis(1)]
        );
    }
}
