//! A loaded plugin and its calls: compile (or load from cache) once, pre-instantiate once, then
//! run every call in a fresh, limited store.
//!
//! A fresh store per call is the isolation guarantee: nothing a plugin leaves in memory, globals
//! or tables can leak from one container's check into the next, and a plugin that was
//! interrupted mid-call cannot leave a half-updated instance behind. With the pooling allocator
//! and `InstancePre` the cost is tens of microseconds (see the crate's benches).

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bulkhead_core::decision::Decision;
use bulkhead_core::view::{ContainerView, DecisionPoint};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Store, Trap};

use bulkhead_core::seccomp_profiles::HeldProfiles;

use crate::bindings::{current, v0_1, v0_2};
use crate::convert;
use crate::error::Error;
use crate::host::CallState;
use crate::info::PluginInfo;
use crate::limits::PluginLimits;
use crate::runtime::{EpochTicker, Runtime};

/// WIT interfaces this host provides, by their full versioned names: every supported version.
const PROVIDED_IMPORTS: &[&str] = &[
    "bulkhead:plugin/host@0.3.0",
    "bulkhead:plugin/types@0.3.0",
    "bulkhead:plugin/host@0.2.0",
    "bulkhead:plugin/types@0.2.0",
    "bulkhead:plugin/host@0.1.0",
    "bulkhead:plugin/types@0.1.0",
];

/// The ABI versions this host runs, newest first.
pub const SUPPORTED_ABI_VERSIONS: &[&str] = &["0.3.0", "0.2.0", "0.1.0"];

/// A component pre-instantiated for the ABI version it was built against.
enum Pre {
    /// `bulkhead:plugin@0.3.0`.
    Current(current::SecurityPluginPre<CallState>),
    /// `bulkhead:plugin@0.2.0`: no profiles by reference.
    V0_2(v0_2::SecurityPluginPre<CallState>),
    /// `bulkhead:plugin@0.1.0`: no `validate-config` either.
    V0_1(v0_1::SecurityPluginPre<CallState>),
}

/// One instance of a plugin, whatever its ABI version.
enum Bound {
    Current(current::SecurityPlugin),
    V0_2(v0_2::SecurityPlugin),
    V0_1(v0_1::SecurityPlugin),
}

/// A plugin's answer to `check-container`, converted: its decision (or why the host refuses
/// it), or the error the plugin reported itself (kind and message).
type Answer = Result<Result<Decision, bulkhead_core::Error>, (&'static str, String)>;

impl Bound {
    fn metadata(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        Ok(match self {
            Bound::Current(p) => convert::current::plugin_info_from_wit(p.call_metadata(store)?),
            Bound::V0_2(p) => convert::v0_2::plugin_info_from_wit(p.call_metadata(store)?),
            Bound::V0_1(p) => convert::v0_2::plugin_info_from_wit(p.call_metadata(store)?),
        })
    }

    fn check_container(
        &self,
        store: &mut Store<CallState>,
        view: &PreparedView,
        profiles: &HeldProfiles,
    ) -> wasmtime::Result<Answer> {
        use convert::{current as now, v0_2 as old};
        Ok(match self {
            Bound::Current(p) => p
                .call_check_container(&mut *store, view.current())?
                .map(|d| now::decision_from_wit(d, profiles))
                .map_err(now::reported_from_wit),
            Bound::V0_2(p) => p
                .call_check_container(&mut *store, view.v0_2())?
                .map(|d| old::decision_from_wit(d, profiles))
                .map_err(old::reported_from_wit),
            Bound::V0_1(p) => p
                .call_check_container(&mut *store, view.v0_2())?
                .map(|d| old::decision_from_wit(d, profiles))
                .map_err(old::reported_from_wit),
        })
    }

    /// `validate-config`; 0.1.0 components cannot check their config, so they accept it.
    fn validate_config(
        &self,
        store: &mut Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), (&'static str, String)>> {
        Ok(match self {
            Bound::Current(p) => p
                .call_validate_config(store, config)?
                .map_err(convert::current::reported_from_wit),
            Bound::V0_2(p) => p
                .call_validate_config(store, config)?
                .map_err(convert::v0_2::reported_from_wit),
            Bound::V0_1(_) => Ok(()),
        })
    }
}

/// A container view converted to the guest's types once, for any number of plugin calls: once
/// per ABI version's types, on first use (0.2.0 and 0.1.0 share theirs).
pub struct PreparedView<'a> {
    view: &'a ContainerView,
    current: OnceCell<current::bulkhead::plugin::types::Container>,
    v0_2: OnceCell<v0_2::bulkhead::plugin::types::Container>,
}

impl<'a> PreparedView<'a> {
    /// Prepares `view`; nothing is converted until a plugin needs it.
    pub fn new(view: &'a ContainerView) -> PreparedView<'a> {
        PreparedView {
            view,
            current: OnceCell::new(),
            v0_2: OnceCell::new(),
        }
    }

    fn current(&self) -> &current::bulkhead::plugin::types::Container {
        self.current
            .get_or_init(|| convert::current::container_to_wit(self.view))
    }

    fn v0_2(&self) -> &v0_2::bulkhead::plugin::types::Container {
        self.v0_2
            .get_or_init(|| convert::v0_2::container_to_wit(self.view))
    }
}

/// A loaded, ready-to-call plugin. Cloning is cheap and clones share the compiled code; move a
/// clone into `tokio::task::spawn_blocking` to call it from async code.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    pre: Pre,
    abi_version: &'static str,
    engine: wasmtime::Engine,
    name: Arc<str>,
    config: Arc<str>,
    path: PathBuf,
    digest: String,
    info: PluginInfo,
    limits: PluginLimits,
    fuel_enabled: bool,
    epoch_tick: Duration,
    _ticker: Arc<EpochTicker>,
    /// The seccomp profiles the host holds: `use-seccomp-profile` names resolve here.
    profiles: Arc<HeldProfiles>,
    /// The largest linear memory any call of this plugin has reached, in bytes.
    peak_memory: AtomicUsize,
}

impl Runtime {
    /// Reads, compiles (or loads from the cache), links and pre-instantiates the plugin at `path`,
    /// then reads its metadata. Every error names the file.
    pub fn load(&self, path: &Path, limits: PluginLimits) -> Result<Plugin, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_bytes(path, &bytes, limits)
    }

    /// Like [`Runtime::load`] for bytes already in memory; `path` is only used to name the plugin
    /// in errors.
    pub fn load_bytes(
        &self,
        path: &Path,
        wasm: &[u8],
        limits: PluginLimits,
    ) -> Result<Plugin, Error> {
        let incompatible = |reason: String| Error::Incompatible {
            path: path.to_owned(),
            reason,
        };
        if limits.memory_limit > self.options.max_memory {
            return Err(Error::Setup {
                reason: format!(
                    "plugin {}: memory limit {} exceeds the runtime's max-memory {}",
                    path.display(),
                    limits.memory_limit,
                    self.options.max_memory
                ),
            });
        }
        let digest = hex(&Sha256::digest(wasm));
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, wasm, &digest),
            None => Component::new(&self.engine, wasm),
        };
        let component = compiled.map_err(|e| Error::NotAComponent {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        })?;

        let mut linker = self.linker.clone();
        check_imports(&self.engine, &component).map_err(incompatible)?;
        define_fixed_seed(&self.engine, &component, &mut linker).map_err(incompatible)?;
        // WASI imports that Rust's std pulls in are linked as functions that trap when called:
        // a plugin can be built with the ordinary wasm32-wasip2 target, yet has no filesystem,
        // network, clock, randomness or environment at all.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| incompatible(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| incompatible(format!("{e:#}")))?;
        let bind = |e: wasmtime::Error| incompatible(format!("{e:#}"));
        let (pre, abi_version) = if imports_version(&self.engine, &component, "0.1.0") {
            (
                Pre::V0_1(v0_1::SecurityPluginPre::new(pre).map_err(bind)?),
                "0.1.0",
            )
        } else if imports_version(&self.engine, &component, "0.2.0") {
            (
                Pre::V0_2(v0_2::SecurityPluginPre::new(pre).map_err(bind)?),
                "0.2.0",
            )
        } else {
            let pre = current::SecurityPluginPre::new(pre).map_err(bind)?;
            (Pre::Current(pre), "0.3.0")
        };

        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut inner = Inner {
            pre,
            abi_version,
            engine: self.engine.clone(),
            name: file_name.into(),
            config: limits.config.as_str().into(),
            path: path.to_owned(),
            digest: format!("sha256:{digest}"),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                decision_points: Vec::new(),
            },
            limits,
            fuel_enabled: self.options.fuel,
            epoch_tick: self.options.epoch_tick,
            _ticker: self.ticker.clone(),
            profiles: self.options.seccomp_profiles.clone(),
            peak_memory: AtomicUsize::new(0),
        };
        let info = inner
            .call(|store, plugin| plugin.metadata(store))
            .map_err(|e| Error::Metadata {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if info.name.is_empty() {
            return Err(Error::Metadata {
                path: path.to_owned(),
                reason: "plugin name is empty".into(),
            });
        }
        inner.name = info.name.as_str().into();
        inner.info = info;
        let config = inner.config.clone();
        match inner.call(|store, plugin| plugin.validate_config(store, &config))? {
            Ok(()) => {}
            Err(reported) => return Err(reported_error(inner.name.to_string(), reported)),
        }
        tracing::debug!(plugin = %inner.name, path = %path.display(), digest = %inner.digest, abi = abi_version, "plugin loaded");
        Ok(Plugin {
            inner: Arc::new(inner),
        })
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("path", &self.inner.path)
            .field("digest", &self.inner.digest)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plugin's own metadata.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The plugin's name (from its metadata), as used in errors and logs.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `sha256:<hex>` of the component file, for audit records.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.limits
    }

    /// Whether the plugin asked to be called at `point`.
    pub fn wants(&self, point: DecisionPoint) -> bool {
        self.inner.info.decision_points.contains(&point)
    }

    /// Runs `check-container` on `view` in a fresh instance and returns the validated decision.
    ///
    /// Blocking and CPU-bound, bounded by the plugin's time budget: from async code, call it in
    /// `spawn_blocking`. Never panics; every failure is an [`Error`] naming the plugin.
    pub fn check_container(&self, view: &ContainerView) -> Result<Decision, Error> {
        self.check_prepared(&PreparedView::new(view))
    }

    /// [`Plugin::check_container`] on a view already converted for the guest: a chain converts
    /// the view once and hands the same [`PreparedView`] to each plugin.
    pub fn check_prepared(&self, view: &PreparedView) -> Result<Decision, Error> {
        let profiles = &self.inner.profiles;
        let answer = self
            .inner
            .call(|store, plugin| plugin.check_container(store, view, profiles))?;
        let name = || self.inner.name.to_string();
        match answer {
            Ok(decision) => decision.map_err(|source| Error::InvalidOutput {
                plugin: name(),
                source,
            }),
            Err(reported) => Err(reported_error(name(), reported)),
        }
    }

    /// The largest linear memory any call so far has reached, in bytes (at most the plugin's
    /// memory limit): what `bulkhead plugin bench` reports against the configured cap.
    pub fn peak_memory(&self) -> usize {
        self.inner.peak_memory.load(Ordering::Relaxed)
    }

    /// The `bulkhead:plugin` ABI version the component was built against.
    pub fn abi_version(&self) -> &'static str {
        self.inner.abi_version
    }
}

/// A plugin's own error answer, as the host reports it.
fn reported_error(plugin: String, (kind, message): (&'static str, String)) -> Error {
    Error::Reported {
        plugin,
        kind,
        message,
    }
}

/// Whether `component` imports the `bulkhead:plugin` interfaces of ABI `version`.
fn imports_version(engine: &wasmtime::Engine, component: &Component, version: &str) -> bool {
    let suffix = format!("@{version}");
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("bulkhead:plugin/") && name.ends_with(&suffix))
}

impl Inner {
    /// One sandboxed call: fresh store with this plugin's limits, instantiate, run `f`, classify
    /// any failure.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<CallState>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let started = Instant::now();
        let budget = self.limits.time_budget;
        let mut store = Store::new(
            &self.engine,
            CallState::new(
                self.name.clone(),
                self.config.clone(),
                self.limits.log_lines_per_call,
                self.limits.memory_limit,
                self.profiles.clone(),
            ),
        );
        store.limiter(|state| state);
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = u64::try_from(budget.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX);
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();
        let fuel = self.limits.fuel.unwrap_or(u64::MAX);
        if self.fuel_enabled {
            store.set_fuel(fuel).map_err(|e| Error::Setup {
                reason: format!("{e:#}"),
            })?;
        }

        let instance = match &self.pre {
            Pre::Current(pre) => pre.instantiate(&mut store).map(Bound::Current),
            Pre::V0_2(pre) => pre.instantiate(&mut store).map(Bound::V0_2),
            Pre::V0_1(pre) => pre.instantiate(&mut store).map(Bound::V0_1),
        };
        let result = match instance {
            Ok(instance) => f(&mut store, &instance).map_err(|e| (e, false)),
            Err(e) => Err((e, true)),
        };
        let elapsed = started.elapsed();
        let state = store.data();
        self.peak_memory
            .fetch_max(state.peak_memory, Ordering::Relaxed);
        if state.logs_dropped > 0 {
            tracing::warn!(plugin = %self.name, dropped = state.logs_dropped, "plugin log lines dropped by the rate limit");
        }
        let plugin = self.name.to_string();
        match result {
            Ok(value) if elapsed <= budget + self.epoch_tick => Ok(value),
            Ok(_) => Err(Error::Timeout {
                plugin,
                budget,
                elapsed,
            }),
            Err(_) if state.memory_exceeded => Err(Error::MemoryLimit {
                plugin,
                limit: self.limits.memory_limit,
            }),
            Err((err, during_instantiate)) => Err(match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => Error::Timeout {
                    plugin,
                    budget,
                    elapsed,
                },
                Some(Trap::OutOfFuel) => Error::OutOfFuel { plugin, fuel },
                _ if during_instantiate && err.downcast_ref::<Trap>().is_none() => {
                    Error::Instantiate {
                        plugin,
                        reason: format!("{err:#}"),
                    }
                }
                _ => {
                    let mut message = describe(&err);
                    if let Some(last) = &state.last_error {
                        message.push_str(&format!(" (last error logged: {last})"));
                    }
                    Error::Trap { plugin, message }
                }
            }),
        }
    }
}

/// Refuses components that import something this host cannot provide. `wasi:*` imports are
/// allowed (they trap if called); a `bulkhead:plugin` import of another version is the classic
/// "built against the wrong SDK" mistake and gets a message saying so.
fn check_imports(engine: &wasmtime::Engine, component: &Component) -> Result<(), String> {
    for (name, item) in component.component_type().imports(engine) {
        if PROVIDED_IMPORTS.contains(&name) || name.starts_with("wasi:") {
            continue;
        }
        if name.starts_with("bulkhead:plugin/") {
            return Err(format!(
                "imports `{name}`; this host provides {}",
                PROVIDED_IMPORTS.join(", ")
            ));
        }
        let kind = match item.ty {
            ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => "function",
            ComponentItem::ComponentInstance(_) => "interface",
            _ => "item",
        };
        return Err(format!(
            "imports {kind} `{name}`, which bulkhead does not provide"
        ));
    }
    Ok(())
}

/// Satisfies `wasi:random/insecure-seed` with a constant. Rust's `HashMap::new()` asks for this
/// seed, so without it every plugin using a `HashMap` would trap. A constant is not randomness:
/// plugins stay deterministic (the same view always gives the same decision), and a fresh instance
/// per call bounds what a crafted-collision input could cost to the call's time budget.
fn define_fixed_seed(
    engine: &wasmtime::Engine,
    component: &Component,
    linker: &mut wasmtime::component::Linker<CallState>,
) -> Result<(), String> {
    const FIXED_SEED: (u64, u64) = (0x6275_6c6b_6865_6164, 0x7365_6564_2d30_3031);
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:random/insecure-seed@") {
            let mut instance = linker.instance(name).map_err(|e| format!("{e:#}"))?;
            instance
                .func_wrap("insecure-seed", |_store, (): ()| Ok((FIXED_SEED,)))
                .map_err(|e| format!("{e:#}"))?;
        }
    }
    Ok(())
}

/// The error's cause chain in one line, without wasmtime's "error while executing" wrapper.
fn describe(err: &wasmtime::Error) -> String {
    let parts: Vec<String> = err
        .chain()
        .map(|cause| cause.to_string())
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .collect();
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
