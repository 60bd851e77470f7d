//! [`WasmHost`]: the one wasmtime engine of a process, its epoch ticker, the linker
//! with every host interface, and loading (compiling or fetching from the cache).

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::Everything;
use crate::cache::ComponentCache;
use crate::component::{Component, LoadStats};
use crate::config::HostConfig;
use crate::error::{LoadError, one_line};
use crate::inspect::{inspect_bytes, read_component};
use crate::state::StoreState;

/// Core instances, memories and tables pooled per component instance: a Rust guest
/// has 3 core modules, a Python one 14, all sharing one or two memories.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 16;
/// Bytes of each pooled memory and table kept resident when its instance is freed.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// Wasm frames kept in a trap message when [`HostConfig::wasm_backtrace`] is on.
const BACKTRACE_FRAMES: NonZeroUsize = NonZeroUsize::new(20).unwrap();

/// The plugin host: a wasmtime engine shared by every component it loads. Cloning is
/// cheap and shares the engine, the linker, the cache and the epoch ticker.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub engine: Engine,
    pub linker: Linker<StoreState>,
    pub config: HostConfig,
    cache: Option<ComponentCache>,
}

impl WasmHost {
    /// Builds the engine from `config` and starts its epoch ticker thread (which ends
    /// once the engine and everything loaded from it are dropped).
    pub fn new(config: HostConfig) -> Result<WasmHost, LoadError> {
        let engine =
            Engine::new(&engine_config(&config)).map_err(|e| LoadError::Engine { reason: one_line(&e) })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine { reason: one_line(&e) })?;
        Everything::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine { reason: one_line(&e) })?;
        spawn_ticker(engine.weak(), config.epoch_tick)?;
        let cache = config
            .cache_dir
            .clone()
            .map(|dir| ComponentCache::new(dir, &engine));
        Ok(WasmHost {
            inner: Arc::new(HostInner {
                engine,
                linker,
                config,
                cache,
            }),
        })
    }

    /// The configuration this host was built with.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Loads a component file: checks what it is, then compiles it or takes it
    /// from the cache (see [`Component::stats`]).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Arc<Component>, LoadError> {
        let (file, bytes) = read_component(path.as_ref())?;
        self.load_bytes(&file, &bytes)
    }

    /// Loads a component from memory; `name` stands for the file in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Arc<Component>, LoadError> {
        let info = inspect_bytes(name, bytes)?;
        let started = Instant::now();
        let engine = &self.inner.engine;
        let cached = self.inner.cache.as_ref().and_then(|c| c.get(engine, &info.hash));
        let from_cache = cached.is_some();
        let compiled = match cached {
            Some(component) => component,
            None => {
                let component = wasmtime::component::Component::from_binary(engine, bytes).map_err(|e| {
                    LoadError::Invalid {
                        file: name.to_owned(),
                        reason: one_line(&e),
                    }
                })?;
                if let Some(cache) = &self.inner.cache {
                    cache.put(&info.hash, &component);
                }
                component
            }
        };
        let stats = LoadStats {
            from_cache,
            load_time: started.elapsed(),
        };
        tracing::debug!(file = name, hash = %info.hash, world = %info.world, from_cache, load_ms = stats.load_time.as_secs_f64() * 1e3, "component loaded");
        Component::link(self.clone(), compiled, info, stats).map(Arc::new)
    }

    pub(crate) fn inner(&self) -> &HostInner {
        &self.inner
    }
}

fn engine_config(config: &HostConfig) -> wasmtime::Config {
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        // calls are synchronous (see the crate docs): without the component-model
        // async runtime state, every call and every new store skip its task
        // bookkeeping (about 15% of a call, see benches/benches/wasm.rs)
        .concurrency_support(false)
        .consume_fuel(config.fuel_metering)
        .max_wasm_stack(config.max_wasm_stack)
        .wasm_backtrace_max_frames(config.wasm_backtrace.then_some(BACKTRACE_FRAMES));
    if config.pooling {
        let n = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            // a freed slot is reset by zeroing the pages the instance touched (found
            // with the PAGEMAP_SCAN ioctl where the kernel has it, Linux 6.7+) rather
            // than by madvise, so the next instance in the slot takes no page faults
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// Advances the engine's epoch by wall-clock ticks (catching up after a late wake-up,
/// so deadlines do not stretch under load) until the engine is gone.
fn spawn_ticker(engine: EngineWeak, tick: Duration) -> Result<(), LoadError> {
    let tick = tick.max(Duration::from_micros(100));
    std::thread::Builder::new()
        .name("hie-wasm-epoch".into())
        .spawn(move || {
            let start = Instant::now();
            let mut ticks: u128 = 0;
            loop {
                std::thread::sleep(tick);
                let Some(engine) = engine.upgrade() else { return };
                let due = start.elapsed().as_nanos() / tick.as_nanos();
                while ticks < due {
                    engine.increment_epoch();
                    ticks += 1;
                }
            }
        })
        .map(drop)
        .map_err(|e| LoadError::Engine {
            reason: format!("cannot start the epoch ticker thread: {e}"),
        })
}
