use bytes::Bytes;
use hie_core::{Envelope, MessageId};

use crate::{AckKey, Commit, Indexed, Status};

/// Write operations committed together: all of them or none. Batches from many
/// callers share one transaction (group commit), but a batch that fails a check
/// (unknown id, wrong state) is rolled back alone and does not affect the others.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Store {
        msg: Box<Envelope>,
        idx: Indexed,
        item: String,
        kind: StoreKind,
        /// A stored message whose body this one has, byte for byte: the row refers
        /// to it instead of holding a copy (if it is stored).
        body_of: Option<MessageId>,
    },
    Mark {
        id: MessageId,
        item: String,
        status: Status,
        attempt: u32,
        plugin_version: Option<String>,
        error: Option<String>,
    },
    RecordAck {
        key: AckKey,
        ack: Bytes,
    },
    Resend {
        id: MessageId,
        to_item: String,
    },
    DeadLetter {
        msg: Box<Envelope>,
        idx: Indexed,
        item: String,
        error: String,
    },
    Requeue {
        id: MessageId,
        item: String,
    },
    Discard {
        id: MessageId,
        item: String,
    },
    Purge {
        cutoff_ms: u64,
        statuses: Vec<Status>,
        limit: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum StoreKind {
    /// A new inbound message; its id must be new.
    Ingest,
    /// Like `Ingest`, unless the ACK cache or a recent message has the same key.
    IngestDedup { ack: Option<Bytes> },
    /// A message a route derived, or one already stored being queued at another item.
    Enqueue,
}

/// What one operation of a committed batch did, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The message was stored and queued.
    Stored,
    /// A de-duplicated ingest found an earlier copy; nothing was stored.
    Duplicate {
        /// Id of the earlier copy.
        original: MessageId,
        /// The ACK recorded for it, if any yet.
        ack: Option<Bytes>,
    },
    /// The status change was recorded.
    Marked,
    /// The ACK was cached.
    AckRecorded,
    /// A copy was stored and queued under this new id.
    Resent {
        /// Id of the copy.
        id: MessageId,
    },
    /// The dead letter is queued again.
    Requeued,
    /// The dead letter was discarded.
    Discarded,
    /// The message is dead-lettered at the item.
    DeadLettered,
    /// This many messages were purged.
    Purged {
        /// Number of messages removed.
        messages: u64,
    },
}

/// The outcome of a committed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The transaction that made the batch durable.
    pub commit: Commit,
    /// One entry per operation, in batch order.
    pub applied: Vec<Applied>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Store a new inbound message and queue it at `item`.
    pub fn ingest(&mut self, msg: &Envelope, idx: &Indexed, item: &str) -> &mut Self {
        self.store(msg, idx, item, StoreKind::Ingest, None)
    }

    /// Like [`WriteBatch::ingest`] unless the same upstream message was seen within the
    /// de-duplication window; `ack`, if given, is cached as the reply to this message.
    /// When it finds an earlier copy, the operations after it in this batch are skipped
    /// (so a batch can ingest and route a message in one transaction).
    pub fn ingest_dedup(
        &mut self,
        msg: &Envelope,
        idx: &Indexed,
        item: &str,
        ack: Option<Bytes>,
    ) -> &mut Self {
        self.store(msg, idx, item, StoreKind::IngestDedup { ack }, None)
    }

    /// Store a message a route derived (or reuse a stored one) and queue it at `item`.
    pub fn enqueue(&mut self, msg: &Envelope, idx: &Indexed, item: &str) -> &mut Self {
        self.store(msg, idx, item, StoreKind::Enqueue, None)
    }

    /// Like [`WriteBatch::enqueue`] for a message derived from the stored message
    /// `from` (a routed copy): if it has `from`'s body byte for byte and is in its
    /// session, the store keeps one body for both. Otherwise (or if `from` turns out
    /// not to be stored) the copy keeps its own.
    pub fn enqueue_copy(&mut self, msg: &Envelope, idx: &Indexed, item: &str, from: &Envelope) -> &mut Self {
        let shares = msg.session_id == from.session_id && msg.body == from.body;
        self.store(msg, idx, item, StoreKind::Enqueue, shares.then_some(from.id))
    }

    /// Record a status change of message `id` at `item`.
    pub fn mark(
        &mut self,
        id: MessageId,
        item: &str,
        status: Status,
        attempt: u32,
        plugin_version: Option<&str>,
        error: Option<&str>,
    ) -> &mut Self {
        self.ops.push(Op::Mark {
            id,
            item: item.to_owned(),
            status,
            attempt,
            plugin_version: plugin_version.map(str::to_owned),
            error: error.map(str::to_owned),
        });
        self
    }

    /// Cache the ACK sent for an upstream message.
    pub fn record_ack(&mut self, key: &AckKey, ack: Bytes) -> &mut Self {
        self.ops.push(Op::RecordAck {
            key: key.clone(),
            ack,
        });
        self
    }

    /// Put `msg` in the dead-letter state at `item` with `error`, storing it first if it
    /// is not stored yet (a message refused before it reached a queue).
    pub fn dead_letter(&mut self, msg: &Envelope, idx: &Indexed, item: &str, error: &str) -> &mut Self {
        self.ops.push(Op::DeadLetter {
            msg: Box::new(msg.clone()),
            idx: idx.clone(),
            item: item.to_owned(),
            error: error.to_owned(),
        });
        self
    }

    /// Store a copy of message `id` under a fresh id and queue it at `to_item`.
    pub fn resend(&mut self, id: MessageId, to_item: &str) -> &mut Self {
        self.ops.push(Op::Resend {
            id,
            to_item: to_item.to_owned(),
        });
        self
    }

    /// Queue a dead letter again at its item, with the next attempt number.
    pub fn requeue_dead_letter(&mut self, id: MessageId, item: &str) -> &mut Self {
        self.ops.push(Op::Requeue {
            id,
            item: item.to_owned(),
        });
        self
    }

    /// Give up on a dead letter for good.
    pub fn discard_dead_letter(&mut self, id: MessageId, item: &str) -> &mut Self {
        self.ops.push(Op::Discard {
            id,
            item: item.to_owned(),
        });
        self
    }

    fn store(
        &mut self,
        msg: &Envelope,
        idx: &Indexed,
        item: &str,
        kind: StoreKind,
        body_of: Option<MessageId>,
    ) -> &mut Self {
        self.ops.push(Op::Store {
            msg: Box::new(msg.clone()),
            idx: idx.clone(),
            item: item.to_owned(),
            kind,
            body_of,
        });
        self
    }

    pub(crate) fn purge(cutoff_ms: u64, statuses: Vec<Status>, limit: usize) -> Self {
        WriteBatch {
            ops: vec![Op::Purge {
                cutoff_ms,
                statuses,
                limit,
            }],
        }
    }
}
