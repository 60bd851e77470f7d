//! How the engine gets business logic: a [`PluginFactory`] makes one instance
//! per worker, so the engine never names the WebAssembly runtime and tests can
//! use native doubles.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hie_config::{HookConfig, ItemConfig};
use hie_core::{Envelope, Failure, HostApi, Outcome, Plugin, PluginError};

use crate::hooks::MessageHook;

/// One instance of an item's logic, owned by one worker.
///
/// Lifecycle order per instance: created (the factory runs `on-init`) →
/// [`ItemInstance::start`] → messages → [`ItemInstance::stop`] → dropped (`on-teardown`).
pub trait ItemInstance: Plugin {
    /// The item starts taking messages (`on-start`); an error fails the worker.
    fn start(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The item stops taking messages (`on-stop`).
    fn stop(&mut self) {}

    /// Content hash (SHA-256 of the component) of the plugin version that handled
    /// the last call, for the message trace; `None` for built-in logic.
    fn version(&self) -> Option<&str> {
        None
    }

    /// How many queued messages the worker may hand to [`ItemInstance::call_many`]
    /// at once; 1 (the default) takes them one at a time.
    fn window(&self) -> usize {
        1
    }

    /// Handle `msgs` in order, one result each, as [`Plugin::call`] would one by one
    /// (the default does just that); an instance with a window above 1 may overlap them.
    fn call_many(&mut self, msgs: Vec<Envelope>) -> Vec<Result<Outcome, PluginError>> {
        msgs.into_iter().map(|m| self.call(m)).collect()
    }
}

/// The outbound side of an operation (`adapter.call` in the WIT): one per worker.
pub trait OutboundAdapter: Send {
    /// Hand `request` to the peer and return its reply bytes.
    fn call(&mut self, request: &[u8]) -> Result<Bytes, Failure>;

    /// Hand the body of `msg` to the peer; adapters that use the message's header
    /// (a `file-out` name from its session or source file) override this.
    fn send(&mut self, msg: &Envelope) -> Result<Bytes, Failure> {
        self.call(&msg.body)
    }

    /// How many messages [`OutboundAdapter::send_many`] should be given at once
    /// (`max_in_flight` of `mllp-out`); 1 (the default): one at a time.
    fn window(&self) -> usize {
        1
    }

    /// Hand each of `msgs` to the peer, in order, and return their replies in the
    /// same order; the default sends one at a time.
    fn send_many(&mut self, msgs: &[Envelope]) -> Vec<Result<Bytes, Failure>> {
        msgs.iter().map(|m| self.send(m)).collect()
    }
}

/// Makes plugin and hook instances for workers.
pub trait PluginFactory: Send + Sync {
    /// A fresh, initialised instance of `item`'s plugin. `adapter` is the
    /// operation's outbound adapter, for plugins that import it.
    fn item_instance(
        &self,
        item: &ItemConfig,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError>;

    /// Load the plugin component at `path` as a new version of `item`'s plugin
    /// (compile or take from the cache, check its world) without making an
    /// instance; returns its content hash. Hot reload calls this off the hot path.
    fn load_version(&self, item: &ItemConfig, path: &Path) -> Result<String, PluginError> {
        let _ = (item, path);
        Err(PluginError::Instantiate(
            "this plugin host cannot load new plugin versions".into(),
        ))
    }

    /// The content hash of the plugin `item` is configured with, once loaded.
    fn configured_version(&self, item: &ItemConfig) -> Option<String> {
        let _ = item;
        None
    }

    /// A fresh, initialised instance of the version of `item`'s plugin with
    /// content `hash` (from [`PluginFactory::load_version`]).
    fn version_instance(
        &self,
        item: &ItemConfig,
        hash: &str,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        let _ = hash;
        self.item_instance(item, host, adapter)
    }

    /// Check, off the hot path, that version `hash` starts with `item`'s
    /// settings: one instance (`on-init`), dropped at once (`on-teardown`),
    /// its outbound adapter not opened. A reload publishes only versions that pass.
    fn trial(&self, item: &ItemConfig, hash: &str, host: Arc<dyn HostApi>) -> Result<(), PluginError> {
        self.version_instance(item, hash, host, None).map(drop)
    }

    /// A fresh, initialised instance of `hook`.
    fn hook_instance(
        &self,
        hook: &HookConfig,
        host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError>;
}

/// The built-in logic of a service without a plugin: pass every message on.
#[derive(Debug, Default)]
pub struct PassThrough;

impl Plugin for PassThrough {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        Ok(Outcome::Pass(msg))
    }
}

impl ItemInstance for PassThrough {}
