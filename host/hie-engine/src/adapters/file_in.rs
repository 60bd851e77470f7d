//! `file-in`: poll a directory. Each file whose name ends with `suffix` and
//! matches `file_spec` (wildcards `*` and `?`, IRIS `FileSpec`) is claimed by an
//! atomic rename to a hidden work name (or into `work_dir`, IRIS `WorkPath`),
//! read, handed to the service, then moved to the archive directory. A file whose
//! message the service refuses goes back under its own name and is tried again on
//! the next poll. Work files left by a crash are put back on start.

use std::path::PathBuf;
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
    if let Some(work) = &cfg.work_dir {
        std::fs::create_dir_all(work).map_err(io)?;
    }
    recover(cfg).map_err(io)?;
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

/// Where a file is kept while it is read.
fn work_name(cfg: &FileInConfig, name: &str) -> PathBuf {
    match &cfg.work_dir {
        Some(work) => work.join(format!(".{name}{WORK_SUFFIX}")),
        None => cfg.dir.join(format!(".{name}{WORK_SUFFIX}")),
    }
}

/// Put back files a previous run claimed and did not finish.
fn recover(cfg: &FileInConfig) -> std::io::Result<()> {
    let work_dir = cfg.work_dir.as_deref().unwrap_or(&cfg.dir);
    for entry in std::fs::read_dir(work_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(original) = name.strip_prefix('.').and_then(|n| n.strip_suffix(WORK_SUFFIX)) {
            std::fs::rename(work_dir.join(&name), cfg.dir.join(original))?;
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
        .filter(|n| !n.starts_with('.') && n.ends_with(&cfg.suffix) && matches_spec(&cfg.file_spec, n))
        .collect();
    names.sort();
    names
}

/// Whether `name` matches one of `patterns` (none: every name).
fn matches_spec(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| wildcard(p, name))
}

/// `*` matches any run of characters, `?` one character; everything else itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
        let work = work_name(cfg, &name);
        if let Err(err) = std::fs::rename(&original, &work) {
            if err.kind() != std::io::ErrorKind::NotFound {
                // e.g. a work_dir on another file system: say so rather than skip quietly
                tracing::warn!(item = %name_of_item, file = %name, error = %err, "cannot claim inbound file");
            }
            continue; // gone: claimed by someone else
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
        match accept_inbound(shared, item, msg, ReplyTo::Nobody, intake)
            .await
            .settle()
            .await
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*.hl7", "adt.hl7"));
        assert!(!wildcard("*.hl7", "adt.hl7.bak"));
        assert!(wildcard("ADT_??.txt", "ADT_01.txt"));
        assert!(!wildcard("ADT_??.txt", "ADT_1.txt"));
        assert!(wildcard("*", "anything"));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
        assert!(matches_spec(&["*.hl7".into(), "*.txt".into()], "x.txt"));
        assert!(!matches_spec(&["*.hl7".into(), "*.txt".into()], "x.dat"));
        assert!(matches_spec(&[], "x.dat"));
    }
}
