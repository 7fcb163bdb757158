//! The per-call store data and the host side of the `bulkhead:plugin/host` interface.
//!
//! One [`CallState`] lives exactly as long as one call's store, so the log budget, the memory
//! accounting and the "last error line" start fresh for every container. None of the imports can
//! fail or panic: a plugin can only ever lose its own log lines.

use std::sync::Arc;

use bulkhead_core::seccomp_profiles::HeldProfiles;

use crate::bindings::types::LogLevel;
use crate::limits::MAX_LOG_LINE_BYTES;

/// Everything a call's store holds: who is running, what it may use, what it did.
pub(crate) struct CallState {
    /// Plugin name for log attribution.
    pub plugin: Arc<str>,
    /// The operator's config string.
    pub config: Arc<str>,
    /// Log lines still allowed in this call.
    pub logs_left: u32,
    /// Log lines dropped by the rate limit in this call.
    pub logs_dropped: u32,
    /// Last line logged at error level (the SDK's panic hook writes panics there).
    pub last_error: Option<String>,
    /// Linear memory cap in bytes.
    pub memory_limit: usize,
    /// Set when the plugin tried to grow past `memory_limit`.
    pub memory_exceeded: bool,
    /// The largest linear memory size granted in this call, in bytes.
    pub peak_memory: usize,
    /// The seccomp profiles the host holds, for `seccomp-profiles`.
    pub profiles: Arc<HeldProfiles>,
}

impl CallState {
    pub fn new(
        plugin: Arc<str>,
        config: Arc<str>,
        log_lines: u32,
        memory_limit: usize,
        profiles: Arc<HeldProfiles>,
    ) -> Self {
        CallState {
            profiles,
            plugin,
            config,
            logs_left: log_lines,
            logs_dropped: 0,
            last_error: None,
            memory_limit,
            memory_exceeded: false,
            peak_memory: 0,
        }
    }
}

/// The line as logged: cut to [`MAX_LOG_LINE_BYTES`] and with control characters escaped, so a
/// plugin cannot forge log lines or send terminal sequences to an operator's console.
fn truncate(message: String) -> String {
    bulkhead_core::text::bounded(&message, MAX_LOG_LINE_BYTES)
}

impl CallState {
    /// `log`: attributed, rate-limited, cut and escaped; never fails.
    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        let message = truncate(message);
        if matches!(level, LogLevel::Error) {
            self.last_error = Some(message.clone());
        }
        if self.logs_left == 0 {
            self.logs_dropped = self.logs_dropped.saturating_add(1);
            return;
        }
        self.logs_left -= 1;
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// `config`: the operator's configuration text.
    pub(crate) fn config(&mut self) -> String {
        self.config.to_string()
    }

    /// `seccomp-profiles`: the names `use-seccomp-profile` accepts, sorted.
    pub(crate) fn seccomp_profiles(&mut self) -> Vec<String> {
        self.profiles.names().map(str::to_owned).collect()
    }
}

impl crate::bindings::current::bulkhead::plugin::host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        CallState::log(self, level, message)
    }

    fn config(&mut self) -> String {
        CallState::config(self)
    }

    fn seccomp_profiles(&mut self) -> Vec<String> {
        CallState::seccomp_profiles(self)
    }
}

/// The `host` interface of the older WIT versions: `log` and `config`, with 0.2.0's log level.
macro_rules! older_host_interface {
    ($($host:path),*) => {$(
        impl $host for CallState {
            fn log(&mut self, level: OlderLogLevel, message: String) {
                let level = match level {
                    OlderLogLevel::Trace => LogLevel::Trace,
                    OlderLogLevel::Debug => LogLevel::Debug,
                    OlderLogLevel::Info => LogLevel::Info,
                    OlderLogLevel::Warn => LogLevel::Warn,
                    OlderLogLevel::Error => LogLevel::Error,
                };
                CallState::log(self, level, message)
            }

            fn config(&mut self) -> String {
                CallState::config(self)
            }
        }
    )*};
}

use crate::bindings::v0_2::bulkhead::plugin::types::LogLevel as OlderLogLevel;

older_host_interface!(
    crate::bindings::v0_2::bulkhead::plugin::host::Host,
    crate::bindings::v0_1::bulkhead::plugin::host::Host
);

impl crate::bindings::v0_2::bulkhead::plugin::types::Host for CallState {}
impl crate::bindings::types::Host for CallState {}

impl wasmtime::ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.peak_memory = self.peak_memory.max(desired.min(self.memory_limit));
        if desired > self.memory_limit {
            // Refusing with an error (rather than `Ok(false)`) traps at once: a Rust guest would
            // otherwise abort with a less telling "unreachable" after its allocator fails.
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.memory_limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Table elements one instance may have; generous for any real policy.
const MAX_TABLE_ELEMENTS: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lines: u32) -> CallState {
        CallState::new("t".into(), "cfg".into(), lines, 1 << 20, Default::default())
    }

    #[test]
    fn log_lines_cannot_forge_lines_or_escape_sequences() {
        assert_eq!(
            truncate("ok\n2026-01-01 INFO forged\u{1b}[2J".into()),
            "ok\\n2026-01-01 INFO forged\\u{1b}[2J"
        );
    }

    #[test]
    fn log_is_rate_limited_per_call() {
        let mut s = state(2);
        for _ in 0..5 {
            s.log(LogLevel::Info, "hello".into());
        }
        assert_eq!(s.logs_left, 0);
        assert_eq!(s.logs_dropped, 3);
    }

    #[test]
    fn error_lines_are_remembered_even_when_dropped() {
        let mut s = state(0);
        s.log(LogLevel::Error, "panicked at src/lib.rs".into());
        assert_eq!(s.last_error.as_deref(), Some("panicked at src/lib.rs"));
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let line = truncate("é".repeat(MAX_LOG_LINE_BYTES));
        assert!(line.len() <= MAX_LOG_LINE_BYTES + 32);
        assert!(line.ends_with("bytes]"), "{line}");
    }

    #[test]
    fn config_is_returned_verbatim() {
        assert_eq!(state(1).config(), "cfg");
    }

    #[test]
    fn memory_growth_past_the_cap_is_refused() {
        use wasmtime::ResourceLimiter;
        let mut s = state(1);
        assert!(s.memory_growing(0, 1 << 20, None).unwrap());
        assert!(s.memory_growing(0, (1 << 20) + 1, None).is_err());
        assert!(s.memory_exceeded);
    }
}
