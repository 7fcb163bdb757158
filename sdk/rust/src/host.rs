//! The host imports, `log`, `config` and `seccomp-profiles`, with native fallbacks so plugin logic
//! runs under plain `cargo test`.
//!
//! On Wasm they call the host. Natively `log` writes to stderr, `config` returns what the current
//! thread set with [`with_config`] (empty otherwise) and `seccomp_profiles` what it set with
//! [`with_seccomp_profiles`] (the host's built-ins, `default` and `strict`, otherwise).

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
    static NATIVE_PROFILES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// The host's built-in seccomp profiles, which every bulkhead host holds.
const BUILTIN_PROFILES: &[&str] = &["default", "strict"];

/// The operator's configuration string for this plugin (empty if none). Parse it in
/// `check_container` and answer `PluginError::InvalidConfig` when it is wrong.
pub fn config() -> String {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::bulkhead::plugin::host::config();
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_CONFIG.with(|c| c.borrow().clone())
}

/// The names of the seccomp profiles the host holds, sorted: what
/// [`crate::Decision::use_seccomp_profile`] accepts. Check the names your config refers to in
/// `validate_config`, so a typo stops the plugin from loading.
pub fn seccomp_profiles() -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::bulkhead::plugin::host::seccomp_profiles();
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_PROFILES.with(|p| {
        p.borrow()
            .clone()
            .unwrap_or_else(|| BUILTIN_PROFILES.iter().map(|n| n.to_string()).collect())
    })
}

/// Runs `f` with [`seccomp_profiles`] returning `names` on this thread: for native unit tests of
/// plugins that name operator profiles. Has no effect on Wasm.
pub fn with_seccomp_profiles<R>(names: &[&str], f: impl FnOnce() -> R) -> R {
    let names = names.iter().map(|n| n.to_string()).collect();
    let previous = NATIVE_PROFILES.with(|p| p.replace(Some(names)));
    let result = f();
    NATIVE_PROFILES.with(|p| *p.borrow_mut() = previous);
    result
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
    fn seccomp_profiles_default_to_the_builtins_and_are_settable_natively() {
        assert_eq!(seccomp_profiles(), ["default", "strict"]);
        let names = with_seccomp_profiles(&["default", "strict", "web"], seccomp_profiles);
        assert_eq!(names, ["default", "strict", "web"]);
        assert_eq!(seccomp_profiles(), ["default", "strict"]);
    }

    #[test]
    fn config_is_settable_natively() {
        assert_eq!(config(), "");
        assert_eq!(with_config("mode=strict", config), "mode=strict");
        assert_eq!(config(), "");
    }
}
