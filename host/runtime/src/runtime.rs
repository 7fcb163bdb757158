//! The shared sandbox: one wasmtime engine with its instance pool, epoch ticker, linker and
//! artifact cache. Build one per process and load every plugin through it.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use bulkhead_core::seccomp_profiles::HeldProfiles;
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ArtifactCache;
use crate::error::Error;
use crate::host::CallState;

/// Process-wide sandbox settings. Per-plugin settings live in [`crate::PluginLimits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Where compiled artifacts are cached; `None` compiles every load. Created `0700` if
    /// missing; refused if it is a symlink, owned by another uid, or group/world-writable,
    /// because its files are loaded as native code.
    pub cache_dir: Option<PathBuf>,
    /// How many plugin instances may be alive at once, across all plugins. Each call holds one
    /// instance for its duration, so this bounds concurrent calls; the pool is sized from it.
    pub max_instances: u32,
    /// The largest memory cap any plugin may be given (the size of one pool slot).
    pub max_memory: usize,
    /// Epoch tick: the granularity of time budgets. Smaller is more precise and costs a wake-up
    /// per tick.
    pub epoch_tick: Duration,
    /// Compile plugins with fuel metering so [`crate::PluginLimits::fuel`] applies. Costs some
    /// speed; epoch deadlines already bound time, so it is off by default.
    pub fuel: bool,
    /// The seccomp profiles plugins may name (`use-seccomp-profile`), parsed and validated once
    /// and shared by every call. Default: bulkhead's built-ins for the default architectures.
    pub seccomp_profiles: Arc<HeldProfiles>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            max_instances: 32,
            max_memory: 64 << 20,
            epoch_tick: Duration::from_millis(1),
            fuel: false,
            seccomp_profiles: Arc::new(HeldProfiles::default()),
        }
    }
}

/// Linear memory pages kept resident between uses of a pool slot. With `pagemap_scan` this is
/// the cheapest way to reset a slot (measured ~16 µs per fresh instance versus ~29 µs without).
const KEEP_RESIDENT: usize = 1 << 20;

/// The plugin sandbox. Cheap to share (`&Runtime` is all [`crate::Plugin`] loading needs) and
/// `Send + Sync`; plugins loaded from it keep its engine alive.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) cache: Option<ArtifactCache>,
    pub(crate) options: RuntimeOptions,
    /// Shared with every loaded plugin: deadlines keep working while any plugin is alive.
    pub(crate) ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine (Cranelift, component model, pooling allocator, epoch interruption),
    /// starts the epoch ticker thread and links the host imports.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, Error> {
        let setup = |reason: String| Error::Setup { reason };
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        // Traps are reported by kind ("call stack exhausted", "interrupt"); capturing a wasm
        // backtrace on every trap would cost time inside the deadline for little operator value.
        config.wasm_backtrace_max_frames(None);

        let n = options.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .max_memory_size(options.max_memory)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let engine = Engine::new(&config).map_err(|e| setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        // Every supported ABI version's imports, side by side (their names carry the version).
        crate::bindings::current::SecurityPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state: &mut CallState| state,
        )
        .map_err(|e| setup(format!("linking host imports: {e:#}")))?;
        crate::bindings::v0_2::SecurityPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state: &mut CallState| state,
        )
        .map_err(|e| setup(format!("linking host imports of 0.2.0: {e:#}")))?;
        crate::bindings::v0_1::SecurityPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state: &mut CallState| state,
        )
        .map_err(|e| setup(format!("linking host imports of 0.1.0: {e:#}")))?;
        let cache = match &options.cache_dir {
            Some(dir) => Some(
                // The error already starts with the directory's path.
                ArtifactCache::new(dir.clone(), &engine)
                    .map_err(|e| setup(format!("cache directory {e}")))?,
            ),
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone(), options.epoch_tick)
            .map_err(|e| setup(format!("starting the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            options,
            ticker: Arc::new(ticker),
        })
    }

    /// The options this runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }
}

/// A thread that advances the engine's epoch every tick; plugin deadlines count these ticks.
pub(crate) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bulkhead-epoch".into())
            .spawn(move || {
                // Any message or a dropped sender ends the loop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("epoch ticker thread panicked");
        }
    }
}
