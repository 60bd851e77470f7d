//! The instance a worker holds for an item with a plugin: the current version
//! (and the canary, if one runs), swapped between messages when the item's
//! versions change.

use std::sync::Arc;

use hie_core::{Envelope, Failure, HostApi, Outcome, Plugin, PluginError};

use super::{PluginVersion, Wanted};
use crate::engine::{ItemRuntime, Shared};
use crate::plugin::{ItemInstance, OutboundAdapter};

/// Property naming the plugin version that produced a message: `hie.version.<item>`.
pub const VERSION_PROPERTY_PREFIX: &str = "hie.version.";

/// A fresh instance for worker `index` of `item`, of the versions the item runs now.
pub(crate) fn instance(
    shared: &Arc<Shared>,
    item: &Arc<ItemRuntime>,
    index: usize,
    host: Arc<dyn HostApi>,
    adapter: Option<Box<dyn OutboundAdapter>>,
) -> Result<Box<dyn ItemInstance>, PluginError> {
    let wanted = item.versions.wanted();
    let main = Slot::new(shared, item, &host, wanted.current.as_deref(), adapter)?;
    let canary = match wanted.canary.as_deref() {
        Some(v) => {
            let adapter = item
                .outbound
                .as_ref()
                .map(|o| o.open(&shared.runtime, &shared.metrics, &item.config.name));
            match Slot::new(shared, item, &host, Some(v), adapter) {
                Ok(slot) => Some(slot),
                Err(e) => {
                    item.versions
                        .swap_failed(&item.config.name, &v.hash, &e.to_string());
                    None
                }
            }
        }
        None => None,
    };
    let versioned = VersionedInstance {
        shared: Arc::clone(shared),
        item: Arc::clone(item),
        worker: index,
        host,
        generation: wanted.generation,
        main,
        canary,
        last: None,
        property: format!("{VERSION_PROPERTY_PREFIX}{}", item.config.name),
    };
    versioned.report(false);
    Ok(Box::new(versioned))
}

/// One instance and the version it is of (`None`: the item's configured plugin
/// with no known hash, e.g. a native test double).
struct Slot {
    hash: Option<String>,
    instance: Box<dyn ItemInstance>,
}

impl Slot {
    fn new(
        shared: &Shared,
        item: &ItemRuntime,
        host: &Arc<dyn HostApi>,
        version: Option<&PluginVersion>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Slot, PluginError> {
        let config = &item.config;
        let instance = match version {
            Some(v) => shared
                .factory
                .version_instance(config, &v.hash, Arc::clone(host), adapter)?,
            None => shared.factory.item_instance(config, Arc::clone(host), adapter)?,
        };
        Ok(Slot {
            hash: version
                .map(|v| v.hash.clone())
                .or_else(|| instance.version().map(str::to_string)),
            instance,
        })
    }

    /// A started instance of `version`, for a swap.
    fn started(
        shared: &Shared,
        item: &ItemRuntime,
        host: &Arc<dyn HostApi>,
        version: &PluginVersion,
    ) -> Result<Slot, String> {
        let adapter = item
            .outbound
            .as_ref()
            .map(|o| o.open(&shared.runtime, &shared.metrics, &item.config.name));
        let mut slot = Slot::new(shared, item, host, Some(version), adapter).map_err(|e| e.to_string())?;
        slot.instance.start()?;
        Ok(slot)
    }

    fn retire(mut self) {
        self.instance.stop();
    }
}

struct VersionedInstance {
    shared: Arc<Shared>,
    item: Arc<ItemRuntime>,
    worker: usize,
    host: Arc<dyn HostApi>,
    /// The versions generation this worker last caught up with.
    generation: u64,
    main: Slot,
    canary: Option<Slot>,
    /// The version that handled the last call.
    last: Option<String>,
    property: String,
}

impl VersionedInstance {
    fn name(&self) -> &str {
        &self.item.config.name
    }

    fn report(&self, swapped: bool) {
        self.item.versions.worker_runs(
            self.worker,
            self.main.hash.as_deref(),
            self.canary.as_ref().and_then(|c| c.hash.as_deref()),
            swapped,
        );
    }

    /// Catch up with the item's versions, between two messages.
    fn refresh(&mut self) {
        if self.item.versions.generation() == self.generation {
            return;
        }
        let wanted: Wanted = self.item.versions.wanted();
        self.generation = wanted.generation;
        let mut swapped = false;
        if let Some(v) = &wanted.current
            && self.main.hash.as_deref() != Some(v.hash.as_str())
        {
            match Slot::started(&self.shared, &self.item, &self.host, v) {
                Ok(slot) => {
                    let old = std::mem::replace(&mut self.main, slot);
                    tracing::info!(
                        item = %self.name(),
                        worker = self.worker,
                        from = old.hash.as_deref().unwrap_or("(built in)"),
                        to = %v.hash,
                        "plugin version swapped"
                    );
                    old.retire();
                    swapped = true;
                }
                Err(reason) => {
                    tracing::warn!(item = %self.name(), worker = self.worker, version = %v.hash, reason = %reason, "plugin version swap failed; keeping the running instance");
                    self.item
                        .versions
                        .swap_failed(&self.item.config.name, &v.hash, &reason);
                }
            }
        }
        let canary_now = self.canary.as_ref().and_then(|c| c.hash.clone());
        let canary_wanted = wanted.canary.as_ref().map(|v| v.hash.clone());
        if canary_now != canary_wanted {
            if let Some(old) = self.canary.take() {
                old.retire();
                swapped = true;
            }
            if let Some(v) = &wanted.canary {
                match Slot::started(&self.shared, &self.item, &self.host, v) {
                    Ok(slot) => {
                        tracing::info!(item = %self.name(), worker = self.worker, version = %v.hash, "plugin canary started");
                        self.canary = Some(slot);
                        swapped = true;
                    }
                    Err(reason) => {
                        tracing::warn!(item = %self.name(), worker = self.worker, version = %v.hash, reason = %reason, "plugin canary failed to start");
                        self.item
                            .versions
                            .swap_failed(&self.item.config.name, &v.hash, &reason);
                    }
                }
            }
        }
        if swapped {
            self.report(true);
        }
    }

    /// The slot the next message goes to.
    fn pick(&mut self) -> &mut Slot {
        match &mut self.canary {
            Some(c) if self.item.versions.pick_canary() => c,
            _ => &mut self.main,
        }
    }

    fn after(
        &mut self,
        hash: Option<String>,
        result: Result<Outcome, PluginError>,
    ) -> Result<Outcome, PluginError> {
        if let Some(h) = &hash {
            self.item
                .versions
                .record(&self.item.config.name, h, result.is_err());
        }
        let result = match (&hash, result) {
            (Some(h), Ok(outcome)) => Ok(mark(outcome, &self.property, h)),
            (_, other) => other,
        };
        self.last = hash;
        result
    }
}

/// Name the version that produced each message of `outcome`.
fn mark(outcome: Outcome, key: &str, hash: &str) -> Outcome {
    let set = |mut m: Envelope| {
        m.properties.insert(key.to_string(), hash.to_string());
        m
    };
    match outcome {
        Outcome::Pass(m) => Outcome::Pass(set(m)),
        Outcome::Reply(m) => Outcome::Reply(set(m)),
        Outcome::Forward(mut routes) => {
            for r in &mut routes {
                r.message.properties.insert(key.to_string(), hash.to_string());
            }
            Outcome::Forward(routes)
        }
        other => other,
    }
}

impl Plugin for VersionedInstance {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        self.refresh();
        let slot = self.pick();
        let hash = slot.hash.clone();
        let result = slot.instance.call(msg);
        self.after(hash, result)
    }

    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Envelope, Failure>,
    ) -> Result<Outcome, PluginError> {
        self.refresh();
        let hash = self.main.hash.clone();
        let result = self.main.instance.on_reply(correlation_id, reply);
        self.after(hash, result)
    }
}

impl ItemInstance for VersionedInstance {
    fn start(&mut self) -> Result<(), String> {
        self.main.instance.start()?;
        if let Some(c) = &mut self.canary {
            c.instance.start()?;
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.main.instance.stop();
        if let Some(c) = &mut self.canary {
            c.instance.stop();
        }
    }

    fn version(&self) -> Option<&str> {
        self.last.as_deref()
    }
}
