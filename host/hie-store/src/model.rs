use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use hie_core::{Envelope, MessageId};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Header values extracted by the caller (for HL7: MSH-10, MSH-9, MSH-3, MSH-4,
/// PID-3 first repetition) so the store can index them without parsing bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexed {
    /// Message control id (MSH-10).
    pub control_id: Option<String>,
    /// Message type (MSH-9), e.g. `ADT^A01`.
    pub message_type: Option<String>,
    /// Sending application (MSH-3).
    pub sending_app: Option<String>,
    /// Sending facility (MSH-4).
    pub sending_facility: Option<String>,
    /// Patient identifier (PID-3, first repetition).
    pub patient_id: Option<String>,
}

impl Indexed {
    /// The ACK-cache key of this message, if it has a control id.
    pub fn ack_key(&self) -> Option<AckKey> {
        Some(AckKey {
            sending_app: self.sending_app.clone().unwrap_or_default(),
            sending_facility: self.sending_facility.clone().unwrap_or_default(),
            control_id: self.control_id.clone()?,
        })
    }
}

/// Identifies an upstream message for de-duplication: sending application,
/// sending facility and control id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AckKey {
    /// Sending application (MSH-3), empty if absent.
    pub sending_app: String,
    /// Sending facility (MSH-4), empty if absent.
    pub sending_facility: String,
    /// Message control id (MSH-10).
    pub control_id: String,
}

/// State of a message at one item (one hop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting in the item's queue.
    Queued,
    /// Handed to the item's plugin, not finished.
    InFlight,
    /// Finished at this item.
    Done,
    /// The last attempt failed; the engine has not decided yet on retry or dead letter.
    Failed,
    /// Given up on; waits for an operator to requeue or discard it.
    DeadLettered,
    /// A dead letter an operator discarded.
    Discarded,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::InFlight,
        Status::Done,
        Status::Failed,
        Status::DeadLettered,
        Status::Discarded,
    ];

    /// Name used in logs, the admin API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InFlight => "in-flight",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::DeadLettered => "dead-lettered",
            Status::Discarded => "discarded",
        }
    }

    /// Whether a message in this state still has to be delivered (recovery re-queues it).
    pub fn is_open(self) -> bool {
        matches!(self, Status::Queued | Status::InFlight | Status::Failed)
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            Status::Queued => 0,
            Status::InFlight => 1,
            Status::Done => 2,
            Status::Failed => 3,
            Status::DeadLettered => 4,
            Status::Discarded => 5,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Invalid(format!("unknown status {s:?}; use one of queued, in-flight, done, failed, dead-lettered, discarded")))
    }
}

/// Proof that a write is durable: the transaction that contained it committed
/// (and, with `synchronous=FULL`, was fsynced) before this value was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Number of the writer transaction since the store was opened; writes that
    /// share a number shared one fsync.
    pub transaction: u64,
    /// When the transaction committed, milliseconds since the Unix epoch.
    pub committed_at_ms: u64,
}

/// Result of [`crate::MessageStore::ingest_dedup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// The message is new and is now stored and queued.
    Stored(Commit),
    /// The same upstream message (sending app, facility, control id) arrived within the
    /// de-duplication window; nothing was stored.
    Duplicate {
        /// Id of the message stored the first time.
        original: MessageId,
        /// The ACK sent the first time, if one was recorded already; `None` means the
        /// first copy is still being processed.
        ack: Option<Bytes>,
    },
}

/// A message that was not done at shutdown, as [`crate::MessageStore::recover`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The item whose queue it belongs to.
    pub item: String,
    /// The message; `attempt` is already incremented if a delivery had started.
    pub envelope: Envelope,
    /// Whether a delivery had started (in-flight or failed) when the store stopped.
    pub was_in_flight: bool,
}

/// State of a message at one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// The item.
    pub item: String,
    /// Its current status there.
    pub status: Status,
    /// The attempt that status belongs to.
    pub attempt: u32,
    /// When the status was last changed, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
}

/// A message read back from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message as stored (attempt as at ingest).
    pub envelope: Envelope,
    /// Its indexed header values.
    pub indexed: Indexed,
    /// Its state at every item it was queued for.
    pub states: Vec<ItemState>,
}

/// A stored message without its body, as search results list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// Message id.
    pub id: MessageId,
    /// Session id.
    pub session_id: MessageId,
    /// Parent message, if derived.
    pub parent_id: Option<MessageId>,
    /// Producing item.
    pub source: String,
    /// Addressed item.
    pub target: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Content type of the body.
    pub content_type: String,
    /// Indexed header values.
    pub indexed: Indexed,
    /// Body length in bytes.
    pub body_len: u64,
}

/// What to trace: one message, or a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKey {
    /// The events of one message.
    Message(MessageId),
    /// The events of every message of a session.
    Session(MessageId),
}

/// One status change of a message at an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The message.
    pub message_id: MessageId,
    /// Its parent, if derived.
    pub parent_id: Option<MessageId>,
    /// The item.
    pub item: String,
    /// The new status.
    pub status: Status,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The attempt.
    pub attempt: u32,
    /// Content hash of the plugin version that handled it, if any.
    pub plugin_version: Option<String>,
    /// Error text of a failure, if any.
    pub error: Option<String>,
}

/// Filters of [`crate::MessageStore::search`]; every set field must match. Results
/// come newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// Created at or after, milliseconds since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Created before, milliseconds since the Unix epoch.
    pub until_ms: Option<u64>,
    /// Message type (MSH-9), exact.
    pub message_type: Option<String>,
    /// Current status at some item (at `item` if that is set too).
    pub status: Option<Status>,
    /// Queued at this item at some point.
    pub item: Option<String>,
    /// Session id.
    pub session: Option<MessageId>,
    /// Control id (MSH-10), exact.
    pub control_id: Option<String>,
    /// Patient id (PID-3 first repetition), exact.
    pub patient_id: Option<String>,
    /// Most results returned.
    pub limit: usize,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            since_ms: None,
            until_ms: None,
            message_type: None,
            status: None,
            item: None,
            session: None,
            control_id: None,
            patient_id: None,
            limit: 100,
        }
    }
}

/// A message waiting in the dead-letter state at an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message.
    pub summary: MessageSummary,
    /// The item it was dead-lettered at.
    pub item: String,
    /// The attempt that gave up.
    pub attempt: u32,
    /// When it was dead-lettered, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Error text recorded with it.
    pub error: Option<String>,
}
