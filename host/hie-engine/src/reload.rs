//! Hot reload: new plugin versions, canaries, rollback, and config reload.
//!
//! # Plugin versions
//!
//! Each item with a plugin keeps a [`PluginVersions`]: the current version
//! (content hash of the component), the previous one (for rollback), and at
//! most one canary with its share of messages. Every change bumps a
//! generation number.
//!
//! # Cut-over
//!
//! A reload compiles and checks the new component off the hot path
//! ([`crate::PluginFactory::load_version`], on the blocking pool), then makes one
//! trial instance, which runs `on-init` with the item's settings; a compile
//! error, a world mismatch or a failing `on-init` rejects the reload and the
//! running version is not touched. Only then is the new version published.
//! Each worker checks the generation before every plugin call (one atomic
//! load): the message it is processing finishes on the instance it started on;
//! the next message it takes runs on a fresh instance of the new version
//! (`on-init`, `on-start`, then the old instance gets `on-stop` and
//! `on-teardown`). The queue hands each message to one worker once, so across
//! a swap no message is lost or processed twice; each call runs on exactly one
//! version, recorded in the outgoing messages' `hie.version.<item>` property,
//! by [`crate::ItemInstance::version`] and in the log line `plugin version
//! swapped` (item, worker, from, to). An idle worker swaps when it takes its
//! next message.
//!
//! # Rollback and canary
//!
//! After a reload the new version is watched for its first
//! `reload.check_messages` calls (item setting, default 100): once more than
//! `reload.max_error_percent` (default 50) of them have failed, the item
//! returns to the previous version and logs why. A worker whose swap fails
//! (`on-init` or `on-start` refuses) keeps its instance and rolls the item back
//! too. A canary (`canary = N` percent) runs beside the current version and gets
//! every N-th in 100 messages, counted across the item's workers; it is watched
//! the same way, and ends by [`Engine::promote`] or [`Engine::rollback`].

mod config;
mod instance;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hie_config::ItemConfig;
use parking_lot::Mutex;
use serde::Serialize;

use crate::engine::Engine;
use crate::plugin::PluginFactory;

pub use config::{ConfigReload, ConfigReloadError, ItemReconfigured};
pub(crate) use instance::instance;

/// Item setting: how many calls of a new version are watched for errors.
pub const CHECK_MESSAGES_SETTING: &str = "reload.check_messages";
/// Item setting: the share of failed calls (percent) among the watched ones that rolls back.
pub const MAX_ERROR_PERCENT_SETTING: &str = "reload.max_error_percent";
/// Default of [`CHECK_MESSAGES_SETTING`].
pub const DEFAULT_CHECK_MESSAGES: u32 = 100;
/// Default of [`MAX_ERROR_PERCENT_SETTING`].
pub const DEFAULT_MAX_ERROR_PERCENT: u32 = 50;

/// One version of an item's plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginVersion {
    /// SHA-256 of the component.
    pub hash: String,
    /// The file it was loaded from.
    pub path: PathBuf,
}

/// The canary of an item: a second version getting a share of the messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanaryStatus {
    /// Content hash.
    pub hash: String,
    /// Share of the item's messages, in percent.
    pub percent: u8,
}

/// What one worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerVersion {
    /// Worker index within the item.
    pub worker: usize,
    /// Content hash of its main instance.
    pub hash: String,
    /// Content hash of its canary instance, if any.
    pub canary: Option<String>,
    /// Instances this worker has swapped in since it started.
    pub swaps: u64,
}

/// An item's plugin versions as status shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VersionStatus {
    /// Content hash of the version new messages go to.
    pub current: Option<String>,
    /// The version before it (what a rollback returns to).
    pub previous: Option<String>,
    /// The canary, if one runs.
    pub canary: Option<CanaryStatus>,
    /// Per worker: the version it runs now.
    pub workers: Vec<WorkerVersion>,
    /// Why the last automatic or manual rollback happened.
    pub last_rollback: Option<String>,
}

/// Error budget of a newly published version.
#[derive(Debug)]
struct Watch {
    hash: String,
    limit: u32,
    max_percent: u32,
    seen: u32,
    errors: u32,
}

#[derive(Debug, Default)]
struct VersionState {
    current: Option<Arc<PluginVersion>>,
    previous: Option<Arc<PluginVersion>>,
    canary: Option<(Arc<PluginVersion>, u8)>,
    watch: Option<Watch>,
    workers: BTreeMap<usize, WorkerVersion>,
    last_rollback: Option<String>,
}

/// The plugin versions of one item (see the module docs).
#[derive(Debug, Default)]
pub struct PluginVersions {
    generation: AtomicU64,
    canary_picks: AtomicU64,
    state: Mutex<VersionState>,
}

/// A snapshot of what workers should run.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub generation: u64,
    pub current: Option<Arc<PluginVersion>>,
    pub canary: Option<Arc<PluginVersion>>,
}

impl PluginVersions {
    /// Record the version `item` starts with (the file its config names).
    pub(crate) fn init(&self, factory: &dyn PluginFactory, item: &ItemConfig) {
        let Some(path) = item.plugin.as_ref().and_then(|p| p.path.clone()) else {
            return;
        };
        if let Some(hash) = factory.configured_version(item) {
            self.state.lock().current = Some(Arc::new(PluginVersion { hash, path }));
        }
    }

    /// Take over the versions of the item this one replaces (config reload of
    /// an item whose plugin did not change: a hot-reloaded version stays).
    pub(crate) fn inherit(&self, old: &PluginVersions) {
        let old = old.state.lock();
        let mut st = self.state.lock();
        st.current = old.current.clone();
        st.previous = old.previous.clone();
        st.canary = old.canary.clone();
        st.last_rollback = old.last_rollback.clone();
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn wanted(&self) -> Wanted {
        let st = self.state.lock();
        Wanted {
            generation: self.generation(),
            current: st.current.clone(),
            canary: st.canary.as_ref().map(|(v, _)| Arc::clone(v)),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the next message goes to the canary (`percent` in every 100).
    pub(crate) fn pick_canary(&self) -> bool {
        let percent = match &self.state.lock().canary {
            Some((_, p)) => u64::from(*p),
            None => return false,
        };
        self.canary_picks.fetch_add(1, Ordering::Relaxed) % 100 < percent
    }

    /// Note which versions worker `index` runs.
    pub(crate) fn worker_runs(&self, index: usize, hash: Option<&str>, canary: Option<&str>, swapped: bool) {
        let mut st = self.state.lock();
        let entry = st.workers.entry(index).or_insert_with(|| WorkerVersion {
            worker: index,
            hash: String::new(),
            canary: None,
            swaps: 0,
        });
        entry.hash = hash.unwrap_or_default().to_string();
        entry.canary = canary.map(str::to_string);
        if swapped {
            entry.swaps += 1;
        }
    }

    /// Count one call of version `hash`; rolls back (and says why) once its
    /// error budget is spent.
    pub(crate) fn record(&self, item: &str, hash: &str, failed: bool) {
        let mut st = self.state.lock();
        let Some(w) = st.watch.as_mut().filter(|w| w.hash == hash) else {
            return;
        };
        w.seen += 1;
        w.errors += u32::from(failed);
        let over = u64::from(w.errors) * 100 > u64::from(w.max_percent) * u64::from(w.limit);
        if over {
            let reason = format!(
                "{} of the first {} messages failed (limit {}% of {})",
                w.errors, w.seen, w.max_percent, w.limit
            );
            let hash = w.hash.clone();
            self.roll_back_locked(&mut st, item, &hash, &reason);
        } else if w.seen >= w.limit {
            tracing::info!(item, version = %w.hash, errors = w.errors, watched = w.seen, "plugin version passed its error budget");
            st.watch = None;
        }
    }

    /// A worker could not start version `hash`: roll the item back from it.
    pub(crate) fn swap_failed(&self, item: &str, hash: &str, reason: &str) {
        let mut st = self.state.lock();
        self.roll_back_locked(
            &mut st,
            item,
            hash,
            &format!("a worker could not start it: {reason}"),
        );
    }

    /// Return from the bad version `hash` (the canary or the current one) to the previous one.
    fn roll_back_locked(&self, st: &mut VersionState, item: &str, hash: &str, reason: &str) {
        if st.canary.as_ref().is_some_and(|(v, _)| v.hash == hash) {
            st.canary = None;
        } else if st.current.as_ref().is_some_and(|v| v.hash == hash) {
            let Some(previous) = st.previous.take() else {
                return;
            };
            st.previous = st.current.replace(previous);
        } else {
            return;
        }
        st.watch = None;
        let to = st.current.as_ref().map(|v| v.hash.clone()).unwrap_or_default();
        tracing::warn!(item, from = %hash, to = %to, reason, "plugin version rolled back");
        st.last_rollback = Some(format!("from {hash}: {reason}"));
        self.bump();
    }

    /// The status view.
    pub fn status(&self) -> VersionStatus {
        let st = self.state.lock();
        VersionStatus {
            current: st.current.as_ref().map(|v| v.hash.clone()),
            previous: st.previous.as_ref().map(|v| v.hash.clone()),
            canary: st.canary.as_ref().map(|(v, p)| CanaryStatus {
                hash: v.hash.clone(),
                percent: *p,
            }),
            workers: st.workers.values().cloned().collect(),
            last_rollback: st.last_rollback.clone(),
        }
    }
}

/// Why a plugin reload, rollback or promotion did not happen. The running
/// version is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No item has this name.
    #[error("no item named {0:?}")]
    UnknownItem(String),
    /// The item runs no plugin (built-in pass-through or adapter only).
    #[error("item {0} has no plugin to reload; give it a `plugin` in the production file")]
    NoPlugin(String),
    /// The new component cannot be used; the old version keeps running.
    #[error("item {item}: reload rejected, version {running} keeps running: {reason}")]
    Rejected {
        /// The item.
        item: String,
        /// The version still running.
        running: String,
        /// Why.
        reason: String,
    },
    /// The request itself is wrong.
    #[error("item {item}: {message}")]
    Invalid {
        /// The item.
        item: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// What a plugin reload did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginReload {
    /// The item.
    pub item: String,
    /// Version running before.
    pub from: Option<String>,
    /// Version published.
    pub to: String,
    /// Share of messages it gets, when published as a canary.
    pub canary: Option<u8>,
    /// The file it came from.
    pub path: PathBuf,
    /// Time to load (compile or fetch from the cache) and check it, in ms.
    pub load_ms: f64,
    /// Time for the trial instance (`on-init`), in ms.
    pub trial_ms: f64,
    /// Workers that will swap before their next message.
    pub workers: usize,
}

/// What a rollback or promotion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    /// The item.
    pub item: String,
    /// Version that stopped taking messages (or the canary promoted).
    pub from: String,
    /// Version that takes them now.
    pub to: String,
}

fn parse_setting(item: &ItemConfig, key: &str, default: u32, max: u32) -> Result<u32, ReloadError> {
    match item.settings.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1 && *n <= max)
            .ok_or_else(|| ReloadError::Invalid {
                item: item.name.clone(),
                message: format!("setting `{key}` = {v:?}: expected a whole number from 1 to {max}"),
            }),
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Engine {
    /// Load a new version of `item`'s plugin (from `plugin`, or the file its
    /// config names, read again) and publish it: to every message, or as a
    /// canary to `canary` percent of them. Compile errors, world mismatches and
    /// a failing `on-init` reject it; the running version is not touched.
    pub async fn reload_plugin(
        &self,
        item: &str,
        plugin: Option<PathBuf>,
        canary: Option<u8>,
    ) -> Result<PluginReload, ReloadError> {
        let _one_at_a_time = self.reload.lock().await;
        let runtime = self
            .item(item)
            .map_err(|_| ReloadError::UnknownItem(item.to_string()))?;
        let config = runtime.config.clone();
        let Some(spec) = &config.plugin else {
            return Err(ReloadError::NoPlugin(config.name.clone()));
        };
        let path = match plugin.or_else(|| spec.path.clone()) {
            Some(p) => std::path::absolute(&p).unwrap_or(p),
            None => return Err(ReloadError::NoPlugin(config.name.clone())),
        };
        if let Some(p) = canary
            && !(1..=99).contains(&p)
        {
            return Err(ReloadError::Invalid {
                item: config.name.clone(),
                message: format!("canary share {p}% must be from 1 to 99 (100%: reload without --canary)"),
            });
        }
        let check_messages =
            parse_setting(&config, CHECK_MESSAGES_SETTING, DEFAULT_CHECK_MESSAGES, 1_000_000)?;
        let max_percent = parse_setting(&config, MAX_ERROR_PERCENT_SETTING, DEFAULT_MAX_ERROR_PERCENT, 100)?;
        let running = runtime
            .versions
            .status()
            .current
            .unwrap_or_else(|| "(built in)".into());
        let rejected = |reason: String| ReloadError::Rejected {
            item: config.name.clone(),
            running: running.clone(),
            reason,
        };
        let shared = Arc::clone(self.shared());
        let started = Instant::now();
        let hash = {
            let (shared, config, path) = (Arc::clone(&shared), config.clone(), path.clone());
            tokio::task::spawn_blocking(move || shared.factory.load_version(&config, &path))
                .await
                .map_err(|e| rejected(format!("loader failed: {e}")))?
                .map_err(|e| rejected(e.to_string()))?
        };
        let load_ms = ms(started);
        let started = Instant::now();
        {
            let (shared, config, hash) = (Arc::clone(&shared), config.clone(), hash.clone());
            tokio::task::spawn_blocking(move || trial(&shared, &config, &hash))
                .await
                .map_err(|e| rejected(format!("trial instance failed: {e}")))?
                .map_err(|reason| rejected(format!("the new version fails on-init: {reason}")))?;
        }
        let trial_ms = ms(started);
        let version = Arc::new(PluginVersion {
            hash: hash.clone(),
            path: path.clone(),
        });
        let versions = &runtime.versions;
        let from = {
            let mut st = versions.state.lock();
            let from = st.current.as_ref().map(|v| v.hash.clone());
            match canary {
                Some(p) => st.canary = Some((version, p)),
                None => {
                    if from.as_deref() != Some(hash.as_str()) {
                        st.previous = st.current.replace(version);
                    }
                    st.canary = None;
                }
            }
            st.watch = Some(Watch {
                hash: hash.clone(),
                limit: check_messages,
                max_percent,
                seen: 0,
                errors: 0,
            });
            versions.bump();
            from
        };
        tracing::info!(
            item = %config.name,
            from = from.as_deref().unwrap_or("(built in)"),
            to = %hash,
            canary_percent = canary.map(u64::from),
            path = %path.display(),
            load_ms,
            trial_ms,
            "plugin version published"
        );
        Ok(PluginReload {
            item: config.name.clone(),
            from,
            to: hash,
            canary,
            path,
            load_ms,
            trial_ms,
            workers: runtime.executor.workers(),
        })
    }

    /// Go back by hand: end the canary if one runs, else return to the previous version.
    pub async fn rollback(&self, item: &str) -> Result<VersionChange, ReloadError> {
        let _one_at_a_time = self.reload.lock().await;
        let runtime = self
            .item(item)
            .map_err(|_| ReloadError::UnknownItem(item.to_string()))?;
        let versions = &runtime.versions;
        let mut st = versions.state.lock();
        let current = st.current.as_ref().map(|v| v.hash.clone()).unwrap_or_default();
        let bad = match (&st.canary, &st.previous) {
            (Some((c, _)), _) => c.hash.clone(),
            (None, Some(_)) => current.clone(),
            (None, None) => {
                return Err(ReloadError::Invalid {
                    item: item.to_string(),
                    message: "no previous version or canary to roll back to".into(),
                });
            }
        };
        versions.roll_back_locked(&mut st, item, &bad, "rolled back by an operator");
        let to = st.current.as_ref().map(|v| v.hash.clone()).unwrap_or_default();
        Ok(VersionChange {
            item: item.to_string(),
            from: bad,
            to,
        })
    }

    /// Make the canary the current version for every message.
    pub async fn promote(&self, item: &str) -> Result<VersionChange, ReloadError> {
        let _one_at_a_time = self.reload.lock().await;
        let runtime = self
            .item(item)
            .map_err(|_| ReloadError::UnknownItem(item.to_string()))?;
        let versions = &runtime.versions;
        let mut st = versions.state.lock();
        let Some((canary, _)) = st.canary.take() else {
            return Err(ReloadError::Invalid {
                item: item.to_string(),
                message: "no canary to promote; start one with a reload with a canary share".into(),
            });
        };
        let from = st.current.as_ref().map(|v| v.hash.clone()).unwrap_or_default();
        let to = canary.hash.clone();
        st.previous = st.current.replace(canary);
        versions.bump();
        drop(st);
        tracing::info!(item, from = %from, to = %to, "plugin canary promoted");
        Ok(VersionChange {
            item: item.to_string(),
            from,
            to,
        })
    }
}

/// One instance of version `hash` with the item's settings: `on-init` runs, then
/// the instance is dropped (`on-teardown`). Its outbound adapter is not opened.
fn trial(shared: &crate::engine::Shared, config: &ItemConfig, hash: &str) -> Result<(), String> {
    shared
        .factory
        .trial(config, hash, shared.host.clone())
        .map_err(|e| e.to_string())
}

/// The content hash a status line shows: the first 12 hex characters.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
