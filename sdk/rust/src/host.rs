//! The host imports, `log` and `config`, with native fallbacks so plugin logic runs under plain
//! `cargo test`.
//!
//! On Wasm they call the host. Natively `log` writes to stderr and `config` returns what the
//! current thread set with [`with_config`] (empty otherwise).

use std::cell::RefCell;

use crate::LogLevel;

/// Writes a log line attributed to this plugin. The host rate-limits lines per call, so log
/// what an operator needs, not every step.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::bulkhead::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

thread_local! {
    static NATIVE_CONFIG: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The operator's configuration string for this plugin (empty if none). Parse it in
/// `check_container` and answer `PluginError::InvalidConfig` when it is wrong.
pub fn config() -> String {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::bulkhead::plugin::host::config();
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_CONFIG.with(|c| c.borrow().clone())
}

/// Runs `f` with [`config`] returning `value` on this thread: for native unit tests of plugins
/// that read their config. Has no effect on Wasm, where the host supplies the config.
pub fn with_config<R>(value: &str, f: impl FnOnce() -> R) -> R {
    let previous = NATIVE_CONFIG.with(|c| c.replace(value.to_owned()));
    let result = f();
    NATIVE_CONFIG.with(|c| *c.borrow_mut() = previous);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_settable_natively() {
        assert_eq!(config(), "");
        assert_eq!(with_config("mode=strict", config), "mode=strict");
        assert_eq!(config(), "");
    }
}
