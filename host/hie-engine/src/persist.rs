//! How the engine uses the durable store (`hie-store`): "ACK means stored".
//!
//! - **Intake** (`adapters::accept_inbound`): an inbound message is committed (with
//!   its de-duplication key and, in commit mode, the ACK it will get) in one
//!   transaction before anything is acknowledged. It is queued in memory as soon as
//!   that transaction is submitted, behind a `Gate` the commit opens or shuts: no
//!   worker runs it before it is stored, and the connection's next frame need not
//!   wait for this one's `fsync`.
//! - **Hops** (`worker`): a worker marks a message in flight before calling the
//!   plugin, and on success writes the messages the route derived and the parent's
//!   `done` in one batch. These writes are *detached*: the worker does not wait for
//!   their fsync, the single writer thread group-commits them in submission order,
//!   so a later mark can never overtake an earlier one. What a crash can lose is a
//!   hop's outcome that was not committed yet; recovery then runs that hop again
//!   (at least once, never lost).
//! - **Recovery** (`Engine::start`): every message not done at some item goes back
//!   on that item's queue in its original order, before any listener opens.
//! - **Dead letters** live in the store (`dead_letter`): they survive restarts and
//!   are requeued or discarded there.
//!
//! `[store] backend = "none"` turns all of this off (benchmarks, tests): messages
//! then live in memory only, as before the store existed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::delivery::Delivery;
use crate::engine::{SendError, Shared};
use crate::error::EngineError;
use hie_config::{Production, StoreBackend};
use hie_core::{Envelope, Failure, MessageId};
use hie_store::{
    FaultInjector, Indexed, MessageStore, Recovered, RetentionPolicy, RetentionTask, SqliteStore, Status,
    StoreConfig, StoreError, WriteBatch,
};

/// **Test only.** Names a file; while that file exists every store commit fails as a
/// failing disk would (the store's `FaultInjector`). Lets end-to-end tests show that
/// a storage fault stops intake with `AR` and that intake resumes once it clears.
pub const FAULT_FILE_ENV: &str = "HIE_STORE_FAULT_FILE";

/// Failure code an inbound sender gets when its message could not be stored.
pub const STORAGE_UNAVAILABLE: &str = "storage-unavailable";

/// The store of a running production, with its background tasks.
pub(crate) struct Persist {
    store: SqliteStore,
    _retention: Option<RetentionTask>,
    _fault: Option<FaultWatch>,
}

impl Persist {
    /// Open the production's store, or `None` with `backend = "none"`. A corrupt or
    /// foreign file is refused (the error names the file and what to do).
    pub fn open(production: &Production) -> Result<Option<Persist>, StoreError> {
        let settings = production.store;
        if settings.backend == StoreBackend::None {
            tracing::warn!(production = %production.name, "running without a message store: a crash loses queued messages");
            return Ok(None);
        }
        let mut config = StoreConfig {
            dedup_window: settings.dedup_window,
            ..StoreConfig::default()
        };
        let fault = std::env::var_os(FAULT_FILE_ENV).map(|path| {
            let injector = FaultInjector::new();
            config.fault_injector = Some(injector.clone());
            // a test wants to see intake resume soon after the fault clears
            config.probe_interval = Duration::from_millis(100);
            FaultWatch::start(PathBuf::from(path), injector)
        });
        let store = SqliteStore::open(&production.data_dir, config)?;
        let retention = match settings.retention {
            Some(keep_for) => Some(store.spawn_retention(
                RetentionPolicy {
                    keep_for,
                    statuses: vec![Status::Done, Status::Discarded],
                },
                settings.retention_interval,
            )?),
            None => None,
        };
        Ok(Some(Persist {
            store,
            _retention: retention,
            _fault: fault,
        }))
    }

    /// The store.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Submit a batch without waiting for its commit (hop marks). The writer commits
    /// batches in submission order; a refused one is logged by the store.
    pub fn detach(&self, batch: WriteBatch) {
        drop(self.store.submit(batch));
    }

    /// Record that `msg` is handed to the plugin of `item`.
    pub fn in_flight(&self, msg: &Envelope, item: &str, plugin_version: Option<&str>) {
        let mut batch = WriteBatch::new();
        batch.mark(msg.id, item, Status::InFlight, msg.attempt, plugin_version, None);
        self.detach(batch);
    }

    /// Record that an attempt at `item` failed and will be retried (or decided on).
    pub fn failed(&self, msg: &Envelope, item: &str, plugin_version: Option<&str>, failure: &Failure) {
        let mut batch = WriteBatch::new();
        batch.mark(
            msg.id,
            item,
            Status::Failed,
            msg.attempt,
            plugin_version,
            Some(&describe(failure)),
        );
        self.detach(batch);
    }

    /// Record that `input` is done at `item` and queue what the route derived from it,
    /// in one batch (atomic). `input_stored` is false for work that was never stored
    /// (the reply to an async request): then only the children are written.
    pub fn done(
        &self,
        input: &Envelope,
        input_stored: bool,
        item: &str,
        plugin_version: Option<&str>,
        note: Option<&str>,
        children: &[(String, Envelope)],
    ) {
        let mut batch = WriteBatch::new();
        // a routed copy with the input's body shares the stored one, and its index
        let mut input_idx = None;
        for (target, child) in children {
            if input_stored && child.body == input.body {
                let idx = input_idx.get_or_insert_with(|| index_of(&input.body));
                batch.enqueue_copy(child, idx, target, input);
            } else {
                batch.enqueue(child, &index_of(&child.body), target);
            }
        }
        if input_stored {
            batch.mark(input.id, item, Status::Done, input.attempt, plugin_version, note);
        }
        if !batch.is_empty() {
            self.detach(batch);
        }
    }

    /// Queue a message that did not come out of a hop (a plugin's `send`, an
    /// operator's `Engine::send`) at `target`.
    pub fn enqueue(&self, msg: &Envelope, target: &str) {
        let mut batch = WriteBatch::new();
        batch.enqueue(msg, &index_of(&msg.body), target);
        self.detach(batch);
    }

    /// Put `msg` in the dead-letter state at `item`.
    pub fn dead_letter(&self, msg: &Envelope, item: &str, failure: &Failure) {
        let mut batch = WriteBatch::new();
        batch.dead_letter(msg, &index_of(&msg.body), item, &describe(failure));
        self.detach(batch);
    }

    /// Every message not done at some item, grouped by item in queue order.
    pub fn recover(&self) -> Result<Vec<Recovered>, StoreError> {
        self.store.recover()
    }

    /// Whether `id` still has work open (queued, in flight, failed) at some item, has
    /// a dead letter, or is done everywhere; for de-duplicated re-sends in application mode.
    pub fn progress(&self, id: MessageId) -> Progress {
        match self.store.get(id) {
            Ok(Some(m)) if m.states.iter().any(|s| s.status.is_open()) => Progress::Open,
            Ok(Some(m)) if m.states.iter().any(|s| s.status == Status::DeadLettered) => {
                Progress::DeadLettered
            }
            Ok(Some(_)) => Progress::Done,
            Ok(None) => Progress::Unknown,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "cannot read the state of a stored message");
                Progress::Unknown
            }
        }
    }
}

/// Put every message the store holds as not done back on its item's queue, in the
/// order the store returns them (FIFO per item), before any worker or listener starts.
/// A message for an item that no longer exists, or is disabled, stays in the store.
pub(crate) async fn requeue_recovered(shared: &Arc<Shared>) -> Result<(), EngineError> {
    let Some(persist) = shared.store.clone() else {
        return Ok(());
    };
    let recovered = tokio::task::spawn_blocking(move || persist.recover())
        .await
        .map_err(|e| EngineError::Store(StoreError::Query(format!("recovery task failed: {e}"))))??;
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for entry in recovered {
        let Some(item) = shared.item(&entry.item) else {
            tracing::warn!(item = %entry.item, message_id = %entry.envelope.id, "recovered message is for an item the production no longer has; it stays in the store");
            continue;
        };
        let key = item.key_of(&entry.envelope);
        let id = entry.envelope.id;
        match item.queue.push_force(Delivery::message(entry.envelope), key) {
            Ok(()) => {
                let c = counts.entry(entry.item).or_default();
                c.0 += 1;
                c.1 += usize::from(entry.was_in_flight);
            }
            Err(_) => {
                tracing::warn!(item = %entry.item, message_id = %id, "recovered message not queued: the item is disabled; it stays in the store")
            }
        }
    }
    for (item, (queued, in_flight)) in counts {
        tracing::info!(item = %item, queued, was_in_flight = in_flight, "recovered messages queued again");
    }
    Ok(())
}

impl Shared {
    /// Like [`Shared::deliver`] for a message that is not stored yet (a plugin's `send`,
    /// a request, [`crate::Engine::send`]): it is queued in the store first. A message
    /// the queue refuses is marked done there with the reason (the caller got the error)
    /// unless it became a dead letter.
    pub fn deliver_new(
        &self,
        target: &str,
        delivery: Delivery,
        wait: Option<Duration>,
    ) -> Result<(), SendError> {
        let stored = match (&self.store, delivery.envelope()) {
            (Some(persist), Some(msg)) => {
                persist.enqueue(msg, target);
                Some((Arc::clone(persist), msg.clone()))
            }
            _ => None,
        };
        let result = self.deliver(target, delivery, wait);
        if let (Err(e), Some((persist, msg))) = (&result, stored)
            && !e.dead_lettered
        {
            let mut batch = WriteBatch::new();
            let note = format!("refused: {}", describe(&e.failure));
            batch.mark(msg.id, target, Status::Done, msg.attempt, None, Some(&note));
            persist.detach(batch);
        }
        result
    }
}

/// How far a stored message got, as [`Persist::progress`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Some item still has it queued, in flight or failed.
    Open,
    /// It ended as a dead letter somewhere.
    DeadLettered,
    /// Done at every item.
    Done,
    /// Not stored (purged) or unreadable.
    Unknown,
}

/// The header values the store indexes (MSH-10, MSH-9, MSH-3, MSH-4, PID-3.1); empty
/// for a body that is not HL7.
pub(crate) fn index_of(body: &[u8]) -> Indexed {
    let Ok(m) = hie_hl7::Message::parse(body) else {
        return Indexed::default();
    };
    let text = |path: &str| m.get(path).ok().flatten().filter(|s| !s.is_empty());
    Indexed {
        control_id: m.control_id(),
        message_type: m.message_type(),
        sending_app: text("MSH-3"),
        sending_facility: text("MSH-4"),
        patient_id: text("PID-3.1"),
    }
}

/// How a failure is written into the store: `code: text`.
pub(crate) fn describe(f: &Failure) -> String {
    format!("{}: {}", f.code, f.text)
}

/// The failure written by [`describe`], read back.
pub(crate) fn failure_from(text: Option<&str>) -> Failure {
    match text.and_then(|t| t.split_once(": ")) {
        Some((code, rest)) => Failure::permanent(code, rest),
        None => Failure::permanent("unknown", text.unwrap_or("no reason recorded")),
    }
}

/// The failure an inbound sender gets when the store refused its message.
pub(crate) fn storage_failure(e: &StoreError) -> Failure {
    match e {
        StoreError::Unavailable { .. } | StoreError::Closed => Failure::transient(
            STORAGE_UNAVAILABLE,
            "storage unavailable, the message was not stored; send it again later",
        ),
        other => Failure::transient(STORAGE_UNAVAILABLE, format!("storage unavailable: {other}")),
    }
}

/// Test hook: mirrors whether [`FAULT_FILE_ENV`]'s file exists into a fault injector.
struct FaultWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultWatch {
    fn start(path: PathBuf, injector: FaultInjector) -> FaultWatch {
        tracing::warn!(path = %path.display(), "test fault hook on: store commits fail while this file exists");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hie-store-fault".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    injector.fail_commits(path.exists());
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .ok();
        FaultWatch { stop, thread }
    }
}

impl Drop for FaultWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_reads_the_msh_keys_and_the_patient() {
        let body = b"MSH|^~\\&|LAB|HOSP|HIE|HIE|20260101||ADT^A01|C42|P|2.5\rPID|1||P7^^^HOSP~X9||DOE\r";
        let idx = index_of(body);
        assert_eq!(idx.control_id.as_deref(), Some("C42"));
        assert_eq!(idx.message_type.as_deref(), Some("ADT^A01"));
        assert_eq!(idx.sending_app.as_deref(), Some("LAB"));
        assert_eq!(idx.sending_facility.as_deref(), Some("HOSP"));
        assert_eq!(idx.patient_id.as_deref(), Some("P7"));
        assert_eq!(index_of(b"not hl7"), Indexed::default());
    }

    #[test]
    fn failures_round_trip_through_their_stored_text() {
        let f = Failure::transient("queue-full", "queue of item out is full: 10");
        let back = failure_from(Some(&describe(&f)));
        assert_eq!(
            (back.code.as_str(), back.text.as_str()),
            ("queue-full", "queue of item out is full: 10")
        );
        assert_eq!(failure_from(None).code, "unknown");
    }
}
