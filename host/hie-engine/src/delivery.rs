//! What sits in a queue: a message (or the reply to an earlier async request) and
//! who, if anyone, waits for the result.

use std::sync::Arc;

use bytes::Bytes;
use hie_core::{Envelope, Failure};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// One queue entry.
#[derive(Debug)]
pub struct Delivery {
    /// The work.
    pub work: Work,
    /// Who waits for the result.
    pub reply_to: ReplyTo,
}

/// The work a worker does for a queue entry.
#[derive(Debug)]
pub enum Work {
    /// Process a message with `on-message`.
    Message(Envelope),
    /// Hand the reply of an earlier `send-request-async` to `on-reply`.
    Reply {
        /// The correlation id the plugin got back from `send-request-async`.
        correlation_id: String,
        /// The reply or why there is none.
        result: Result<Envelope, Failure>,
    },
}

impl Delivery {
    /// A message nobody waits for.
    pub fn message(msg: Envelope) -> Self {
        Delivery {
            work: Work::Message(msg),
            reply_to: ReplyTo::Nobody,
        }
    }

    /// A message with a waiter.
    pub fn message_to(msg: Envelope, reply_to: ReplyTo) -> Self {
        Delivery {
            work: Work::Message(msg),
            reply_to,
        }
    }

    /// The message, if this is one.
    pub fn envelope(&self) -> Option<&Envelope> {
        match &self.work {
            Work::Message(m) => Some(m),
            Work::Reply { .. } => None,
        }
    }

    /// Priority used by priority queues (replies go first).
    pub fn priority(&self) -> u8 {
        match &self.work {
            Work::Message(m) => m.priority,
            Work::Reply { .. } => 9,
        }
    }
}

/// Who waits for the result of a delivery.
#[derive(Debug, Default)]
pub enum ReplyTo {
    /// Nobody.
    #[default]
    Nobody,
    /// A thread blocked in `send-request-sync`.
    Sync(crossbeam_channel::Sender<Result<Envelope, Failure>>),
    /// An item that called `send-request-async`; the reply goes to its `on-reply`.
    Async {
        /// The requesting item.
        item: String,
        /// The correlation id it was given.
        correlation_id: String,
    },
    /// An inbound connection waiting to send its ACK (application ACK mode).
    Inbound(InboundWaiter),
}

/// What an inbound sender is told, before it is turned into an ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundResult {
    /// Accepted and routed.
    Accepted,
    /// A plugin replied with these bytes (they become the ACK as they are).
    Replied(Bytes),
    /// Processing failed (the message may have been dead-lettered).
    Failed(Failure),
    /// A queue refused the message (full, closed, or disabled item).
    Refused(Failure),
}

/// The single-use slot an inbound connection waits on.
#[derive(Debug, Clone)]
pub struct InboundWaiter(Arc<Mutex<Option<oneshot::Sender<InboundResult>>>>);

impl InboundWaiter {
    /// A waiter and the receiver the connection awaits.
    pub fn new() -> (Self, oneshot::Receiver<InboundResult>) {
        let (tx, rx) = oneshot::channel();
        (InboundWaiter(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Resolve it; later calls do nothing.
    pub fn resolve(&self, result: InboundResult) {
        if let Some(tx) = self.0.lock().take() {
            let _ = tx.send(result);
        }
    }
}
