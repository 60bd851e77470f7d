//! The [`PluginFactory`] for WebAssembly components, on top of `hie-wasm`.
//!
//! Components are loaded (compiled or taken from the cache) once, when the
//! production starts; each worker then gets its own instance. An operation whose
//! plugin is not an operation-world component (it does not import `adapter`,
//! e.g. `passthrough`) has its `pass` outcome handed to the adapter, so a plain
//! plugin can sit in front of an MLLP or file connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hie_config::{HookConfig, ItemConfig, ItemKind, PluginWorld as ConfigWorld, Production};
use hie_core::{Envelope, Failure, HostApi, Outcome, Plugin, PluginError};
use hie_wasm::{
    Adapter, Component, DirGrant, Grants, HostConfig, ItemContext, Limits, PluginWorld, WasmHook, WasmHost,
    WasmPlugin,
};
use parking_lot::Mutex;

use crate::adapters::outbound::AdapterSend;
use crate::hooks::{BeforeAction, ErrorAction, MessageHook};
use crate::plugin::{ItemInstance, OutboundAdapter, PluginFactory};

/// Whether a component of world `found` may serve as `wanted`.
pub fn world_fits(wanted: ConfigWorld, found: PluginWorld) -> bool {
    match wanted {
        ConfigWorld::BusinessService | ConfigWorld::BusinessProcess => found == PluginWorld::Item,
        ConfigWorld::BusinessOperation => found.is_item(),
        ConfigWorld::MessageHook => found == PluginWorld::Hook,
    }
}

/// Check that the component at `path` fits `world`, reading only its header
/// (for `hie validate` and plugin resolution).
pub fn check_world(path: &Path, world: ConfigWorld) -> Result<(), String> {
    let info = hie_wasm::inspect(path).map_err(|e| e.to_string())?;
    if world_fits(world, info.world) {
        Ok(())
    } else {
        Err(format!(
            "it is a {} component, the item needs {}",
            info.world,
            world.as_str()
        ))
    }
}

/// Makes WebAssembly plugin and hook instances.
///
/// Components are kept by path (what the production file names, loaded at
/// start) and by content hash (every version ever loaded, so a worker can make
/// an instance of the exact version the item runs, and a rollback needs no
/// compile). A reload reads the file again even when its path is known.
pub struct WasmFactory {
    host: WasmHost,
    components: Mutex<HashMap<PathBuf, Arc<Component>>>,
    versions: Mutex<HashMap<String, Arc<Component>>>,
}

impl std::fmt::Debug for WasmFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFactory")
            .field("components", &self.components.lock().len())
            .finish_non_exhaustive()
    }
}

impl WasmFactory {
    /// A factory on a new wasmtime host.
    pub fn new(config: HostConfig) -> Result<Self, hie_wasm::LoadError> {
        Ok(WasmFactory {
            host: WasmHost::new(config)?,
            components: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        })
    }

    /// Load (compile or fetch from the cache) every plugin of `production`, so a
    /// broken file stops the start, not a worker later. Returns every failure.
    pub fn preload(&self, production: &Production) -> Result<(), Vec<String>> {
        let paths = production
            .items
            .iter()
            .filter_map(|i| i.plugin.as_ref())
            .chain(production.hooks.iter().map(|h| &h.plugin))
            .filter_map(|p| p.path.clone());
        let errors: Vec<String> = paths
            .filter_map(|p| self.component(&p).err().map(|e| e.to_string()))
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn component(&self, path: &Path) -> Result<Arc<Component>, PluginError> {
        if let Some(c) = self.components.lock().get(path) {
            return Ok(Arc::clone(c));
        }
        let component = self
            .host
            .load(path)
            .map_err(|e| PluginError::Instantiate(e.to_string()))?;
        self.versions
            .lock()
            .insert(component.hash().to_string(), Arc::clone(&component));
        self.components
            .lock()
            .insert(path.to_path_buf(), Arc::clone(&component));
        Ok(component)
    }

    /// The time the last load of `hash` took and whether it came from the compile cache.
    pub fn load_stats(&self, hash: &str) -> Option<hie_wasm::LoadStats> {
        self.versions.lock().get(hash).map(|c| c.stats())
    }

    fn context(
        name: &str,
        settings: &std::collections::BTreeMap<String, String>,
        limits: &hie_config::Limits,
        grants: &hie_config::Grants,
        host: Arc<dyn HostApi>,
    ) -> ItemContext {
        let defaults = Limits::default();
        ItemContext {
            item: name.to_string(),
            settings: settings.clone(),
            limits: Limits {
                memory_bytes: limits.memory.unwrap_or(defaults.memory_bytes),
                deadline: limits.deadline.unwrap_or(defaults.deadline),
                fuel: limits.fuel,
                output_bytes: limits.max_output.unwrap_or(defaults.output_bytes),
            },
            grants: Grants {
                dirs: grants
                    .dirs
                    .iter()
                    .map(|d| DirGrant {
                        host_path: d.clone(),
                        guest_path: d.display().to_string(),
                        writable: true,
                    })
                    .collect(),
                env: grants.env.clone(),
            },
            host,
            adapter: None,
        }
    }
}

fn path_of(spec: Option<&hie_config::PluginSpec>, name: &str) -> Result<PathBuf, PluginError> {
    spec.and_then(|p| p.path.clone())
        .ok_or_else(|| PluginError::Instantiate(format!("plugin of {name} is not resolved to a file")))
}

impl PluginFactory for WasmFactory {
    fn item_instance(
        &self,
        item: &ItemConfig,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        let component = self.component(&path_of(item.plugin.as_ref(), &item.name)?)?;
        self.instance_of(component, item, host, adapter)
    }

    fn load_version(&self, item: &ItemConfig, path: &Path) -> Result<String, PluginError> {
        let component = self
            .host
            .load(path)
            .map_err(|e| PluginError::Instantiate(e.to_string()))?;
        let wanted = item.kind.world();
        if !world_fits(wanted, component.world()) {
            return Err(PluginError::Instantiate(format!(
                "{} is a {} component, item {} needs {}",
                path.display(),
                component.world(),
                item.name,
                wanted.as_str()
            )));
        }
        let hash = component.hash().to_string();
        self.versions.lock().insert(hash.clone(), component);
        Ok(hash)
    }

    fn configured_version(&self, item: &ItemConfig) -> Option<String> {
        let path = item.plugin.as_ref()?.path.as_ref()?;
        self.component(path).ok().map(|c| c.hash().to_string())
    }

    fn version_instance(
        &self,
        item: &ItemConfig,
        hash: &str,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        let component = self.versions.lock().get(hash).cloned().ok_or_else(|| {
            PluginError::Instantiate(format!(
                "plugin version {hash} of item {} is not loaded",
                item.name
            ))
        })?;
        self.instance_of(component, item, host, adapter)
    }

    fn hook_instance(
        &self,
        hook: &HookConfig,
        host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError> {
        let component = self.component(&path_of(Some(&hook.plugin), &hook.name)?)?;
        let ctx = Self::context(
            &hook.name,
            &hook.settings,
            &hook.limits,
            &hie_config::Grants::default(),
            host,
        );
        Ok(Box::new(WasmMessageHook {
            name: hook.name.clone(),
            hook: component.instantiate_hook(ctx)?,
        }))
    }
}

impl WasmFactory {
    fn instance_of(
        &self,
        component: Arc<Component>,
        item: &ItemConfig,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        let mut ctx = Self::context(&item.name, &item.settings, &item.limits, &item.grants, host);
        let after = match adapter {
            Some(a) if item.kind == ItemKind::Operation && component.world() != PluginWorld::Operation => {
                Some(a)
            }
            Some(a) => {
                ctx.adapter = Some(Arc::new(SharedAdapter(Mutex::new(a))));
                None
            }
            None => None,
        };
        let plugin = component.instantiate(ctx)?;
        Ok(Box::new(WasmItem {
            hash: component.hash().to_string(),
            plugin: Some(plugin),
            send_after: after.map(|a| AdapterSend::new(a, &item.name)),
        }))
    }
}

/// Gives a worker's own outbound adapter to `hie-wasm`, which wants `&self` calls.
struct SharedAdapter(Mutex<Box<dyn OutboundAdapter>>);

impl Adapter for SharedAdapter {
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, Failure> {
        self.0.lock().call(request).map(|b: Bytes| b.to_vec())
    }
}

/// A wasm item instance; `on-teardown` runs when the worker drops it.
struct WasmItem {
    /// Content hash of the component this is an instance of.
    hash: String,
    plugin: Option<WasmPlugin>,
    /// For an operation whose plugin does not call the adapter itself: where `pass` goes.
    send_after: Option<AdapterSend>,
}

impl WasmItem {
    fn plugin(&mut self) -> Result<&mut WasmPlugin, PluginError> {
        self.plugin
            .as_mut()
            .ok_or_else(|| PluginError::Instantiate("instance already torn down".into()))
    }

    fn after(&mut self, outcome: Outcome) -> Result<Outcome, PluginError> {
        match (outcome, &mut self.send_after) {
            (Outcome::Pass(m), Some(send)) => send.call(m),
            (other, _) => Ok(other),
        }
    }
}

impl Plugin for WasmItem {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        let outcome = self.plugin()?.call(msg)?;
        self.after(outcome)
    }

    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Envelope, Failure>,
    ) -> Result<Outcome, PluginError> {
        let outcome = self.plugin()?.on_reply(correlation_id, reply)?;
        self.after(outcome)
    }
}

impl ItemInstance for WasmItem {
    fn start(&mut self) -> Result<(), String> {
        self.plugin().and_then(|p| p.start()).map_err(|e| e.to_string())
    }

    fn stop(&mut self) {
        if let Some(p) = self.plugin.as_mut()
            && let Err(e) = p.stop()
        {
            tracing::warn!(error = %e, "plugin on-stop failed");
        }
    }

    fn version(&self) -> Option<&str> {
        Some(&self.hash)
    }
}

impl Drop for WasmItem {
    fn drop(&mut self) {
        if let Some(p) = self.plugin.take()
            && let Err(e) = p.teardown()
        {
            tracing::debug!(error = %e, "plugin on-teardown failed");
        }
    }
}

/// A wasm hook; a hook call that fails is logged and gives the neutral answer.
struct WasmMessageHook {
    name: String,
    hook: WasmHook,
}

impl WasmMessageHook {
    fn failed(&self, call: &str, e: &PluginError) {
        tracing::warn!(hook = %self.name, call, error = %e, "hook call failed");
    }
}

impl MessageHook for WasmMessageHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_before_process(&mut self, item: &str, msg: Envelope) -> BeforeAction {
        match self.hook.before_process(item, &msg) {
            Ok(a) => a,
            Err(e) => {
                self.failed("on-before-process", &e);
                BeforeAction::Continue(msg)
            }
        }
    }

    fn on_after_process(&mut self, item: &str, msg: &Envelope, outcome: Outcome) -> Outcome {
        match self.hook.after_process(item, msg, &outcome) {
            Ok(o) => o,
            Err(e) => {
                self.failed("on-after-process", &e);
                outcome
            }
        }
    }

    fn on_process_error(&mut self, item: &str, msg: &Envelope, error: &Failure) -> ErrorAction {
        match self.hook.process_error(item, msg, error) {
            Ok(action) => action,
            Err(e) => {
                self.failed("on-process-error", &e);
                ErrorAction::Default
            }
        }
    }

    fn on_before_send(&mut self, item: &str, target: &str, msg: Envelope) -> BeforeAction {
        match self.hook.before_send(item, target, &msg) {
            Ok(a) => a,
            Err(e) => {
                self.failed("on-before-send", &e);
                BeforeAction::Continue(msg)
            }
        }
    }

    fn on_after_send(&mut self, item: &str, target: &str, msg: &Envelope, delivery: &Result<(), Failure>) {
        if let Err(e) = self
            .hook
            .after_send(item, target, msg, delivery.as_ref().map(|_| ()))
        {
            self.failed("on-after-send", &e);
        }
    }
}
