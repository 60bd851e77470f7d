//! What each wasmtime `Store` carries: the item's context, the per-call limits, the
//! WASI context built from the item's grants, and the host imports implemented
//! against [`hie_core::HostApi`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use hie_core::{Failure, HostApi, LogLevel};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::hie::plugin::{adapter, host, types};
use crate::config::{Grants, Limits};
use crate::convert::{self, Parent};
use crate::error::{MemoryLimitExceeded, OutputLimitExceeded};
use crate::stdio::GuestOutput;

/// An operation's outbound adapter, as `adapter.call` reaches it: request bytes in,
/// the peer's reply bytes out.
pub trait Adapter: Send + Sync {
    /// Hands `request` to the adapter and waits for the reply.
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, Failure>;
}

impl<F> Adapter for F
where
    F: Fn(&[u8]) -> Result<Vec<u8>, Failure> + Send + Sync,
{
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, Failure> {
        self(request)
    }
}

/// Everything about an item that does not change between its instances.
pub(crate) struct ItemShared {
    pub item: String,
    pub settings: BTreeMap<String, String>,
    pub host: Arc<dyn HostApi>,
    pub adapter: Option<Arc<dyn Adapter>>,
    pub limits: Limits,
    pub grants: Grants,
    /// The allow-listed environment variables, read once from the host's environment.
    pub env: Vec<(String, String)>,
}

impl ItemShared {
    pub fn settings_list(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Per-call bookkeeping, reset before every call.
pub(crate) struct CallState {
    /// The message being processed, parent of every message the call produces.
    pub parent: Option<Parent>,
    /// Output bytes produced so far (sent through the host, then returned).
    pub emitted: u64,
    /// When the call's deadline falls; pushed back by time spent blocked in the host.
    pub deadline_at: Instant,
}

/// The data of one instance's `Store`.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub shared: Arc<ItemShared>,
    pub call: CallState,
    pub stderr: GuestOutput,
}

impl StoreState {
    /// A fresh state with a WASI context that grants only what the item allows.
    pub fn new(shared: Arc<ItemShared>) -> Result<Self, String> {
        let stdout = GuestOutput::stdout(&shared.item);
        let stderr = GuestOutput::stderr(&shared.item);
        let wasi = wasi_ctx(&shared, stdout, stderr.clone())?;
        Ok(StoreState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(shared.limits.memory_bytes),
            call: CallState {
                parent: None,
                emitted: 0,
                deadline_at: Instant::now() + shared.limits.deadline,
            },
            shared,
            stderr,
        })
    }

    /// Counts `bytes` of output against the call's cap; over it, the call traps.
    pub fn charge_output(&mut self, bytes: u64) -> wasmtime::Result<()> {
        self.call.emitted += bytes;
        let limit = self.shared.limits.output_bytes;
        if self.call.emitted > limit {
            return Err(wasmtime::Error::new(OutputLimitExceeded {
                size: self.call.emitted,
                limit,
            }));
        }
        Ok(())
    }

    /// Runs `f`, a blocking host call, without counting its time against the deadline.
    fn off_the_clock<R>(&mut self, f: impl FnOnce(&ItemShared) -> R) -> R {
        let started = Instant::now();
        let result = f(&self.shared);
        self.call.deadline_at += started.elapsed();
        result
    }

    fn envelope(
        &mut self,
        msg: types::Message,
        target: &str,
    ) -> wasmtime::Result<Result<hie_core::Envelope, Failure>> {
        self.charge_output(convert::message_size(&msg))?;
        Ok(convert::message_from_wit(
            msg,
            &self.shared.item,
            target,
            self.call.parent,
        ))
    }
}

fn wasi_ctx(shared: &ItemShared, stdout: GuestOutput, stderr: GuestOutput) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .envs(&shared.env);
    for dir in &shared.grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host_path, &dir.guest_path, perms)
            .map_err(|e| format!("cannot grant directory {}: {e}", dir.host_path.display()))?;
    }
    Ok(builder.build())
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps an instance's linear memory (all memories together) with a typed error, so a
/// memory bomb is told apart from other traps.
pub(crate) struct MemoryLimiter {
    limit: u64,
    total: u64,
}

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter { limit, total: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = self.total + (desired - current) as u64;
        if grown > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                requested: grown,
            }));
        }
        self.total = grown;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // tables hold function references; a million is far beyond any real plugin
        Ok(desired <= 1_000_000)
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: types::LogLevel, text: String) -> wasmtime::Result<()> {
        let level = convert::log_level_from_wit(level);
        let item = self.shared.item.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(target: "hie_plugin", item, "{text}"),
            LogLevel::Debug => tracing::debug!(target: "hie_plugin", item, "{text}"),
            LogLevel::Info => tracing::info!(target: "hie_plugin", item, "{text}"),
            LogLevel::Warn => tracing::warn!(target: "hie_plugin", item, "{text}"),
            LogLevel::Error => tracing::error!(target: "hie_plugin", item, "{text}"),
        }
        self.shared.host.log(item, level, &text);
        Ok(())
    }

    fn setting(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.shared.settings.get(&key).cloned())
    }

    fn lookup(&mut self, table: String, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.shared.host.lookup(&table, &key))
    }

    fn send(&mut self, target: String, msg: types::Message) -> wasmtime::Result<Result<(), types::Failure>> {
        let sent = self
            .envelope(msg, &target)?
            .and_then(|env| self.shared.host.send(&self.shared.item, &target, env));
        Ok(sent.map_err(|f| convert::failure_to_wit(&f)))
    }

    fn send_request_sync(
        &mut self,
        target: String,
        msg: types::Message,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::Message, types::Failure>> {
        let reply = match self.envelope(msg, &target)? {
            Ok(env) => self.off_the_clock(|s| s.host.send_request_sync(&s.item, &target, env, timeout_ms)),
            Err(f) => Err(f),
        };
        Ok(reply
            .map(|env| convert::message_to_wit(&env))
            .map_err(|f| convert::failure_to_wit(&f)))
    }

    fn send_request_async(
        &mut self,
        target: String,
        msg: types::Message,
    ) -> wasmtime::Result<Result<String, types::Failure>> {
        let sent = self.envelope(msg, &target)?.and_then(|env| {
            self.shared
                .host
                .send_request_async(&self.shared.item, &target, env)
        });
        Ok(sent.map_err(|f| convert::failure_to_wit(&f)))
    }

    fn counter_add(&mut self, name: String, value: u64) -> wasmtime::Result<()> {
        self.shared.host.counter_add(&self.shared.item, &name, value);
        Ok(())
    }

    fn histogram_record(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        self.shared.host.histogram_record(&self.shared.item, &name, value);
        Ok(())
    }
}

impl adapter::Host for StoreState {
    fn call(&mut self, request: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, types::Failure>> {
        self.charge_output(request.len() as u64)?;
        let reply = self.off_the_clock(|s| match &s.adapter {
            Some(adapter) => adapter.call(&request),
            None => Err(Failure::permanent(
                "no-adapter",
                format!(
                    "item {} has no adapter: only operations may call adapter.call",
                    s.item
                ),
            )),
        });
        Ok(reply.map_err(|f| convert::failure_to_wit(&f)))
    }
}
