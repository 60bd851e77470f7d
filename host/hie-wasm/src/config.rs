//! What the host is configured with ([`HostConfig`]) and what each item is allowed
//! ([`Limits`], [`Grants`]).

use std::path::PathBuf;
use std::time::Duration;

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// Engine-wide settings: shared by every component and item of one [`crate::WasmHost`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled components (`.cwasm`) are kept; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Instrument code with fuel so items may set [`Limits::fuel`]. Engine-wide in
    /// wasmtime: when on, items without a fuel limit run with an unlimited budget.
    pub fuel_metering: bool,
    /// Period of the epoch ticker that enforces call deadlines (their granularity).
    /// Each tick wakes a thread: 10 ms costs nothing measurable, 1 ms cost about
    /// 2% of a core idle and far more under load on a 2-core VM.
    pub epoch_tick: Duration,
    /// Most bytes of native stack one wasm call may use.
    pub max_wasm_stack: usize,
    /// Reuse instance slots from a pre-allocated pool (fast instantiation) rather than
    /// allocating each instance on demand.
    pub pooling: bool,
    /// Most live instances at once (pooling only); one per item worker and hook.
    /// The pool reserves address space up front (about 8 GiB per instance, not
    /// memory), so keep one [`crate::WasmHost`] per process and clone it.
    pub max_instances: u32,
    /// Upper bound for [`Limits::memory_bytes`]: the size of each pooled memory slot.
    pub max_memory_bytes: u64,
    /// Record wasm backtraces in trap messages (costs time on every trap).
    pub wasm_backtrace: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            cache_dir: default_cache_dir(),
            fuel_metering: true,
            epoch_tick: Duration::from_millis(10),
            max_wasm_stack: 512 * 1024,
            pooling: true,
            max_instances: 1000,
            max_memory_bytes: 512 * MIB,
            wasm_backtrace: false,
        }
    }
}

/// `$XDG_CACHE_HOME/hie/components`, else `~/.cache/hie/components`; `None` without either.
pub fn default_cache_dir() -> Option<PathBuf> {
    let non_empty = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("hie").join("components"))
}

/// Resource limits for every call into one item's plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of linear memory the instance may have (all its memories together).
    pub memory_bytes: u64,
    /// Wall-clock time one call may run; time blocked in `send-request-sync` and
    /// `adapter.call` does not count (those have their own timeouts).
    pub deadline: Duration,
    /// Instruction budget per call (needs [`HostConfig::fuel_metering`]); `None` is unlimited.
    pub fuel: Option<u64>,
    /// Most bytes of messages one call may produce: returned bodies, properties and
    /// content types, plus everything sent through the host during the call.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * MIB,
            deadline: Duration::from_secs(5),
            fuel: None,
            output_bytes: 64 * MIB,
        }
    }
}

/// Access to the outside world an item grants its plugin. The default grants nothing:
/// no files, no environment variables, and (always) no network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host directories the plugin may open, each under a guest path.
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables the plugin may read (others are invisible).
    pub env: Vec<String>,
}

/// One host directory made visible to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host_path: PathBuf,
    /// Where the plugin sees it, e.g. `/data`.
    pub guest_path: String,
    /// Whether the plugin may create, change and delete files there.
    pub writable: bool,
}
