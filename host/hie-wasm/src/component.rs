//! A loaded [`Component`] and the [`ItemContext`] it is instantiated with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hie_core::{HostApi, PluginError};
use wasmtime::component::InstancePre;

use crate::bindings::exports::hie::plugin::{hooks, item};
use crate::config::{Grants, Limits};
use crate::error::{LoadError, one_line};
use crate::host::WasmHost;
use crate::inspect::{ComponentInfo, PluginWorld};
use crate::instance::{WasmHook, WasmPlugin};
use crate::state::{Adapter, ItemShared, StoreState};

/// How a load went: compiled now or taken from the on-disk cache, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    /// The compiled code came from the cache; nothing was compiled.
    pub from_cache: bool,
    /// Time to compile or to load from the cache (not counting reading the `.wasm`).
    pub load_time: Duration,
}

/// The exports of a component, looked up once per load.
pub(crate) enum ExportIndices {
    Item(item::GuestIndices),
    Hook(hooks::GuestIndices),
}

/// A compiled, linked plugin component: instantiate it once per item worker (or hook).
pub struct Component {
    pub(crate) host: WasmHost,
    pub(crate) pre: InstancePre<StoreState>,
    pub(crate) exports: ExportIndices,
    info: ComponentInfo,
    stats: LoadStats,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// Links a compiled component against the host's imports and finds its exports.
    pub(crate) fn link(
        host: WasmHost,
        compiled: wasmtime::component::Component,
        info: ComponentInfo,
        stats: LoadStats,
    ) -> Result<Component, LoadError> {
        let link_error = |e: wasmtime::Error| LoadError::Link {
            file: info.file.clone(),
            reason: one_line(&e),
        };
        let pre = host
            .inner()
            .linker
            .instantiate_pre(&compiled)
            .map_err(link_error)?;
        let exports = match info.world {
            PluginWorld::Item | PluginWorld::Operation => {
                ExportIndices::Item(item::GuestIndices::new(&pre).map_err(link_error)?)
            }
            PluginWorld::Hook => ExportIndices::Hook(hooks::GuestIndices::new(&pre).map_err(link_error)?),
        };
        Ok(Component {
            host,
            pre,
            exports,
            info,
            stats,
        })
    }

    /// What the component is: file, hash, world, imports and exports.
    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }

    /// How the load went (cache hit, time).
    pub fn stats(&self) -> LoadStats {
        self.stats
    }

    /// SHA-256 of the `.wasm`: the plugin version recorded with every message.
    pub fn hash(&self) -> &str {
        &self.info.hash
    }

    /// The plugin world the component fits.
    pub fn world(&self) -> PluginWorld {
        self.info.world
    }

    /// A new instance for an item: runs `on-init` with the item's settings. Fails
    /// if the component is a hook, if the limits cannot be honoured, or if `on-init`
    /// refuses (the error then carries the guest's reason).
    pub fn instantiate(self: &Arc<Self>, ctx: ItemContext) -> Result<WasmPlugin, PluginError> {
        WasmPlugin::new(self.clone(), self.shared(ctx)?)
    }

    /// A new instance of a message hook: runs its `init` with `ctx.settings`.
    pub fn instantiate_hook(self: &Arc<Self>, ctx: ItemContext) -> Result<WasmHook, PluginError> {
        WasmHook::new(self.clone(), self.shared(ctx)?)
    }

    fn shared(&self, ctx: ItemContext) -> Result<Arc<ItemShared>, PluginError> {
        let config = self.host.config();
        if ctx.limits.fuel.is_some() && !config.fuel_metering {
            return Err(self.refuse(&ctx.item, "a fuel limit needs a host with fuel metering".into()));
        }
        if config.pooling && ctx.limits.memory_bytes > config.max_memory_bytes {
            return Err(self.refuse(
                &ctx.item,
                format!(
                    "memory limit of {} bytes exceeds the host's maximum of {}",
                    ctx.limits.memory_bytes, config.max_memory_bytes
                ),
            ));
        }
        let env = ctx
            .grants
            .env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        Ok(Arc::new(ItemShared {
            item: ctx.item,
            settings: ctx.settings,
            host: ctx.host,
            adapter: ctx.adapter,
            limits: ctx.limits,
            grants: ctx.grants,
            env,
        }))
    }

    pub(crate) fn refuse(&self, item: &str, reason: String) -> PluginError {
        PluginError::Instantiate(format!("item {item}, plugin {}: {reason}", self.info.file))
    }
}

/// What an instance gets from the item it serves.
#[derive(Clone)]
pub struct ItemContext {
    /// The item's name (log field, message source).
    pub item: String,
    /// The item's settings, given to `on-init` and readable through `host.setting`.
    pub settings: BTreeMap<String, String>,
    /// Limits applied to every call.
    pub limits: Limits,
    /// Files and environment variables the plugin may see.
    pub grants: Grants,
    /// The engine's side of the host imports.
    pub host: Arc<dyn HostApi>,
    /// The outbound adapter (operations only); `adapter.call` fails without one.
    pub adapter: Option<Arc<dyn Adapter>>,
}

impl ItemContext {
    /// A context with no settings, default limits, no grants and no adapter.
    pub fn new(item: impl Into<String>, host: Arc<dyn HostApi>) -> Self {
        ItemContext {
            item: item.into(),
            settings: BTreeMap::new(),
            limits: Limits::default(),
            grants: Grants::default(),
            host,
            adapter: None,
        }
    }
}

impl std::fmt::Debug for ItemContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemContext")
            .field("item", &self.item)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("grants", &self.grants)
            .field("adapter", &self.adapter.is_some())
            .finish_non_exhaustive()
    }
}
