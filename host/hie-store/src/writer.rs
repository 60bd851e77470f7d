//! The single writer thread: drains every pending batch into one transaction
//! (group commit), commits with one fsync, then answers all callers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use hie_core::{Envelope, MessageId};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::batch::{Op, StoreKind};
use crate::completion::Completer;
use crate::rows::{insert_message, load_message, message_seq};
use crate::{
    Applied, BatchOutcome, Clock, Commit, FaultInjector, Indexed, Status, StoreError, WriteBatch, schema,
};

/// What the writer thread is asked to do.
pub(crate) enum Request {
    /// Apply and commit a batch.
    Batch(WriteBatch, Completer<BatchOutcome>),
    /// Answer whether a write would succeed now (probing if faulted).
    Probe(Completer<bool>),
    /// Give free pages back to the file system; answers the bytes freed.
    Reclaim(Completer<u64>),
    /// Answer once every batch submitted before this request was committed (or failed).
    Flush(Completer<()>),
}

/// State the writer shares with the store handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) faulted: AtomicBool,
    pub(crate) transactions: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_transactions: AtomicU64,
}

pub(crate) struct WriterSettings {
    pub(crate) path: PathBuf,
    pub(crate) dedup_window_ms: u64,
    pub(crate) max_ops_per_commit: usize,
    pub(crate) probe_interval: Duration,
    pub(crate) probe_bytes: u64,
    pub(crate) fault_injector: Option<FaultInjector>,
    pub(crate) clock: Clock,
    /// See [`crate::StoreConfig::writer_nice`].
    pub(crate) nice: i32,
}

pub(crate) struct Writer {
    conn: Connection,
    rx: Receiver<Request>,
    shared: Arc<Shared>,
    settings: WriterSettings,
    last_probe: Option<Instant>,
    /// Rows of messages this writer stored or looked up lately, so the marks of a
    /// message's hops skip the index lookup. Only holds committed or current-transaction
    /// rows: cleared whenever anything is rolled back or purged.
    seqs: RefCell<HashMap<MessageId, CachedRow>>,
    /// Last event `seq` handed out. Never goes back, so a rolled-back transaction
    /// leaves a gap rather than a reused number; `counters` holds the committed one.
    event_seq: Cell<i64>,
    /// Ids of the current batch known not to be stored ([`Writer::needs_savepoint`]
    /// looked them up); each is taken out by the batch's own lookup of it.
    absent: RefCell<Vec<MessageId>>,
    /// Events of the current group not written yet (see [`EVENT_ROWS`]).
    events: RefCell<Vec<EventRow>>,
    /// In-flight states of the current group not written yet: a later state of the
    /// same message at the same item in the group replaces one (its event is kept),
    /// and the rest are written at the end of the group. Most hops are marked in
    /// flight and done within one group commit, so this spares most in-flight
    /// updates of `queue` without changing what a commit leaves.
    in_flight: RefCell<HashMap<i64, Vec<PendingInFlight>>>,
    /// [`events_sql`] for each of [`EVENT_ROWS`].
    events_sql: [String; 3],
}

// The statements every hop runs. A change here is checked by the tests below: none
// may build an ephemeral table (as `IN (..)` in a partial index's condition did).

/// Put a message on an item's queue; changes nothing if it is there already.
const QUEUE_ENTER: &str = "INSERT INTO queue (message_seq, item, status, attempt, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (message_seq, item) DO NOTHING";
/// Set the state of a message at an item.
const QUEUE_SET: &str = "UPDATE queue SET status = ?3, attempt = ?4, updated_at_ms = ?5 \
     WHERE message_seq = ?1 AND item = ?2";
/// A state at an item where the message never queued.
const QUEUE_ADD: &str = "INSERT INTO queue (message_seq, item, status, attempt, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
/// Events are written at the end of a group, this many rows per statement (then
/// the rest in smaller statements): one statement per event was a tenth of the writer.
const EVENT_ROWS: [usize; 3] = [32, 8, 1];

/// `INSERT INTO events` of `rows` rows.
fn events_sql(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO events (message_seq, seq, item, status, at_ms, attempt, plugin_version, error) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// An event waiting to be written with the rest of its group.
struct EventRow {
    message_seq: i64,
    seq: i64,
    item: String,
    status: i64,
    at_ms: i64,
    attempt: u32,
    plugin_version: Option<String>,
    error: Option<String>,
}
/// The inbound messages (no parent) with a control id (`?1`), sending application
/// and facility (`?3`, `?4`; each case of an absent one has its own text) stored
/// since `?2`, with their cached ACK.
const NEWEST_INBOUND: [&str; 4] = [
    "SELECT seq, id, ack FROM messages WHERE control_id = ?1 AND sending_app = ?3 \
     AND sending_facility = ?4 AND stored_at_ms >= ?2 AND parent_id IS NULL",
    "SELECT seq, id, ack FROM messages WHERE control_id = ?1 AND sending_app = ?3 \
     AND sending_facility IS NULL AND stored_at_ms >= ?2 AND parent_id IS NULL",
    "SELECT seq, id, ack FROM messages WHERE control_id = ?1 AND sending_app IS NULL \
     AND sending_facility = ?3 AND stored_at_ms >= ?2 AND parent_id IS NULL",
    "SELECT seq, id, ack FROM messages WHERE control_id = ?1 AND sending_app IS NULL \
     AND sending_facility IS NULL AND stored_at_ms >= ?2 AND parent_id IS NULL",
];

/// The last event `seq` of the transaction.
const COUNTER_SET: &str = "UPDATE counters SET value = ?2 WHERE name = ?1";

/// An in-flight state of a message (the map's key) at `item` not written yet.
#[derive(Debug, Clone)]
struct PendingInFlight {
    item: String,
    attempt: u32,
    at_ms: u64,
}

/// A message row the writer knows.
#[derive(Debug, Clone, Copy)]
struct CachedRow {
    seq: i64,
    /// The row that holds its body (its own `seq`, or the one it shares), when known:
    /// for rows this writer inserted.
    holder: Option<i64>,
}

/// Ask for nice level `nice` for the calling thread (the writer's). Measured on 2
/// cores shared with the sinks and the sender: at 0 the writer waited for a CPU
/// about a fifth of the time while it had work, and -10 raised the persisted rate
/// of adt-demo by about a sixth (release builds, A/B × 3).
fn raise_priority(nice: i32) {
    if nice >= 0 {
        return;
    }
    // on Linux the "process" of setpriority(2) is a thread when given a thread id
    let tid = rustix::process::Pid::from_raw(nix::unistd::gettid().as_raw());
    match rustix::process::setpriority_process(tid, nice) {
        Ok(()) => tracing::debug!(nice, "store writer thread priority raised"),
        Err(e) => tracing::info!(
            nice,
            error = %std::io::Error::from(e),
            "the store writer thread runs at the process's priority; to give it a larger share of a busy \
             machine, allow nice level {nice} (systemd: LimitNICE={nice}, or CAP_SYS_NICE)"
        ),
    }
}

/// Most entries of [`Writer::seqs`]; it is emptied when full (a lookup refills it).
const MAX_CACHED_SEQS: usize = 100_000;

/// Why applying one operation failed.
enum OpError {
    /// The request is wrong (unknown id, wrong state): only its batch is rolled back.
    Request(StoreError),
    /// The database failed: the whole transaction is lost.
    Storage(rusqlite::Error),
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Storage(e)
    }
}

type BatchResult = Result<Vec<Applied>, StoreError>;

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        rx: Receiver<Request>,
        shared: Arc<Shared>,
        settings: WriterSettings,
        event_seq: i64,
    ) -> Self {
        // every statement the writer runs stays prepared (the default keeps 16)
        conn.set_prepared_statement_cache_capacity(64);
        Writer {
            conn,
            rx,
            shared,
            settings,
            last_probe: None,
            seqs: RefCell::new(HashMap::new()),
            event_seq: Cell::new(event_seq),
            absent: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
            in_flight: RefCell::new(HashMap::new()),
            events_sql: EVENT_ROWS.map(events_sql),
        }
    }

    /// Serve requests until every sender is gone; pending batches are committed first.
    pub(crate) fn run(mut self) {
        raise_priority(self.settings.nice);
        while let Ok(first) = self.rx.recv() {
            let mut group = Vec::new();
            let mut reclaims = Vec::new();
            let mut flushes = Vec::new();
            let mut ops = 0;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Batch(batch, done) => {
                        ops += batch.len();
                        group.push((batch, done));
                    }
                    Request::Probe(done) => done.complete(Ok(self.probe_now())),
                    Request::Reclaim(done) => reclaims.push(done),
                    Request::Flush(done) => flushes.push(done),
                }
                if ops < self.settings.max_ops_per_commit {
                    next = self.rx.try_recv().ok();
                }
            }
            self.commit_group(group);
            for done in reclaims {
                done.complete(self.reclaim());
            }
            for done in flushes {
                done.complete(Ok(()));
            }
        }
    }

    fn commit_group(&mut self, group: Vec<(WriteBatch, Completer<BatchOutcome>)>) {
        if group.is_empty() {
            return;
        }
        if self.shared.faulted.load(Ordering::SeqCst) && !self.probe_if_due() {
            let reason = "an earlier write failed and the probe write still fails".to_owned();
            for (_, done) in group {
                done.complete(Err(StoreError::Unavailable {
                    reason: reason.clone(),
                }));
            }
            return;
        }
        let (batches, completers): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match self.apply_group(&batches) {
            Ok(results) => {
                let transaction = self.shared.transactions.fetch_add(1, Ordering::SeqCst) + 1;
                self.shared
                    .batches
                    .fetch_add(batches.len() as u64, Ordering::Relaxed);
                let commit = Commit {
                    transaction,
                    committed_at_ms: self.settings.clock.now_ms(),
                };
                for (done, result) in completers.into_iter().zip(results) {
                    done.complete(result.map(|applied| BatchOutcome { commit, applied }));
                }
            }
            Err(e) => {
                self.rollback();
                self.enter_fault(&e, batches.len());
                let reason = e.to_string();
                for done in completers {
                    done.complete(Err(StoreError::Unavailable {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// One transaction for the whole group; a batch whose request is wrong is rolled
    /// back to its savepoint and answered alone.
    fn apply_group(&mut self, batches: &[WriteBatch]) -> rusqlite::Result<Vec<BatchResult>> {
        let now = self.settings.clock.now_ms();
        let events_before = self.event_seq.get();
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut results = Vec::with_capacity(batches.len());
        for batch in batches {
            // An operation refused for its request has written nothing (see `apply`),
            // so only a batch of several can need a savepoint to undo the ones before
            // it, and only if a later one can still be refused (`needs_savepoint`).
            let savepoint = self.needs_savepoint(batch)?;
            let in_flight_before = if savepoint {
                self.conn.prepare_cached("SAVEPOINT batch")?.execute([])?;
                Some(self.in_flight.borrow().clone())
            } else {
                None
            };
            let events_at = self.events.borrow().len();
            let applied = self.apply_batch(batch, now);
            self.absent.borrow_mut().clear();
            if matches!(applied, Err(OpError::Request(_))) {
                self.events.borrow_mut().truncate(events_at);
            }
            match applied {
                Ok(applied) => {
                    if savepoint {
                        self.conn.prepare_cached("RELEASE batch")?.execute([])?;
                    }
                    results.push(Ok(applied));
                }
                Err(OpError::Request(e)) => {
                    if let Some(before) = in_flight_before {
                        *self.in_flight.borrow_mut() = before;
                    }
                    if savepoint {
                        self.forget_seqs();
                        self.conn.prepare_cached("ROLLBACK TO batch")?.execute([])?;
                        self.conn.prepare_cached("RELEASE batch")?.execute([])?;
                    }
                    results.push(Err(e));
                }
                Err(OpError::Storage(e)) => return Err(e),
            }
        }
        self.write_in_flight()?;
        self.write_events()?;
        if self.event_seq.get() != events_before {
            self.conn
                .prepare_cached(COUNTER_SET)?
                .execute(params![schema::EVENT_SEQ, self.event_seq.get()])?;
        }
        self.check_injected_fault()?;
        self.conn.execute_batch("COMMIT")?;
        Ok(results)
    }

    fn check_injected_fault(&self) -> rusqlite::Result<()> {
        match &self.settings.fault_injector {
            Some(f) if f.should_fail() => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
                Some("injected commit failure".to_owned()),
            )),
            _ => Ok(()),
        }
    }

    /// Whether an operation of `batch` could be refused after an earlier one of it
    /// wrote, so that the batch needs a savepoint to undo those writes. A hop's outcome
    /// (new messages, then the mark of one stored earlier) cannot be; it is the common
    /// multi-operation batch, and a savepoint copies every page the batch touches.
    /// The new ids it looked up are remembered as absent for the batch's own lookups.
    fn needs_savepoint(&self, batch: &WriteBatch) -> rusqlite::Result<bool> {
        if batch.ops.len() <= 1 {
            return Ok(false);
        }
        let mut new = Vec::new();
        let mut needed = false;
        for op in &batch.ops {
            match op {
                Op::Store {
                    msg,
                    kind: StoreKind::Enqueue | StoreKind::Ingest,
                    ..
                } if !new.contains(&msg.id) && self.lookup_seq(msg.id)?.is_none() => new.push(msg.id),
                Op::Mark { id, .. } if new.contains(id) || self.lookup_seq(*id)?.is_some() => {}
                _ => {
                    needed = true;
                    break;
                }
            }
        }
        *self.absent.borrow_mut() = if needed { Vec::new() } else { new };
        Ok(needed)
    }

    /// Apply a batch's operations in order. A de-duplicated ingest that finds an earlier
    /// copy ends the batch there: what follows it (routing the new copy) must not happen.
    fn apply_batch(&self, batch: &WriteBatch, now: u64) -> Result<Vec<Applied>, OpError> {
        let mut applied = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let done = self.apply(op, now)?;
            let duplicate = matches!(done, Applied::Duplicate { .. });
            applied.push(done);
            if duplicate {
                break;
            }
        }
        Ok(applied)
    }

    /// Apply one operation. Invariant: an operation that fails with
    /// [`OpError::Request`] does so before it writes anything (its checks come
    /// first), which lets a one-operation batch go without a savepoint.
    fn apply(&self, op: &Op, now: u64) -> Result<Applied, OpError> {
        match op {
            Op::Store {
                msg,
                idx,
                item,
                kind,
                body_of,
            } => self.store(msg, idx, item, kind, *body_of, now),
            Op::Mark {
                id,
                item,
                status,
                attempt,
                plugin_version,
                error,
            } => {
                let seq = self.seq_of(*id)?;
                if *status == Status::InFlight {
                    let mut pending = self.in_flight.borrow_mut();
                    let states = pending.entry(seq).or_default();
                    states.retain(|p| p.item != *item);
                    states.push(PendingInFlight {
                        item: item.clone(),
                        attempt: *attempt,
                        at_ms: now,
                    });
                } else {
                    self.set_state(seq, item, *status, *attempt, now)?;
                }
                self.event(
                    seq,
                    item,
                    *status,
                    *attempt,
                    plugin_version.as_deref(),
                    error.as_deref(),
                    now,
                )?;
                Ok(Applied::Marked)
            }
            Op::RecordAck { key, ack } => {
                self.record_ack(key, ack, now)?;
                Ok(Applied::AckRecorded)
            }
            Op::Resend { id, to_item } => self.resend(*id, to_item, now),
            Op::DeadLetter {
                msg,
                idx,
                item,
                error,
            } => {
                let seq = match self.lookup_seq(msg.id)? {
                    Some(seq) => seq,
                    None => self.insert(msg, idx, now, None, None)?,
                };
                let status = Status::DeadLettered;
                self.set_state(seq, item, status, msg.attempt, now)?;
                self.event(seq, item, status, msg.attempt, None, Some(error), now)?;
                Ok(Applied::DeadLettered)
            }
            Op::Requeue { id, item } => {
                let seq = self.seq_of(*id)?;
                let attempt = self.expect_state(*id, seq, item, Status::DeadLettered)? + 1;
                self.set_state(seq, item, Status::Queued, attempt, now)?;
                self.event(
                    seq,
                    item,
                    Status::Queued,
                    attempt,
                    None,
                    Some("requeued from dead letters"),
                    now,
                )?;
                Ok(Applied::Requeued)
            }
            Op::Discard { id, item } => {
                let seq = self.seq_of(*id)?;
                let attempt = self.expect_state(*id, seq, item, Status::DeadLettered)?;
                self.set_state(seq, item, Status::Discarded, attempt, now)?;
                self.event(seq, item, Status::Discarded, attempt, None, None, now)?;
                Ok(Applied::Discarded)
            }
            Op::Purge {
                cutoff_ms,
                statuses,
                limit,
            } => {
                // purge reads states and deletes events: those of this group go in first
                self.write_in_flight()?;
                self.write_events()?;
                self.purge(*cutoff_ms, statuses, *limit, now)
            }
        }
    }

    fn store(
        &self,
        msg: &Envelope,
        idx: &Indexed,
        item: &str,
        kind: &StoreKind,
        body_of: Option<MessageId>,
        now: u64,
    ) -> Result<Applied, OpError> {
        if let StoreKind::IngestDedup { .. } = kind
            && let Some(dup) = self.find_duplicate(idx, now)?
        {
            return Ok(dup);
        }
        // a new inbound message's id is new: the insert itself (the id is UNIQUE)
        // refuses one stored already, without a lookup first
        let known = match kind {
            StoreKind::Enqueue => self.lookup_seq(msg.id)?,
            StoreKind::Ingest | StoreKind::IngestDedup { .. } => {
                self.seqs.borrow().get(&msg.id).map(|r| r.seq)
            }
        };
        let seq = match (known, kind) {
            (Some(seq), StoreKind::Enqueue) => seq,
            (Some(_), _) => return Err(OpError::Request(StoreError::AlreadyStored { id: msg.id })),
            (None, _) => {
                let holder = match body_of {
                    Some(id) => self.body_holder(id)?,
                    None => None,
                };
                // the ACK is cached in the row, for re-sends of an upstream message
                let ack = match kind {
                    StoreKind::IngestDedup { ack: Some(ack) } if idx.ack_key().is_some() => Some(&ack[..]),
                    _ => None,
                };
                match self.insert(msg, idx, now, holder, ack) {
                    Ok(seq) => seq,
                    // the failed statement wrote nothing
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                    {
                        return Err(OpError::Request(StoreError::AlreadyStored { id: msg.id }));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let inserted = self.conn.prepare_cached(QUEUE_ENTER)?.execute(params![
            seq,
            item,
            Status::Queued.code(),
            msg.attempt,
            now as i64
        ])?;
        if inserted == 0 {
            return Err(OpError::Request(StoreError::WrongState {
                id: msg.id,
                item: item.to_owned(),
                expected: "absent".to_owned(),
                found: "queued already".to_owned(),
            }));
        }
        self.event(seq, item, Status::Queued, msg.attempt, None, None, now)?;
        Ok(Applied::Stored)
    }

    /// An earlier copy of this upstream message within the window: the newest
    /// inbound row with its key and the ACK cached in it (none yet: its route has
    /// not answered), or else an ACK kept in `acks` (its message was purged, or
    /// the ACK came from a store older than schema 4).
    fn find_duplicate(&self, idx: &Indexed, now: u64) -> rusqlite::Result<Option<Applied>> {
        let Some(key) = idx.ack_key() else {
            return Ok(None);
        };
        let since = now.saturating_sub(self.settings.dedup_window_ms) as i64;
        let found = self.newest_inbound(
            &key.control_id,
            idx.sending_app.as_deref(),
            idx.sending_facility.as_deref(),
            since,
        )?;
        if let Some((_, id, Some(ack))) = found {
            return Ok(Some(Applied::Duplicate {
                original: Uuid::from_bytes(id),
                ack: Some(Bytes::from(ack)),
            }));
        }
        let kept: Option<(Vec<u8>, Option<[u8; 16]>)> = self
            .conn
            .prepare_cached(
                "SELECT ack, message_id FROM acks \
                 WHERE sending_app = ?1 AND sending_facility = ?2 AND control_id = ?3 AND at_ms >= ?4",
            )?
            .query_row(
                params![key.sending_app, key.sending_facility, key.control_id, since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match (found, kept) {
            (Some((_, id, _)), kept) => Some(Applied::Duplicate {
                original: Uuid::from_bytes(id),
                ack: kept.map(|(ack, _)| Bytes::from(ack)),
            }),
            (None, Some((ack, id))) => Some(Applied::Duplicate {
                original: id.map(Uuid::from_bytes).unwrap_or_default(),
                ack: Some(Bytes::from(ack)),
            }),
            (None, None) => None,
        })
    }

    /// The newest inbound message (no parent) with this key stored since `since`:
    /// its `seq`, id and cached ACK.
    #[allow(clippy::type_complexity)] // the three columns of one row
    fn newest_inbound(
        &self,
        control_id: &str,
        app: Option<&str>,
        facility: Option<&str>,
        since: i64,
    ) -> rusqlite::Result<Option<(i64, [u8; 16], Option<Vec<u8>>)>> {
        // `col IS ?`, and `ORDER BY .. LIMIT` here, would make SQLite re-prepare the
        // statement on every bind (its plan would depend on the values), so each
        // NULL case has its own text and the newest copy is picked below
        let (sql, values): (&str, Vec<&dyn rusqlite::ToSql>) = match (&app, &facility) {
            (Some(app), Some(facility)) => (NEWEST_INBOUND[0], vec![&control_id, &since, app, facility]),
            (Some(app), None) => (NEWEST_INBOUND[1], vec![&control_id, &since, app]),
            (None, Some(facility)) => (NEWEST_INBOUND[2], vec![&control_id, &since, facility]),
            (None, None) => (NEWEST_INBOUND[3], vec![&control_id, &since]),
        };
        let mut newest: Option<(i64, [u8; 16], Option<Vec<u8>>)> = None;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(values.as_slice())?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if newest.as_ref().is_none_or(|(s, _, _)| seq > *s) {
                newest = Some((seq, row.get(1)?, row.get(2)?));
            }
        }
        Ok(newest)
    }

    /// Cache the ACK an inbound message got once its route answered (application
    /// mode) in the message's row; in `acks` if its row is not found.
    fn record_ack(&self, key: &crate::AckKey, ack: &Bytes, now: u64) -> rusqlite::Result<()> {
        let since = now.saturating_sub(self.settings.dedup_window_ms) as i64;
        // an absent MSH-3 or MSH-4 is empty in the key and NULL in the row
        let present = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (app, facility) = (present(&key.sending_app), present(&key.sending_facility));
        match self.newest_inbound(&key.control_id, app.as_deref(), facility.as_deref(), since)? {
            Some((seq, _, _)) => {
                self.conn
                    .prepare_cached("UPDATE messages SET ack = ?2 WHERE seq = ?1")?
                    .execute(params![seq, &ack[..]])?;
                Ok(())
            }
            None => self.put_ack(key, ack, now),
        }
    }

    /// Keep `ack` in `acks`, for a message whose row is not found.
    fn put_ack(&self, key: &crate::AckKey, ack: &Bytes, now: u64) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO acks (sending_app, sending_facility, control_id, ack, message_id, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (sending_app, sending_facility, control_id) DO UPDATE SET \
                 ack = excluded.ack, at_ms = excluded.at_ms",
            )?
            .execute(params![
                key.sending_app,
                key.sending_facility,
                key.control_id,
                &ack[..],
                Option::<&[u8]>::None,
                now as i64
            ])?;
        Ok(())
    }

    fn resend(&self, id: MessageId, to_item: &str, now: u64) -> Result<Applied, OpError> {
        let (original, idx) = match load_message(&self.conn, id) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(OpError::Request(StoreError::NotFound { id })),
            Err(e) => return Err(OpError::Request(e)),
        };
        let copy = Envelope {
            id: Uuid::now_v7(),
            parent_id: Some(original.id),
            target: to_item.to_owned(),
            created_at_ms: now,
            attempt: 1,
            ..original
        };
        self.store(&copy, &idx, to_item, &StoreKind::Enqueue, None, now)?;
        Ok(Applied::Resent { id: copy.id })
    }

    fn seq_of(&self, id: MessageId) -> Result<i64, OpError> {
        self.lookup_seq(id)?
            .ok_or(OpError::Request(StoreError::NotFound { id }))
    }

    /// `seq` of message `id` if it is stored: from the cache, else from the index.
    fn lookup_seq(&self, id: MessageId) -> rusqlite::Result<Option<i64>> {
        if let Some(row) = self.seqs.borrow().get(&id) {
            return Ok(Some(row.seq));
        }
        {
            let mut absent = self.absent.borrow_mut();
            if let Some(at) = absent.iter().position(|a| *a == id) {
                absent.swap_remove(at);
                return Ok(None);
            }
        }
        let found = message_seq(&self.conn, id)?;
        if let Some(seq) = found {
            self.remember(id, CachedRow { seq, holder: None });
        }
        Ok(found)
    }

    /// The `seq` of the row that holds the body of stored message `id`: its own, or
    /// the one it shares (so a copy of a copy refers to the row with the bytes).
    fn body_holder(&self, id: MessageId) -> rusqlite::Result<Option<i64>> {
        if let Some(CachedRow {
            holder: Some(holder), ..
        }) = self.seqs.borrow().get(&id)
        {
            return Ok(Some(*holder));
        }
        let Some(seq) = self.lookup_seq(id)? else {
            return Ok(None);
        };
        // a row the cache names is there (the cache is cleared on rollback and purge);
        // were it not, the copy keeps its own body rather than failing the commit
        let shared: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT body_of FROM messages WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?;
        Ok(shared.map(|of| of.unwrap_or(seq)))
    }

    /// Insert a message row; with `body_of`, one that refers to that row's body.
    fn insert(
        &self,
        msg: &Envelope,
        idx: &Indexed,
        now: u64,
        body_of: Option<i64>,
        ack: Option<&[u8]>,
    ) -> rusqlite::Result<i64> {
        let seq = insert_message(&self.conn, msg, idx, now, body_of, ack)?;
        let holder = Some(body_of.unwrap_or(seq));
        self.remember(msg.id, CachedRow { seq, holder });
        Ok(seq)
    }

    fn remember(&self, id: MessageId, row: CachedRow) {
        let mut seqs = self.seqs.borrow_mut();
        if seqs.len() >= MAX_CACHED_SEQS {
            seqs.clear();
        }
        seqs.insert(id, row);
    }

    /// After a rollback or a purge the cache may name rows that are gone.
    fn forget_seqs(&self) {
        self.seqs.borrow_mut().clear();
    }

    /// The attempt of the queue entry, if it is in state `expected`.
    fn expect_state(&self, id: MessageId, seq: i64, item: &str, expected: Status) -> Result<u32, OpError> {
        let found: Option<(i64, u32)> = self
            .conn
            .prepare_cached("SELECT status, attempt FROM queue WHERE message_seq = ?1 AND item = ?2")?
            .query_row(params![seq, item], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((code, attempt)) if code == expected.code() => Ok(attempt),
            other => Err(OpError::Request(StoreError::WrongState {
                id,
                item: item.to_owned(),
                expected: expected.to_string(),
                found: other
                    .and_then(|(code, _)| Status::from_code(code))
                    .map_or_else(|| "absent".to_owned(), |s| s.to_string()),
            })),
        }
    }

    fn set_state(
        &self,
        seq: i64,
        item: &str,
        status: Status,
        attempt: u32,
        now: u64,
    ) -> rusqlite::Result<()> {
        // a later state replaces an in-flight one not written yet
        if let Some(states) = self.in_flight.borrow_mut().get_mut(&seq) {
            states.retain(|p| p.item != item);
        }
        // the entry is almost always there already (a hop's mark): update it, and
        // insert only when it is not (a message dead-lettered where it never queued)
        let values = params![seq, item, status.code(), attempt, now as i64];
        let updated = self.conn.prepare_cached(QUEUE_SET)?.execute(values)?;
        if updated == 0 {
            self.conn.prepare_cached(QUEUE_ADD)?.execute(values)?;
        }
        Ok(())
    }

    /// Write the in-flight states of the group that no later state replaced.
    fn write_in_flight(&self) -> rusqlite::Result<()> {
        let pending = std::mem::take(&mut *self.in_flight.borrow_mut());
        for (seq, states) in pending {
            for p in states {
                self.set_state(seq, &p.item, Status::InFlight, p.attempt, p.at_ms)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    fn event(
        &self,
        seq: i64,
        item: &str,
        status: Status,
        attempt: u32,
        plugin_version: Option<&str>,
        error: Option<&str>,
        now: u64,
    ) -> rusqlite::Result<()> {
        let event = self.event_seq.get() + 1;
        self.event_seq.set(event);
        self.events.borrow_mut().push(EventRow {
            message_seq: seq,
            seq: event,
            item: item.to_owned(),
            status: status.code(),
            at_ms: now as i64,
            attempt,
            plugin_version: plugin_version.map(str::to_owned),
            error: error.map(str::to_owned),
        });
        Ok(())
    }

    /// Write the events buffered so far, many rows per statement.
    fn write_events(&self) -> rusqlite::Result<()> {
        let rows = std::mem::take(&mut *self.events.borrow_mut());
        let mut rest = &rows[..];
        for (size, sql) in EVENT_ROWS.iter().zip(&self.events_sql) {
            while rest.len() >= *size {
                let (chunk, more) = rest.split_at(*size);
                let mut stmt = self.conn.prepare_cached(sql)?;
                let mut at = 1;
                for e in chunk {
                    stmt.raw_bind_parameter(at, e.message_seq)?;
                    stmt.raw_bind_parameter(at + 1, e.seq)?;
                    stmt.raw_bind_parameter(at + 2, e.item.as_str())?;
                    stmt.raw_bind_parameter(at + 3, e.status)?;
                    stmt.raw_bind_parameter(at + 4, e.at_ms)?;
                    stmt.raw_bind_parameter(at + 5, e.attempt)?;
                    stmt.raw_bind_parameter(at + 6, e.plugin_version.as_deref())?;
                    stmt.raw_bind_parameter(at + 7, e.error.as_deref())?;
                    at += 8;
                }
                stmt.raw_execute()?;
                rest = more;
            }
        }
        Ok(())
    }

    /// Delete up to `limit` messages created before `cutoff_ms` whose every queue entry
    /// is in one of `statuses`, with their events; and ACKs older than the window.
    fn purge(&self, cutoff_ms: u64, statuses: &[Status], limit: usize, now: u64) -> Result<Applied, OpError> {
        if let Some(open) = statuses.iter().find(|s| s.is_open()) {
            return Err(OpError::Request(StoreError::Invalid(format!(
                "purging {open} messages would lose work; purge only done, dead-lettered or discarded ones"
            ))));
        }
        let keep: Vec<String> = Status::ALL
            .iter()
            .filter(|s| !statuses.contains(s))
            .map(|s| s.code().to_string())
            .collect();
        // codes come from the enum, never from input, so formatting them in is safe
        let select = format!(
            "INSERT INTO temp.purge_set SELECT m.seq FROM messages m WHERE m.created_at_ms < ?1 \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_seq = m.seq AND q.status IN ({})) \
             ORDER BY m.created_at_ms LIMIT ?2",
            keep.join(", ")
        );
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS purge_set (seq INTEGER PRIMARY KEY); DELETE FROM temp.purge_set;",
        )?;
        self.conn
            .prepare_cached(&select)?
            .execute(params![cutoff_ms as i64, limit as i64])?;
        // a copy that stays keeps the body it shared with a message that goes; copies
        // share their parent's session, whose index finds them
        self.conn.execute_batch(
            "UPDATE messages SET body = (SELECT b.body FROM messages b WHERE b.seq = messages.body_of), body_of = NULL \
             WHERE session_id IN (SELECT p.session_id FROM messages p WHERE p.seq IN (SELECT seq FROM temp.purge_set)) \
             AND body_of IN (SELECT seq FROM temp.purge_set) AND seq NOT IN (SELECT seq FROM temp.purge_set);",
        )?;
        // a re-send of a purged message within the window still gets its ACK
        let ack_cutoff = now.saturating_sub(self.settings.dedup_window_ms) as i64;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO acks (sending_app, sending_facility, control_id, ack, message_id, at_ms) \
                 SELECT coalesce(sending_app, ''), coalesce(sending_facility, ''), control_id, ack, id, stored_at_ms \
                 FROM messages WHERE seq IN (SELECT seq FROM temp.purge_set) \
                 AND ack IS NOT NULL AND control_id IS NOT NULL AND parent_id IS NULL AND stored_at_ms >= ?1",
            )?
            .execute([ack_cutoff])?;
        self.conn.execute_batch(
            "DELETE FROM events WHERE message_seq IN (SELECT seq FROM temp.purge_set);
             DELETE FROM queue WHERE message_seq IN (SELECT seq FROM temp.purge_set);",
        )?;
        let messages = self.conn.execute(
            "DELETE FROM messages WHERE seq IN (SELECT seq FROM temp.purge_set)",
            [],
        )?;
        self.forget_seqs();
        self.conn
            .prepare_cached("DELETE FROM acks WHERE at_ms < ?1")?
            .execute([ack_cutoff])?;
        Ok(Applied::Purged {
            messages: messages as u64,
        })
    }

    /// Free pages go back to the file system: incremental vacuum moves them to the
    /// end and truncates, the checkpoint writes that to the main file and empties the WAL.
    fn reclaim(&mut self) -> Result<u64, StoreError> {
        let before = crate::sqlite::disk_usage(&self.settings.path);
        let run = |conn: &Connection| -> rusqlite::Result<()> {
            // each step frees some pages, so step the pragma to its end
            let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        };
        if let Err(e) = run(&self.conn) {
            self.rollback();
            self.enter_fault(&e, 0);
            return Err(StoreError::Unavailable {
                reason: e.to_string(),
            });
        }
        Ok(before.saturating_sub(crate::sqlite::disk_usage(&self.settings.path)))
    }

    fn rollback(&self) {
        self.forget_seqs();
        self.events.borrow_mut().clear();
        self.in_flight.borrow_mut().clear();
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "store rollback after a failed write failed");
        }
    }

    fn enter_fault(&mut self, e: &rusqlite::Error, batches: usize) {
        self.shared.failed_transactions.fetch_add(1, Ordering::SeqCst);
        let was = self.shared.faulted.swap(true, Ordering::SeqCst);
        self.last_probe = Some(Instant::now());
        tracing::error!(
            error = %e,
            batches,
            path = %self.settings.path.display(),
            already_faulted = was,
            "store write failed, intake is refused until a probe write succeeds"
        );
    }

    fn probe_if_due(&mut self) -> bool {
        let due = self
            .last_probe
            .is_none_or(|at| at.elapsed() >= self.settings.probe_interval);
        due && self.probe_now()
    }

    /// Whether a write commits now. While faulted, the connection is reopened first:
    /// after a failed fsync nothing it cached can be trusted.
    fn probe_now(&mut self) -> bool {
        if !self.shared.faulted.load(Ordering::SeqCst) {
            return true;
        }
        self.last_probe = Some(Instant::now());
        match self.reopened_probe() {
            Ok(()) => {
                self.shared.faulted.store(false, Ordering::SeqCst);
                tracing::info!(path = %self.settings.path.display(), "store probe write succeeded, intake resumes");
                true
            }
            Err(e) => {
                self.rollback();
                tracing::warn!(error = %e, "store probe write failed, intake stays refused");
                false
            }
        }
    }

    fn reopened_probe(&mut self) -> Result<(), StoreError> {
        let conn = schema::open_writer(&self.settings.path, false)?;
        let committed = schema::last_event_seq(&conn)?;
        self.event_seq.set(self.event_seq.get().max(committed));
        self.conn = conn;
        self.forget_seqs();
        let now = self.settings.clock.now_ms() as i64;
        let write = || -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            // the padding asks for headroom, so intake does not resume on the last free page
            self.conn.execute(
                "INSERT OR REPLACE INTO probe (id, at_ms, pad) VALUES (1, ?1, zeroblob(?2))",
                [now, self.settings.probe_bytes as i64],
            )?;
            self.check_injected_fault()?;
            self.conn.execute_batch("COMMIT")
        };
        write().map_err(|e| StoreError::Unavailable {
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hop_statement_builds_an_ephemeral_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open_writer(&dir.path().join(schema::DB_FILE), true).unwrap();
        let events = EVENT_ROWS.map(events_sql);
        for sql in [QUEUE_ENTER, QUEUE_SET, QUEUE_ADD, COUNTER_SET]
            .into_iter()
            .chain(events.iter().map(String::as_str))
        {
            let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let count = stmt.parameter_count();
            let values = vec![rusqlite::types::Value::Null; count];
            let ops: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(ops.len() > 3, "{sql}: {ops:?}");
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql} builds an ephemeral table: {ops:?}"
            );
        }
    }

    #[test]
    fn recovery_and_dead_letters_read_their_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open_writer(&dir.path().join(schema::DB_FILE), true).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let values = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
            let rows: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.join("; ")
        };
        let recover = plan(&format!("SELECT q.item {}", crate::read::RECOVER_SQL_FILTER));
        assert!(recover.contains("queue_open"), "{recover}");
        let dead = plan(&crate::read::dead_letters_sql());
        assert!(dead.contains("queue_dead"), "{dead}");
        // a re-send is found, with its cached ACK, through the control id index
        for sql in NEWEST_INBOUND {
            let resend = plan(sql);
            assert!(resend.contains("messages_control_id"), "{resend}");
        }
    }
}
