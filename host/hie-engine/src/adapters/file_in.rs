//! `file-in`: poll a directory. Each file is claimed by an atomic rename to a
//! hidden work name, read, handed to the service, then moved to the archive
//! directory. A file whose message the service refuses goes back under its own
//! name and is tried again on the next poll. Work files left by a crash are
//! put back on start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hie_config::FileInConfig;
use hie_core::Envelope;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::{Intake, accept_inbound, priority};
use crate::delivery::ReplyTo;
use crate::engine::{ItemRuntime, Shared};
use crate::error::EngineError;

const WORK_SUFFIX: &str = ".work";

/// Start polling for `item`.
pub(crate) fn start(
    shared: &Arc<Shared>,
    item: &Arc<ItemRuntime>,
    cfg: &FileInConfig,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(), EngineError> {
    let io = |source| EngineError::Io {
        item: item.config.name.clone(),
        source,
    };
    std::fs::create_dir_all(&cfg.dir).map_err(io)?;
    std::fs::create_dir_all(&cfg.archive_dir).map_err(io)?;
    recover(&cfg.dir).map_err(io)?;
    tracing::info!(item = %item.config.name, dir = %cfg.dir.display(), "file poller started");
    let shared = Arc::clone(shared);
    let item = Arc::clone(item);
    let cfg = cfg.clone();
    tasks.spawn(async move {
        loop {
            poll(&shared, &item, &cfg, &shutdown).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(cfg.poll_interval) => {}
            }
        }
    });
    Ok(())
}

fn work_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{WORK_SUFFIX}"))
}

/// Put back files a previous run claimed and did not finish.
fn recover(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(original) = name.strip_prefix('.').and_then(|n| n.strip_suffix(WORK_SUFFIX)) {
            std::fs::rename(dir.join(&name), dir.join(original))?;
        }
    }
    Ok(())
}

fn ready_files(cfg: &FileInConfig) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(&cfg.dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n.ends_with(&cfg.suffix))
        .collect();
    names.sort();
    names
}

async fn poll(
    shared: &Arc<Shared>,
    item: &Arc<ItemRuntime>,
    cfg: &FileInConfig,
    shutdown: &CancellationToken,
) {
    let name_of_item = &item.config.name;
    for name in ready_files(cfg) {
        if shutdown.is_cancelled() {
            return;
        }
        let original = cfg.dir.join(&name);
        let work = work_name(&cfg.dir, &name);
        if std::fs::rename(&original, &work).is_err() {
            continue; // claimed by someone else
        }
        let body = match std::fs::read(&work) {
            Ok(b) => b,
            Err(err) => {
                tracing::warn!(item = %name_of_item, file = %name, error = %err, "cannot read inbound file");
                let _ = std::fs::rename(&work, &original);
                continue;
            }
        };
        let mut msg = Envelope::hl7(name_of_item.clone(), body);
        msg.priority = priority::of(&cfg.priority, &msg.body, None);
        msg.properties.insert("file.name".into(), name.clone());
        let id = msg.id;
        // the file is archived only once its message is committed to the store
        let intake = Intake::Commit {
            dedup: false,
            ack: None,
        };
        match accept_inbound(shared, item, msg, ReplyTo::Nobody, intake).await {
            Ok(_) => {
                if let Err(err) = std::fs::rename(&work, cfg.archive_dir.join(&name)) {
                    tracing::warn!(item = %name_of_item, file = %name, error = %err, "cannot archive inbound file");
                }
                tracing::debug!(item = %name_of_item, file = %name, message_id = %id, "inbound file accepted");
            }
            Err(f) => {
                tracing::warn!(item = %name_of_item, file = %name, code = %f.code, "inbound file refused, will retry");
                let _ = std::fs::rename(&work, &original);
                return;
            }
        }
    }
}
