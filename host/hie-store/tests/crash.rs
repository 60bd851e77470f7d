//! SIGKILL at a random moment loses no message whose commit was reported.
//!
//! The test re-runs its own binary as a child (`crash_child`) that ingests in a
//! loop and prints `committed <id>` only after `ingest` returned. The parent kills
//! it with SIGKILL, reopens the store, and looks every printed id up.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::adt;
use hie_store::{MessageStore, SqliteStore, StoreConfig};

const CHILD_DIR_ENV: &str = "HIE_STORE_CRASH_CHILD_DIR";
const ROUNDS: usize = 6;
const CHILD_THREADS: usize = 4;
/// The child stops by itself after this long, should the parent never kill it.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

#[test]
#[ignore = "child process of sigkill_loses_no_committed_message"]
fn crash_child() {
    let dir = std::env::var(CHILD_DIR_ENV).expect("run by sigkill_loses_no_committed_message");
    let store = SqliteStore::open(&dir, StoreConfig::default()).expect("open store");
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..CHILD_THREADS {
            let store = store.clone();
            s.spawn(move || {
                let mut i = 0u64;
                while started.elapsed() < CHILD_LIFETIME {
                    let (msg, idx) = adt(&format!("K{t}-{i}"), "P1");
                    store.ingest(&msg, &idx, "in").expect("ingest");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "committed {}", msg.id)
                        .and_then(|()| out.flush())
                        .expect("stdout");
                    i += 1;
                }
            });
        }
    });
}

#[test]
fn sigkill_loses_no_committed_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..ROUNDS {
        let printed = run_and_kill(dir.path(), round);
        assert!(
            !printed.is_empty(),
            "round {round}: the child committed nothing before the kill"
        );
        eprintln!("round {round}: {} commits reported before SIGKILL", printed.len());
        acknowledged.extend(printed);

        let store = SqliteStore::open(dir.path(), StoreConfig::default()).expect("reopen after kill");
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|id| store.get(**id).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} committed ids lost, first {:?}",
            missing.len(),
            acknowledged.len(),
            missing.first()
        );
        assert!(store.count_messages().unwrap() >= acknowledged.len() as u64);
    }
}

/// Start the child, let it commit for a pseudo-random while, SIGKILL it, and return
/// the ids it reported committed.
fn run_and_kill(dir: &std::path::Path, round: usize) -> Vec<uuid::Uuid> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // a line cut by the kill has no newline and fails to parse: it was never a full report
            if let Some(id) = line.strip_prefix("committed ").and_then(|s| s.parse().ok()) {
                ids.push(id);
                let _ = tx.send(());
            }
        }
        ids
    });
    // wait for the first commit, then a further 30..330 ms chosen from the clock's low bits
    let first = rx.recv_timeout(Duration::from_secs(60));
    let jitter = 30 + (hie_core::now_ms() * 7919 + round as u64 * 104_729) % 300;
    if first.is_ok() {
        std::thread::sleep(Duration::from_millis(jitter));
    }
    child.kill().expect("SIGKILL child");
    let status = child.wait().expect("reap child");
    assert!(
        !status.success(),
        "round {round}: the child ended by itself before the kill"
    );
    reader.join().unwrap()
}
