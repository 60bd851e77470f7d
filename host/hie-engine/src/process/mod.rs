//! `multi_process` execution: an item's plugin runs in `hie worker` OS
//! processes, so a plugin that aborts, corrupts memory or exhausts its process
//! takes down one worker, never the engine or another item.
//!
//! The engine keeps items, queues and the worker loop as they are: a
//! multi_process item has `processes × threads` engine-side worker threads whose
//! [`crate::ItemInstance`] is a proxy ([`remote`]) that sends each call to a
//! worker process over its socketpair ([`protocol`]) and answers the host
//! imports the plugin makes meanwhile on the calling thread, so request/reply,
//! sends and the current-message context behave as in the other modes. Hooks
//! run in the engine. The [`ProcessPool`] ([`supervisor`]) starts, watches and
//! restarts the processes; [`worker`] is the side that runs in `hie worker`.
//!
//! Item settings (stripped before the plugin sees its settings):
//!
//! | Setting | Default | Meaning |
//! |---|---|---|
//! | `worker.max_attempts` | 3 | a message whose worker died this many times is dead-lettered (poison message) |
//! | `worker.memory_limit` | none | `RLIMIT_AS` of each worker, bytes (`512MiB`, `2GiB` accepted) |
//! | `worker.cpu_seconds` | none | `RLIMIT_CPU` of each worker |
//! | `worker.heartbeat_ms` | 1000 | heartbeat period |
//! | `worker.heartbeat_timeout_ms` | 5000 | a worker silent this long is killed and restarted |
//! | `worker.start_timeout_ms` | 30000 | a worker not ready this long after start is killed |
//! | `worker.stop_timeout_ms` | 5000 | on stop, SIGKILL after this long |
//! | `worker.test_abort_on` | none | **test only**: a worker `abort()`s on a message whose body contains this text |

use std::time::Duration;

use hie_config::ItemConfig;

use crate::error::EngineError;

pub mod protocol;
pub mod remote;
pub mod supervisor;
pub mod worker;

pub use remote::{CallError, Connection};
pub use supervisor::{PoolUser, ProcessFactory, ProcessPool, ProcessPools, WorkerStatus};
pub use worker::{WorkerOptions, refuse, serve_worker};

/// Prefix of the item settings that configure worker processes.
pub const SETTINGS_PREFIX: &str = "worker.";

/// Worker-process settings of a multi_process item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// Worker deaths during one message before it is dead-lettered.
    pub max_attempts: u32,
    /// `RLIMIT_AS` in bytes.
    pub memory_limit: Option<u64>,
    /// `RLIMIT_CPU` in seconds.
    pub cpu_seconds: Option<u64>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Silence after which a worker is killed.
    pub heartbeat_timeout: Duration,
    /// Most time from spawn to ready.
    pub start_timeout: Duration,
    /// Most time from shutdown to exit.
    pub stop_timeout: Duration,
    /// Test only: abort the worker process on a body containing this.
    pub test_abort_on: Option<String>,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            max_attempts: 3,
            memory_limit: None,
            cpu_seconds: None,
            heartbeat: Duration::from_millis(1000),
            heartbeat_timeout: Duration::from_millis(5000),
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(5),
            test_abort_on: None,
        }
    }
}

impl ProcessSettings {
    /// Parse the `worker.*` settings of `item`; errors name the file, line and field.
    pub fn of(item: &ItemConfig, file: &std::path::Path) -> Result<Self, EngineError> {
        let mut s = ProcessSettings::default();
        for (key, value) in &item.settings {
            let Some(name) = key.strip_prefix(SETTINGS_PREFIX) else {
                continue;
            };
            let invalid = |message: String| EngineError::Invalid {
                file: file.display().to_string(),
                line: item.location.line,
                item: item.name.clone(),
                field: format!("settings.\"{key}\""),
                message,
            };
            let number = || {
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(format!("{value:?} is not a positive whole number")))
            };
            let ms = || number().map(Duration::from_millis);
            match name {
                "max_attempts" => {
                    s.max_attempts =
                        u32::try_from(number()?).map_err(|_| invalid(format!("{value:?} is too large")))?
                }
                "memory_limit" => {
                    s.memory_limit = Some(hie_config::parse_size(value).ok_or_else(|| {
                        invalid(format!(
                            "{value:?} is not a size such as \"536870912\", \"512MiB\" or \"2GiB\""
                        ))
                    })?)
                }
                "cpu_seconds" => s.cpu_seconds = Some(number()?),
                "heartbeat_ms" => s.heartbeat = ms()?,
                "heartbeat_timeout_ms" => s.heartbeat_timeout = ms()?,
                "start_timeout_ms" => s.start_timeout = ms()?,
                "stop_timeout_ms" => s.stop_timeout = ms()?,
                "test_abort_on" if !value.is_empty() => s.test_abort_on = Some(value.clone()),
                _ => {
                    return Err(invalid(
                        "unknown worker setting; known: max_attempts, memory_limit, cpu_seconds, \
                         heartbeat_ms, heartbeat_timeout_ms, start_timeout_ms, stop_timeout_ms, \
                         test_abort_on"
                            .into(),
                    ));
                }
            }
        }
        if s.heartbeat_timeout <= s.heartbeat {
            return Err(EngineError::Invalid {
                file: file.display().to_string(),
                line: item.location.line,
                item: item.name.clone(),
                field: "settings.\"worker.heartbeat_timeout_ms\"".into(),
                message: "must be longer than worker.heartbeat_ms".into(),
            });
        }
        Ok(s)
    }
}

/// `item` as its plugin sees it: without the `worker.*` settings.
pub fn plugin_view(item: &ItemConfig) -> ItemConfig {
    let mut item = item.clone();
    item.settings.retain(|k, _| !k.starts_with(SETTINGS_PREFIX));
    item
}
