//! The audit log: one JSON line per decision, appended to a file or written to standard output.
//!
//! A record says what was decided about which container, by which plugins (name, digest,
//! verdict, mutations, duration, error), what the merged result was, and what was actually
//! applied and verified. Records carry secret *names* only: values never reach the engine.

use std::fs::OpenOptions;
use std::io::{self, LineWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::SystemTime;

use bulkhead_core::config::AUDIT_STDOUT;
use bulkhead_core::decision::Verdict;
use bulkhead_core::merge::{Conflict, MergedMutations};
use bulkhead_core::view::ContainerView;
use serde::Serialize;

use super::chain::PluginRun;

/// One decision, as written to the log.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditRecord {
    /// RFC 3339 time of the decision.
    pub time: String,
    /// The decision point.
    pub event: String,
    /// The container.
    pub container: Subject,
    /// The pod.
    pub pod: PodSubject,
    /// The image.
    pub image: ImageSubject,
    /// Why the view is incomplete, when context could not be gathered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_error: Option<String>,
    /// Each plugin's part, in chain order.
    pub plugins: Vec<PluginRun>,
    /// The merged result of the enforcing plugins.
    pub result: ResultRecord,
    /// What was done about it.
    pub applied: Applied,
    /// The view the plugins were given, environment values redacted (`[audit] include-view`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<ContainerView>,
}

/// `view` as an audit record may hold it: every environment value (the process's and the
/// image config's) replaced by `<redacted>`, since pod env may carry Kubernetes secrets.
pub fn redacted(mut view: ContainerView) -> ContainerView {
    let redact = |env: &mut Vec<String>| {
        for entry in env.iter_mut() {
            let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
            *entry = format!("{name}=<redacted>");
        }
    };
    redact(&mut view.process.env);
    if let Some(config) = view.image.config.as_mut() {
        redact(&mut config.env);
    }
    view
}

/// A container's identity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Subject {
    /// Runtime id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A pod's identity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PodSubject {
    /// Sandbox id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID.
    pub uid: String,
}

/// The image as written and as resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageSubject {
    /// As the pod spec wrote it.
    pub reference: String,
    /// Normalized.
    pub normalized: String,
    /// Resolved digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The merged outcome.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResultRecord {
    /// Allow or deny (with the reason the CRI caller sees).
    pub verdict: Verdict,
    /// Merged mutations.
    pub mutations: MergedMutations,
    /// Conflicts between plugins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

/// What the engine did with the result.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Applied {
    /// `refused`, `allowed`, `refused-at-start` (decided at PostCreate, enforced at
    /// StartContainer), or `recorded` (nothing enforceable at this point).
    pub action: String,
    /// The stored spec was patched.
    pub spec_patched: bool,
    /// The changes went to the runtime as an NRI adjustment at CreateContainer, which it
    /// applies itself while building the container (no stored-spec patch, nothing to verify).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adjusted_at_create: bool,
    /// The patch was read back and carries every change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Why applying failed (the start is then refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time to patch and verify, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_us: Option<u64>,
    /// Why the container would have been refused had every plugin enforced (audit mode), when
    /// it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_refuse: Option<String>,
    /// The image name the runtime's `io.kubernetes.cri.image-name` annotation gave, when it was
    /// not the requested one (containerd 1.7) and the create-time plugins judged again under
    /// the requested name (the record's `image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_annotated_as: Option<String>,
}

/// Where records go. Cheap to clone.
///
/// Records are encoded and written by a dedicated thread, so a decision pays for handing its
/// record over, not for JSON encoding and a `write(2)`: the answer to containerd goes out
/// while the record is written. The queue is bounded ([`AUDIT_QUEUE`]); when it is full the
/// decision waits for room — records are never dropped. [`AuditLog::flush`] waits until every
/// record handed over so far is written; the daemon calls it before exiting. A record is lost
/// only if the process is killed in the instant between handing it over and its write.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::SyncSender<Job>,
}

/// Records waiting for the writer thread before a decision has to wait for room.
pub const AUDIT_QUEUE: usize = 4096;

/// Work for the writer thread.
enum Job {
    Record(Box<AuditRecord>),
    /// Answer once everything before it is written.
    Flush(mpsc::Sender<()>),
}

impl AuditLog {
    /// Opens the log: `-` is standard output, anything else a file opened for appending
    /// (created with mode 0600: records reveal workload details).
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let sink: Box<dyn Write + Send> = if path.as_os_str() == AUDIT_STDOUT {
            Box::new(LineWriter::new(io::stdout()))
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            Box::new(LineWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?,
            ))
        };
        AuditLog::start(sink)
    }

    /// A log writing into `sink` (tests).
    pub fn to_writer(sink: impl Write + Send + 'static) -> AuditLog {
        AuditLog::start(Box::new(sink)).expect("spawning the audit writer thread")
    }

    fn start(mut sink: Box<dyn Write + Send>) -> io::Result<AuditLog> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(AUDIT_QUEUE);
        std::thread::Builder::new()
            .name("bulkhead-audit".into())
            .spawn(move || {
                for job in jobs {
                    match job {
                        Job::Record(record) => write_record(&mut sink, &record),
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(AuditLog { queue })
    }

    /// Hands one record to the writer. A failing log is reported, never fatal to the decision.
    pub fn write(&self, record: AuditRecord) {
        if self.queue.send(Job::Record(Box::new(record))).is_err() {
            tracing::error!("the audit writer thread is gone; a record was not written");
        }
    }

    /// Waits until every record handed over before this call is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.queue.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// Encodes `record` (seccomp profiles summarized) and appends it as one line.
fn write_record(sink: &mut dyn Write, record: &AuditRecord) {
    let line = match serde_json::to_value(record).map(|mut value| {
        summarize_seccomp(&mut value);
        value.to_string()
    }) {
        Ok(line) => line,
        Err(error) => {
            tracing::error!(%error, "cannot encode an audit record");
            return;
        }
    };
    if let Err(error) = writeln!(sink, "{line}").and_then(|()| sink.flush()) {
        tracing::error!(%error, "cannot write the audit log");
    }
}

/// Replaces every seccomp profile in a record (a plugin's `set-seccomp` mutation, the merged
/// `seccomp` choice) with a summary: its sha256 over the canonical JSON, default action and rule
/// count. A default profile is ~15 KB of syscall names; written out twice per container it would
/// dominate the log, and the digest still tells which profile a container got.
fn summarize_seccomp(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let profile = match key.as_str() {
                    "set-seccomp" => Some(&mut *child),
                    "seccomp" => child.get_mut("value"),
                    _ => None,
                };
                match profile {
                    Some(profile) if profile.get("default-action").is_some() => {
                        *profile = profile_summary(profile);
                    }
                    _ => summarize_seccomp(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(summarize_seccomp),
        _ => {}
    }
}

fn profile_summary(profile: &serde_json::Value) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(profile.to_string().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "sha256": hex,
        "default-action": profile["default-action"],
        "rules": profile["syscalls"].as_array().map_or(0, Vec::len),
    })
}

/// The current time in RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A sink that is slow, so the writer thread falls behind the decisions.
    #[derive(Clone, Default)]
    struct SlowSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SlowSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.ends_with(b"\n") {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn record(name: &str) -> AuditRecord {
        AuditRecord {
            time: now(),
            event: "CreateContainer".into(),
            container: Subject {
                id: name.into(),
                name: name.into(),
            },
            pod: PodSubject::default(),
            image: ImageSubject::default(),
            context_error: None,
            plugins: Vec::new(),
            result: ResultRecord::default(),
            applied: Applied::default(),
            view: None,
        }
    }

    #[test]
    fn a_full_queue_makes_decisions_wait_and_loses_no_record() {
        let sink = SlowSink::default();
        let log = AuditLog::to_writer(sink.clone());
        let total = AUDIT_QUEUE + 500;
        for i in 0..total {
            log.write(record(&format!("c{i}")));
        }
        log.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let names: Vec<String> = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .map(|r| r["container"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), total);
        // In the order they were handed over.
        assert_eq!(names[0], "c0");
        assert_eq!(names[total - 1], format!("c{}", total - 1));
    }

    #[test]
    fn flush_waits_for_records_handed_over_before_it() {
        let sink = SlowSink::default();
        let log = AuditLog::to_writer(sink.clone());
        log.write(record("first"));
        log.flush();
        assert!(
            String::from_utf8(sink.0.lock().unwrap().clone())
                .unwrap()
                .contains("\"first\"")
        );
    }

    #[test]
    fn recorded_views_keep_env_names_and_drop_values() {
        let mut view = ContainerView::default();
        view.process.env = vec!["DB_PASSWORD=hunter2".into(), "EMPTY=".into(), "ODD".into()];
        view.image.config = Some(bulkhead_core::view::ImageConfig {
            env: vec!["TOKEN=abc".into()],
            ..Default::default()
        });
        let view = redacted(view);
        assert_eq!(
            view.process.env,
            [
                "DB_PASSWORD=<redacted>",
                "EMPTY=<redacted>",
                "ODD=<redacted>"
            ]
        );
        assert_eq!(view.image.config.unwrap().env, ["TOKEN=<redacted>"]);
    }

    #[test]
    fn seccomp_profiles_are_summarized_wherever_they_appear() {
        let profile = json!({"default-action": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
        let mut record = json!({
            "plugins": [{"outcome": {"decided": {"mutations": [{"set-seccomp": profile.clone()}, {"drop-capabilities": ["CAP_NET_RAW"]}]}}}],
            "result": {"mutations": {"seccomp": {"plugin": "seccomp", "value": profile.clone()}}}
        });
        summarize_seccomp(&mut record);
        let planned = &record["plugins"][0]["outcome"]["decided"]["mutations"][0]["set-seccomp"];
        let merged = &record["result"]["mutations"]["seccomp"]["value"];
        assert_eq!(planned, merged);
        assert_eq!(planned["rules"], 1);
        assert_eq!(planned["default-action"], "SCMP_ACT_ERRNO");
        assert_eq!(planned["sha256"].as_str().map(str::len), Some(64));
        assert_eq!(
            record["result"]["mutations"]["seccomp"]["plugin"],
            "seccomp"
        );
        assert_eq!(
            record["plugins"][0]["outcome"]["decided"]["mutations"][1]["drop-capabilities"][0],
            "CAP_NET_RAW"
        );
    }
}
