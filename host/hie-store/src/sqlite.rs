use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use hie_core::MessageId;

use crate::completion::pending;
use crate::read::ReadPool;
use crate::writer::{Request, Shared, Writer, WriterSettings};
use crate::{
    Applied, BatchOutcome, Clock, DeadLetter, MessageStore, MessageSummary, Pending, Recovered, SearchQuery,
    Status, StoreConfig, StoreError, StoredMessage, TraceEvent, TraceKey, WriteBatch, schema,
};

/// Messages deleted per purge transaction, so a big purge never stalls intake for long.
const PURGE_CHUNK: usize = 2_000;

/// The default [`MessageStore`]: one SQLite file in WAL mode with `synchronous=FULL`,
/// one writer thread that group-commits every pending batch, and a small pool of
/// read-only connections. Cloning is cheap and shares the store; the writer stops
/// once the last clone is dropped, after committing what was submitted.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Free space below which the store does not count as writable ([`StoreConfig::probe_bytes`]).
    headroom: u64,
    requests: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    reads: ReadPool,
    clock: Clock,
}

/// Counters of the writer since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Transactions committed (each one fsync of the WAL).
    pub transactions: u64,
    /// Batches committed; `batches / transactions` is the group-commit factor.
    pub batches: u64,
    /// Transactions that failed and were rolled back.
    pub failed_transactions: u64,
    /// Whether intake is refused after a write error.
    pub faulted: bool,
}

/// What [`SqliteStore::run_retention`] does each time.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Keep messages younger than this.
    pub keep_for: Duration,
    /// Purge messages whose every item state is one of these.
    pub statuses: Vec<Status>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            keep_for: Duration::from_secs(30 * 24 * 3600),
            statuses: vec![Status::Done, Status::Discarded],
        }
    }
}

/// What one retention run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Messages purged.
    pub purged: u64,
    /// Bytes given back to the file system.
    pub reclaimed_bytes: u64,
}

/// A background retention thread; dropping it stops the thread.
pub struct RetentionTask {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SqliteStore {
    /// Open the store in `dir` (created if missing), creating or migrating the
    /// database. Refuses a file that is corrupt, belongs to another program, or has
    /// a newer schema than this build.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_owned(),
            detail: e.to_string(),
        })?;
        let path = dir.join(schema::DB_FILE);
        let conn = schema::open_writer(&path, config.check_on_open)?;
        let event_seq = schema::last_event_seq(&conn).map_err(|e| StoreError::Open {
            path: path.clone(),
            detail: format!("cannot read the event counter: {e}"),
        })?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let writer = Writer::new(
            conn,
            rx,
            shared.clone(),
            WriterSettings {
                path: path.clone(),
                dedup_window_ms: config.dedup_window.as_millis() as u64,
                max_ops_per_commit: config.max_ops_per_commit.max(1),
                probe_interval: config.probe_interval,
                probe_bytes: config.probe_bytes,
                fault_injector: config.fault_injector.clone(),
                clock: config.clock.clone(),
                nice: config.writer_nice,
            },
            event_seq,
        );
        let thread = std::thread::Builder::new()
            .name("hie-store-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        tracing::info!(path = %path.display(), "store opened");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                reads: ReadPool::new(path.clone(), config.read_connections),
                headroom: config.probe_bytes,
                path,
                requests: Some(tx),
                writer: Some(thread),
                shared,
                clock: config.clock,
            }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Block until every write submitted before this call has committed or failed
    /// (detached writes included); for an orderly shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (done, answer) = pending();
        self.request(Request::Flush(done))?;
        answer.wait()
    }

    /// Bytes the store takes on disk (database file plus WAL).
    pub fn disk_usage(&self) -> u64 {
        disk_usage(&self.inner.path)
    }

    /// Writer counters.
    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        StoreStats {
            transactions: s.transactions.load(Ordering::SeqCst),
            batches: s.batches.load(Ordering::SeqCst),
            failed_transactions: s.failed_transactions.load(Ordering::SeqCst),
            faulted: s.faulted.load(Ordering::SeqCst),
        }
    }

    /// Number of messages stored.
    pub fn count_messages(&self) -> Result<u64, StoreError> {
        self.inner.reads.count_messages()
    }

    /// SQLite's plan for `query`, one line per step (e.g. `SEARCH m USING INDEX …`),
    /// to check that a search is indexed.
    pub fn explain_search(&self, query: &SearchQuery) -> Result<Vec<String>, StoreError> {
        self.inner.reads.explain_search(query)
    }

    /// Purge what `policy` allows, then give the space back to the file system.
    pub fn run_retention(&self, policy: &RetentionPolicy) -> Result<RetentionReport, StoreError> {
        let cutoff = self
            .inner
            .clock
            .now_ms()
            .saturating_sub(policy.keep_for.as_millis() as u64);
        let purged = self.purge(cutoff, &policy.statuses)?;
        let reclaimed_bytes = self.reclaim_space()?;
        if purged > 0 {
            tracing::info!(purged, reclaimed_bytes, "store retention purged messages");
        }
        Ok(RetentionReport {
            purged,
            reclaimed_bytes,
        })
    }

    /// Run [`SqliteStore::run_retention`] every `every` on a background thread until
    /// the returned task (or the last store handle) is dropped.
    pub fn spawn_retention(
        &self,
        policy: RetentionPolicy,
        every: Duration,
    ) -> Result<RetentionTask, StoreError> {
        let store: Weak<Inner> = Arc::downgrade(&self.inner);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("hie-store-retention".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let Some(inner) = store.upgrade() else { break };
                    if let Err(e) = (SqliteStore { inner }).run_retention(&policy) {
                        tracing::warn!(error = %e, "store retention failed, will try again");
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                path: self.inner.path.clone(),
                detail: format!("cannot start the retention thread: {e}"),
            })?;
        Ok(RetentionTask {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn request(&self, request: Request) -> Result<(), StoreError> {
        let sender = self.inner.requests.as_ref().ok_or(StoreError::Closed)?;
        // a failed send drops the request and with it the completer, which answers Closed
        sender.send(request).map_err(|_| StoreError::Closed)
    }
}

impl MessageStore for SqliteStore {
    fn submit(&self, batch: WriteBatch) -> Pending<BatchOutcome> {
        if batch.is_empty() {
            return Pending::ready(Err(StoreError::Invalid(
                "an empty batch has nothing to commit".to_owned(),
            )));
        }
        let (done, answer) = pending();
        let _ = self.request(Request::Batch(batch, done));
        answer
    }

    fn is_writable(&self) -> bool {
        let writer_alive = self.inner.writer.as_ref().is_some_and(|w| !w.is_finished());
        if !writer_alive {
            return false;
        }
        if !self.inner.shared.faulted.load(Ordering::SeqCst) {
            // an idle store on a full disk has not failed a write yet: ask the file system
            return free_bytes(&self.inner.path).is_none_or(|free| free >= self.inner.headroom);
        }
        let (done, answer) = pending();
        self.request(Request::Probe(done)).is_ok() && answer.wait().unwrap_or(false)
    }

    fn recover(&self) -> Result<Vec<Recovered>, StoreError> {
        self.inner.reads.recover()
    }

    fn get(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.inner.reads.get(id)
    }

    fn trace(&self, key: TraceKey) -> Result<Vec<TraceEvent>, StoreError> {
        self.inner.reads.trace(key)
    }

    fn search(&self, query: &SearchQuery) -> Result<Vec<MessageSummary>, StoreError> {
        self.inner.reads.search(query)
    }

    fn dead_letters(&self, item: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.reads.dead_letters(item, limit)
    }

    fn purge(&self, older_than_ms: u64, statuses: &[Status]) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let batch = WriteBatch::purge(older_than_ms, statuses.to_vec(), PURGE_CHUNK);
            let purged = match self.write(batch)?.applied.first() {
                Some(Applied::Purged { messages }) => *messages,
                _ => 0,
            };
            total += purged;
            if purged < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    fn reclaim_space(&self) -> Result<u64, StoreError> {
        let (done, answer) = pending();
        self.request(Request::Reclaim(done))?;
        answer.wait()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // closing the channel lets the writer commit what is pending and stop
        drop(self.requests.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "store writer thread panicked");
        }
    }
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Bytes of the database file plus its WAL.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}

/// Bytes an unprivileged writer may still use on the file system holding `path`
/// (`None` when the file system cannot say).
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().unwrap_or(path);
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
}
