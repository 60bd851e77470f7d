use bytes::Bytes;
use hie_core::{Envelope, MessageId};

use crate::{
    AckKey, Applied, BatchOutcome, Commit, DeadLetter, Indexed, Ingested, MessageSummary, Pending, Recovered,
    SearchQuery, Status, StoreError, StoredMessage, TraceEvent, TraceKey, WriteBatch,
};

/// A durable message store. Every method may be called from any thread; writes
/// return only once the transaction holding them is committed and fsynced, so a
/// returned `Ok` may be acknowledged upstream and an `Err` must not be.
///
/// Async callers use [`MessageStore::submit`] and `.await` the [`Pending`]; the
/// other write methods block the calling thread (from async code, call them on a
/// blocking thread). Reads block too.
pub trait MessageStore: Send + Sync {
    /// Queue a batch for the writer; all its operations commit together or not at all.
    fn submit(&self, batch: WriteBatch) -> Pending<BatchOutcome>;

    /// Whether a write would commit now; while faulted this tries a probe write.
    /// Meant for `/ready`.
    fn is_writable(&self) -> bool;

    /// Every message not done at some item, grouped by item in queue order. Entries
    /// that were in flight (or failed without a decision) come back with `attempt + 1`.
    fn recover(&self) -> Result<Vec<Recovered>, StoreError>;

    /// The stored message `id` and its state at every item.
    fn get(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError>;

    /// Status changes of a message or a session, oldest first.
    fn trace(&self, key: TraceKey) -> Result<Vec<TraceEvent>, StoreError>;

    /// Messages matching every set filter, newest first.
    fn search(&self, query: &SearchQuery) -> Result<Vec<MessageSummary>, StoreError>;

    /// Dead letters (of one item, or all), oldest first.
    fn dead_letters(&self, item: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Delete messages created before `older_than_ms` whose state at every item is in
    /// `statuses` (done, dead-lettered, discarded only); returns how many went.
    fn purge(&self, older_than_ms: u64, statuses: &[Status]) -> Result<u64, StoreError>;

    /// Give free space back to the file system; returns the bytes freed.
    fn reclaim_space(&self) -> Result<u64, StoreError>;

    /// Submit a batch and block until it committed.
    fn write(&self, batch: WriteBatch) -> Result<BatchOutcome, StoreError> {
        self.submit(batch).wait()
    }

    /// Store a new inbound message and queue it at `item`, durably.
    fn ingest(&self, msg: &Envelope, idx: &Indexed, item: &str) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.ingest(msg, idx, item);
        Ok(self.write(batch)?.commit)
    }

    /// Like [`MessageStore::ingest`], unless the same (sending app, facility, control
    /// id) was seen within the window: then nothing is stored and the earlier ACK is
    /// returned. `ack`, if given, is cached in the same transaction.
    fn ingest_dedup(
        &self,
        msg: &Envelope,
        idx: &Indexed,
        item: &str,
        ack: Option<Bytes>,
    ) -> Result<Ingested, StoreError> {
        let mut batch = WriteBatch::new();
        batch.ingest_dedup(msg, idx, item, ack);
        let outcome = self.write(batch)?;
        Ok(match outcome.applied.into_iter().next() {
            Some(Applied::Duplicate { original, ack }) => Ingested::Duplicate { original, ack },
            _ => Ingested::Stored(outcome.commit),
        })
    }

    /// Cache the ACK sent upstream for de-duplication of re-sends.
    fn record_ack(&self, key: &AckKey, ack: Bytes) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.record_ack(key, ack);
        Ok(self.write(batch)?.commit)
    }

    /// Record a status change of message `id` at `item`.
    fn mark(
        &self,
        id: MessageId,
        item: &str,
        status: Status,
        attempt: u32,
        plugin_version: Option<&str>,
        error: Option<&str>,
    ) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.mark(id, item, status, attempt, plugin_version, error);
        Ok(self.write(batch)?.commit)
    }

    /// Store a message a route derived and queue it at `item`.
    fn enqueue(&self, child: &Envelope, idx: &Indexed, item: &str) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.enqueue(child, idx, item);
        Ok(self.write(batch)?.commit)
    }

    /// Queue a copy of message `id` (fresh id, parent = `id`) at `to_item`; returns the copy's id.
    fn resend(&self, id: MessageId, to_item: &str) -> Result<MessageId, StoreError> {
        let mut batch = WriteBatch::new();
        batch.resend(id, to_item);
        match self.write(batch)?.applied.into_iter().next() {
            Some(Applied::Resent { id }) => Ok(id),
            other => Err(StoreError::Query(format!("resend answered {other:?}"))),
        }
    }

    /// Queue a dead letter at `item` again.
    fn requeue_dead_letter(&self, id: MessageId, item: &str) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.requeue_dead_letter(id, item);
        Ok(self.write(batch)?.commit)
    }

    /// Discard a dead letter at `item` for good.
    fn discard_dead_letter(&self, id: MessageId, item: &str) -> Result<Commit, StoreError> {
        let mut batch = WriteBatch::new();
        batch.discard_dead_letter(id, item);
        Ok(self.write(batch)?.commit)
    }
}
