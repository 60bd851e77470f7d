//! A real full disk: a small tmpfs mounted for the test (needs root; skipped with a
//! printed reason otherwise). Callers get `Unavailable`, nothing half-written shows,
//! and intake resumes once space is freed.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::sized;
use hie_store::{MessageStore, SqliteStore, StoreConfig, StoreError};

/// Unmounts the tmpfs when the test ends, passed or not.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Mount(at.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fill the file system with `path` until writes fail, then give back `leave` bytes.
fn fill(path: &Path, leave: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    file.set_len(written.saturating_sub(leave)).unwrap();
    file.sync_all().unwrap();
}

/// An 8 MiB tmpfs mounted on a fresh directory, or `None` (with the reason
/// printed) where mounting is not allowed.
fn small_tmpfs() -> Option<(tempfile::TempDir, Mount)> {
    let mountpoint = tempfile::tempdir().unwrap();
    match Mount::tmpfs(mountpoint.path(), "8m") {
        Ok(m) => Some((mountpoint, m)),
        Err(reason) => {
            eprintln!("skipped: cannot mount a tmpfs to fill ({reason})");
            None
        }
    }
}

#[test]
fn full_disk_refuses_intake_until_space_is_freed() {
    let Some((mountpoint, _mount)) = small_tmpfs() else {
        return;
    };
    let data = mountpoint.path().join("data");
    let store = SqliteStore::open(&data, StoreConfig::default()).unwrap();
    let filler = mountpoint.path().join("filler");
    fill(&filler, 512 * 1024);

    let mut committed = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let (msg, idx) = sized(&format!("D{i}"), 16 * 1024);
        match store.ingest(&msg, &idx, "in") {
            Ok(_) => committed.push(msg.id),
            Err(e) => {
                refused = Some((msg.id, e));
                break;
            }
        }
    }
    let (refused_id, err) = refused.expect("the disk never filled up");
    match &err {
        StoreError::Unavailable { reason } => assert!(reason.contains("full"), "not a full disk: {reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(!committed.is_empty(), "nothing fit before the disk was full");
    assert!(!store.is_writable());
    let (next, idx) = sized("after-full", 16 * 1024);
    assert!(matches!(
        store.ingest(&next, &idx, "in"),
        Err(StoreError::Unavailable { .. })
    ));
    assert_eq!(store.get(refused_id).unwrap(), None);
    assert_eq!(store.get(next.id).unwrap(), None);
    for id in &committed {
        assert!(store.get(*id).unwrap().is_some(), "committed {id} is gone");
    }

    std::fs::remove_file(&filler).unwrap();
    assert!(store.is_writable(), "probe write still fails after freeing space");
    store.ingest(&next, &idx, "in").unwrap();
    assert!(store.get(next.id).unwrap().is_some());
    drop(store);

    let reopened = SqliteStore::open(&data, StoreConfig::default()).unwrap();
    assert_eq!(reopened.count_messages().unwrap(), committed.len() as u64 + 1);
}

#[test]
fn an_idle_store_on_a_full_disk_is_not_writable() {
    let Some((mountpoint, _mount)) = small_tmpfs() else {
        return;
    };
    let data = mountpoint.path().join("data");
    let store = SqliteStore::open(&data, StoreConfig::default()).unwrap();
    assert!(store.is_writable());
    // the disk fills up while nothing is written to the store: no write has failed,
    // and still the store says it cannot take messages
    let filler = mountpoint.path().join("filler");
    fill(&filler, 64 * 1024);
    assert!(!store.is_writable(), "a full disk counted as writable");
    std::fs::remove_file(&filler).unwrap();
    assert!(store.is_writable());
    let (msg, idx) = sized("after", 1024);
    store.ingest(&msg, &idx, "in").unwrap();
}
