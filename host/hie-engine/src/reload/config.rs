//! Config reload: validate the new production file, diff it against the
//! running production, and apply only the difference.
//!
//! - Unchanged items keep their `ItemRuntime`: same queue, same workers, same
//!   plugin instances, same listener.
//! - Added and re-configured items are built by the same code as at start-up
//!   (`ItemRuntime::new`, `start_workers`, `Engine::start_inbound`); a
//!   re-configured item gets a new queue and new workers, and keeps a
//!   hot-reloaded plugin version if its `plugin` did not change.
//! - The new item set is installed in one step; from then on every delivery
//!   goes to the new items. The replaced and removed items are retired: their
//!   workers finish what their queue still holds (at most the drain timeout),
//!   then stop. What is left after that moves to the replacing item's queue, or
//!   is dead-lettered for a removed item; nothing is dropped.
//! - A changed or removed service stops its listener (open connections close;
//!   senders reconnect); a changed one then binds again.
//!
//! Everything that can fail is checked before anything changes: the file
//! (every error with file, line and field), the engine's preflight, loading
//! every new plugin, and building every new item. An invalid file changes
//! nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hie_config::ItemKind;
use hie_core::Failure;
use serde::Serialize;

use crate::engine::{Engine, ItemRuntime, ItemState, join_workers, start_workers, wait_idle};
use crate::outward;

/// Why a config reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReloadError {
    /// The new file has errors; each names file, line and field.
    #[error("production file {} is not valid, nothing changed: {}", .file.display(), .errors.join("; "))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every error found.
        errors: Vec<String>,
    },
}

impl ConfigReloadError {
    /// Every error, one per line.
    pub fn errors(&self) -> &[String] {
        match self {
            ConfigReloadError::Invalid { errors, .. } => errors,
        }
    }
}

/// One re-configured item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemReconfigured {
    /// The item.
    pub name: String,
    /// The fields that changed.
    pub fields: Vec<String>,
}

/// What a config reload applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigReload {
    /// The file read.
    pub file: PathBuf,
    /// Items started.
    pub added: Vec<String>,
    /// Items stopped and removed.
    pub removed: Vec<String>,
    /// Items rebuilt with their new configuration.
    pub changed: Vec<ItemReconfigured>,
    /// Items left running as they were.
    pub unchanged: Vec<String>,
    /// Whether the lookup tables were replaced.
    pub lookups: bool,
    /// `[production]` fields that changed but only take effect on restart.
    pub needs_restart: Vec<String>,
    /// Messages the retired items still held when they stopped, moved to their
    /// replacement or dead-lettered (removed items).
    pub moved: usize,
    /// Of those, dead-lettered.
    pub dead_lettered: usize,
}

impl Engine {
    /// Reload the production from `file` (default: the file it was started
    /// from), applying only what changed. Nothing changes if the file is invalid.
    pub async fn reload_config(&self, file: Option<&Path>) -> Result<ConfigReload, ConfigReloadError> {
        let _one_at_a_time = self.reload.lock().await;
        let shared = Arc::clone(self.shared());
        let old = shared.production();
        let file = file.map(Path::to_path_buf).unwrap_or_else(|| old.file.clone());
        let invalid = |errors: Vec<String>| ConfigReloadError::Invalid {
            file: file.clone(),
            errors,
        };
        let new = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                let world_check = |p: &Path, w| crate::wasm::check_world(p, w);
                hie_config::load_and_resolve(&file, Some(&world_check))
            })
            .await
            .map_err(|e| invalid(vec![format!("loading failed: {e}")]))?
            .map_err(|e| invalid(e.iter().map(ToString::to_string).collect()))?
        };
        let engine_errors: Vec<String> = crate::engine::preflight(&new)
            .iter()
            .map(ToString::to_string)
            .collect();
        if !engine_errors.is_empty() {
            return Err(invalid(engine_errors));
        }
        let diff = hie_config::diff(&old, &new);
        let rebuilt: Vec<&str> = diff
            .added
            .iter()
            .chain(diff.changed.iter().map(|c| &c.name))
            .map(String::as_str)
            .collect();
        // load every new or changed plugin before changing anything
        let to_load: Vec<(hie_config::ItemConfig, PathBuf)> = rebuilt
            .iter()
            .filter_map(|name| new.item(name))
            .filter_map(|i| Some((i.clone(), i.plugin.as_ref()?.path.clone()?)))
            .collect();
        let load_errors = {
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || {
                to_load
                    .iter()
                    .filter_map(|(item, path)| {
                        shared
                            .factory
                            .load_version(item, path)
                            .err()
                            .map(|e| format!("item {}: plugin {}: {e}", item.name, path.display()))
                    })
                    .collect::<Vec<String>>()
            })
            .await
            .map_err(|e| invalid(vec![format!("loading plugins failed: {e}")]))?
        };
        if !load_errors.is_empty() {
            return Err(invalid(load_errors));
        }
        let mut built: HashMap<String, Arc<ItemRuntime>> = HashMap::new();
        let mut build_errors = Vec::new();
        for name in &rebuilt {
            let Some(config) = new.item(name) else { continue };
            match ItemRuntime::new(config, &shared.runtime, &new.file) {
                Ok(item) => {
                    let before = old.item(name);
                    let same_plugin = before.is_some_and(|b| b.plugin == config.plugin);
                    match shared.item(name) {
                        Some(running) if same_plugin => item.versions.inherit(&running.versions),
                        _ => item.versions.init(shared.factory.as_ref(), config),
                    }
                    built.insert(name.to_string(), Arc::new(item));
                }
                Err(e) => build_errors.push(e.to_string()),
            }
        }
        if !build_errors.is_empty() {
            return Err(invalid(build_errors));
        }
        // from here on the reload is applied
        let mut items: HashMap<String, Arc<ItemRuntime>> = HashMap::new();
        for name in &diff.unchanged {
            if let Some(item) = shared.item(name) {
                items.insert(name.clone(), item);
            }
        }
        let mut start_order: Vec<Arc<ItemRuntime>> = built.values().cloned().collect();
        start_order.sort_by_key(|i| (start_rank(i.config.kind), i.config.location.line));
        for item in &start_order {
            if item.config.enabled
                && let Err(e) = start_workers(&shared, item)
            {
                tracing::error!(item = %item.config.name, error = %e, "reloaded item cannot start its workers");
            }
        }
        items.extend(built.iter().map(|(k, v)| (k.clone(), Arc::clone(v))));
        let retiring: Vec<(Arc<ItemRuntime>, Option<Arc<ItemRuntime>>)> = diff
            .changed
            .iter()
            .map(|c| &c.name)
            .chain(&diff.removed)
            .filter_map(|name| Some((shared.item(name)?, built.get(name).cloned())))
            .collect();
        for (old_item, _) in &retiring {
            if old_item.config.kind == ItemKind::Service {
                self.stop_inbound(&old_item.config.name);
            }
        }
        shared.replace(Arc::new(new.clone()), items);
        for item in &start_order {
            if item.config.kind == ItemKind::Service
                && let Err(e) = self.start_inbound(item).await
            {
                tracing::error!(item = %item.config.name, error = %e, "reloaded service cannot start its adapter");
            }
        }
        let (moved, dead_lettered) = self.retire(retiring, new.drain_timeout).await;
        let report = ConfigReload {
            file: file.clone(),
            added: diff.added.clone(),
            removed: diff.removed.clone(),
            changed: diff
                .changed
                .iter()
                .map(|c| ItemReconfigured {
                    name: c.name.clone(),
                    fields: c.fields.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            unchanged: diff.unchanged.clone(),
            lookups: diff.lookups,
            needs_restart: diff.production.iter().map(ToString::to_string).collect(),
            moved,
            dead_lettered,
        };
        tracing::info!(
            file = %file.display(),
            added = ?report.added,
            removed = ?report.removed,
            changed = ?report.changed.iter().map(|c| &c.name).collect::<Vec<_>>(),
            unchanged = report.unchanged.len(),
            needs_restart = ?report.needs_restart,
            "production reloaded"
        );
        Ok(report)
    }

    /// Let replaced and removed items finish what they hold, stop them, and
    /// move what is left to their replacement (or dead-letter it). Returns
    /// (moved, of which dead-lettered).
    async fn retire(
        &self,
        retiring: Vec<(Arc<ItemRuntime>, Option<Arc<ItemRuntime>>)>,
        drain: Duration,
    ) -> (usize, usize) {
        let deadline = tokio::time::Instant::now() + drain;
        let shared = self.shared();
        let (mut moved, mut dead) = (0, 0);
        for (old, replacement) in retiring {
            wait_idle(&old, deadline).await;
            old.set_state(ItemState::Stopping);
            old.queue.close();
            join_workers(&old).await;
            let mut refused = Vec::new();
            for delivery in old.queue.drain_waiting() {
                moved += 1;
                match &replacement {
                    Some(new) => {
                        let key = delivery.envelope().and_then(|m| new.key_of(m));
                        if let Err(crate::queue::PushError::Full(d) | crate::queue::PushError::Closed(d)) =
                            new.queue.push_force(delivery, key)
                        {
                            refused.push(*d);
                        }
                    }
                    None => refused.push(delivery),
                }
            }
            for d in crate::delivery::settled(refused).await {
                dead += 1;
                shared.refuse(
                    d,
                    Failure::transient(
                        outward::ITEM_UNAVAILABLE,
                        format!("item {} was removed by a config reload", old.config.name),
                    ),
                    Some(&old.config.name),
                );
            }
            tracing::info!(item = %old.config.name, replaced = replacement.is_some(), "item retired by config reload");
        }
        (moved, dead)
    }
}

/// The order items start in: operations, then processes, then services.
fn start_rank(kind: ItemKind) -> u8 {
    match kind {
        ItemKind::Operation => 0,
        ItemKind::Process => 1,
        ItemKind::Service => 2,
    }
}
