//! Offline subcommands for plugin authors and operators: `bulkhead plugin test`, `new`, `bench`,
//! `export-builtin`, `push`, `pull`, `keygen`, `sign` and `verify`, and `bulkhead eval`. They run plugins through
//! `bulkhead-runtime`, exactly as the daemon does, but never connect to containerd (the
//! registry ones talk to a registry).

pub mod bench;
pub mod eval;
pub mod export_builtin;
pub mod plugin_test;
pub mod registry;
pub mod scaffold;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use bulkhead_runtime::{DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_BUDGET, PluginLimits};

/// `bulkhead plugin ...`
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Run a plugin against JSON case files and report `N passed, M failed`; exits non-zero on
    /// any failure. Made for plugin authors' CI.
    Test(plugin_test::TestArgs),
    /// Create a new plugin crate (policy module, export glue, case file, CI script) that
    /// builds, tests and loads as generated.
    New(scaffold::NewArgs),
    /// Time a plugin's calls (p50/p90/p99, a fresh instance each) and report its peak memory
    /// against the configured limits.
    Bench(bench::BenchArgs),
    /// Write an embedded first-party plugin's component to a file.
    ExportBuiltin(export_builtin::ExportArgs),
    /// Push a component to an OCI registry (Wasm artifact layout); prints the digest to pin.
    Push(registry::PushArgs),
    /// Pull a component from an OCI registry, verified by digest, into a file.
    Pull(registry::PullArgs),
    /// Make a cosign-compatible signing key pair (ECDSA P-256).
    Keygen(registry::KeygenArgs),
    /// Sign a component in a registry (stored where cosign stores signatures).
    Sign(registry::SignArgs),
    /// Check a component's signatures in a registry against public keys.
    Verify(registry::VerifyArgs),
}

/// Limits shared by the offline commands, mirroring a plugin's per-plugin config.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// The text the plugin's `config` import returns: the JSON of its `[plugins.config]` table.
    /// The default `{}` is what the daemon passes when the table is absent. A case file's
    /// `config` overrides it.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub plugin_config: String,
    /// Time budget per call, in milliseconds [default: 100].
    #[arg(long, value_name = "MS")]
    pub time_budget: Option<u64>,
    /// Memory cap per instance, in MiB [default: 16].
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<usize>,
}

impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            time_budget: self
                .time_budget
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIME_BUDGET),
            memory_limit: self
                .memory_limit
                .map(|m| m << 20)
                .unwrap_or(DEFAULT_MEMORY_LIMIT),
            config: self.plugin_config.clone(),
            ..PluginLimits::default()
        }
    }
}

/// Where the offline commands keep compiled plugins, mirroring the daemon's artifact cache so a
/// CI run that loads a plugin under several configs, or runs again, does not pay Cranelift each
/// time.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Cache compiled plugins in DIR [default: $XDG_CACHE_HOME/bulkhead, else
    /// $HOME/.cache/bulkhead]. Created 0700; refused if another user could write to it.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the plugin on every load; read and write no cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            default_cache_dir(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
        })
    }
}

/// `$XDG_CACHE_HOME/bulkhead`, else `$HOME/.cache/bulkhead`. Relative or empty values are
/// ignored, as the XDG base directory spec asks: a cache of native code must not land in
/// whatever the working directory happens to be.
fn default_cache_dir(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg_cache_home)
        .or_else(|| absolute(home).map(|home| home.join(".cache")))
        .map(|base| base.join("bulkhead"))
}

/// Runs a `bulkhead plugin` subcommand.
pub fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Test(args) => plugin_test::run(args),
        PluginCommand::New(args) => scaffold::run(args),
        PluginCommand::Bench(args) => bench::run(args),
        PluginCommand::ExportBuiltin(args) => export_builtin::run(args),
        PluginCommand::Push(args) => registry::push(args),
        PluginCommand::Pull(args) => registry::pull(args),
        PluginCommand::Keygen(args) => registry::keygen(args),
        PluginCommand::Sign(args) => registry::sign(args),
        PluginCommand::Verify(args) => registry::verify(args),
    }
}

/// A runtime sized for the offline commands, able to hold any memory cap given on the command
/// line. Compiles on every load.
pub fn runtime(limits: &PluginLimits) -> anyhow::Result<bulkhead_runtime::Runtime> {
    runtime_with_cache(limits, None)
}

/// Like [`runtime`], with the on-disk artifact cache the daemon uses in `cache_dir`. A directory
/// named with `--cache-dir` must be usable; when the default one is not (no home, wrong owner or
/// mode), the run goes on without a cache after a warning, since caching only saves time.
pub fn runtime_with_cache(
    limits: &PluginLimits,
    cache: Option<&CacheArgs>,
) -> anyhow::Result<bulkhead_runtime::Runtime> {
    let cache_dir = cache.and_then(CacheArgs::dir);
    let options = |cache_dir: Option<PathBuf>| bulkhead_runtime::RuntimeOptions {
        cache_dir,
        max_instances: 4,
        max_memory: limits
            .memory_limit
            .max(bulkhead_runtime::RuntimeOptions::default().max_memory),
        ..bulkhead_runtime::RuntimeOptions::default()
    };
    match bulkhead_runtime::Runtime::new(options(cache_dir.clone())) {
        Err(error) if cache_dir.is_some() && cache.is_some_and(|c| c.cache_dir.is_none()) => {
            eprintln!("bulkhead: warning: running without the compile cache: {error}");
            Ok(bulkhead_runtime::Runtime::new(options(None))?)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cache_dir_prefers_xdg_then_home_and_ignores_relative_paths() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            default_cache_dir(xdg.map(Into::into), home.map(Into::into))
        };
        assert_eq!(
            dir(Some("/xdg"), Some("/home/u")),
            Some(PathBuf::from("/xdg/bulkhead"))
        );
        assert_eq!(
            dir(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/bulkhead"))
        );
        assert_eq!(
            dir(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/bulkhead"))
        );
        assert_eq!(dir(Some(""), None), None);
        assert_eq!(dir(None, Some("")), None);
    }

    #[test]
    fn no_cache_wins_and_an_explicit_dir_is_used() {
        let args = |cache_dir: Option<&str>, no_cache| CacheArgs {
            cache_dir: cache_dir.map(Into::into),
            no_cache,
        };
        assert_eq!(args(None, true).dir(), None);
        assert_eq!(args(Some("/c"), false).dir(), Some(PathBuf::from("/c")));
    }
}
