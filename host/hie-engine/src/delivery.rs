//! What sits in a queue: a message (or the reply to an earlier async request) and
//! who, if anyone, waits for the result.

use std::sync::Arc;

use bytes::Bytes;
use hie_core::{Envelope, Failure};
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

/// One queue entry.
#[derive(Debug)]
pub struct Delivery {
    /// The work.
    pub work: Work,
    /// Who waits for the result.
    pub reply_to: ReplyTo,
    /// Set on an inbound message queued while its intake commits: the worker that
    /// takes it waits for the commit and drops it if it was not stored.
    pub gate: Option<Gate>,
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
            gate: None,
        }
    }

    /// A message with a waiter.
    pub fn message_to(msg: Envelope, reply_to: ReplyTo) -> Self {
        Delivery {
            work: Work::Message(msg),
            reply_to,
            gate: None,
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

/// Whether a message queued before its intake committed may be worked on.
///
/// An inbound connection queues message N in memory as soon as N's transaction is
/// submitted, and goes on to N + 1 while N commits; so a sender's frames are queued in
/// the order they came and many of them share one commit. A worker that takes N before
/// the commit is decided waits here; if N was not stored (the commit failed, or it was
/// a duplicate of an earlier upstream message) the worker drops it: nothing ran it, and
/// its sender was told (`AR`, or the earlier copy's ACK).
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateInner>);

#[derive(Debug)]
struct GateInner {
    state: Mutex<GateState>,
    decided: Condvar,
}

#[derive(Debug, Clone)]
enum GateState {
    Waiting,
    Open,
    /// Not stored; `Some` is the failure its sender was given.
    Shut(Option<Failure>),
}

impl Gate {
    /// A gate not decided yet.
    pub fn new() -> Self {
        Gate(Arc::new(GateInner {
            state: Mutex::new(GateState::Waiting),
            decided: Condvar::new(),
        }))
    }

    /// The message is stored: work on it.
    pub fn open(&self) {
        self.decide(GateState::Open);
    }

    /// The message is not stored: drop it (`failure`: what its sender was told).
    pub fn shut(&self, failure: Option<Failure>) {
        self.decide(GateState::Shut(failure));
    }

    fn decide(&self, to: GateState) {
        let mut state = self.0.state.lock();
        if matches!(*state, GateState::Waiting) {
            *state = to;
            self.0.decided.notify_all();
        }
    }

    /// Block until decided: `Ok` to work on the message, `Err` to drop it.
    pub fn wait(&self) -> Result<(), Option<Failure>> {
        let mut state = self.0.state.lock();
        loop {
            match &*state {
                GateState::Waiting => self.0.decided.wait(&mut state),
                GateState::Open => return Ok(()),
                GateState::Shut(f) => return Err(f.clone()),
            }
        }
    }
}

/// Entries taken out of a queue that closes, made ready to be refused or dead-lettered:
/// an entry still behind its intake's gate waits for that commit. One that was not
/// stored is dropped (its sender was answered); one that was loses its gate, so it is
/// dead-lettered like any stored message.
pub async fn settled(deliveries: Vec<Delivery>) -> Vec<Delivery> {
    if deliveries.iter().all(|d| d.gate.is_none()) {
        return deliveries;
    }
    let waited = tokio::task::spawn_blocking(move || {
        deliveries
            .into_iter()
            .filter_map(|mut d| match d.gate.take() {
                Some(gate) => gate.wait().ok().map(|()| d),
                None => Some(d),
            })
            .collect()
    });
    waited.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "waiting for intake commits of a closing queue failed");
        Vec::new()
    })
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_waits_for_the_gate_and_the_first_decision_stands() {
        let gate = Gate::new();
        let waiting = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiting.is_finished(), "undecided: the worker waits");
        gate.open();
        assert_eq!(waiting.join().unwrap(), Ok(()));
        gate.shut(None);
        assert_eq!(gate.wait(), Ok(()), "a later decision changes nothing");
    }

    #[test]
    fn a_closing_queue_keeps_what_was_stored_and_drops_what_was_not() {
        let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
        let entry = |body: &str, gate: Option<&Gate>| Delivery {
            gate: gate.cloned(),
            ..Delivery::message(Envelope::hl7("in", body.to_owned()))
        };
        let (stored, refused) = (Gate::new(), Gate::new());
        refused.shut(Some(Failure::transient("storage-unavailable", "disk full")));
        let deciding = {
            let stored = stored.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                stored.open();
            })
        };
        let kept = runtime.block_on(settled(vec![
            entry("stored", Some(&stored)),
            entry("refused", Some(&refused)),
            entry("plain", None),
        ]));
        deciding.join().unwrap();
        let bodies: Vec<&[u8]> = kept.iter().map(|d| &d.envelope().unwrap().body[..]).collect();
        assert_eq!(bodies, [&b"stored"[..], &b"plain"[..]]);
        assert!(
            kept.iter().all(|d| d.gate.is_none()),
            "what stays is dead-lettered as stored"
        );
    }

    #[test]
    fn a_shut_gate_tells_the_worker_what_the_sender_was_told() {
        let gate = Gate::new();
        let failure = Failure::transient("storage-unavailable", "disk full");
        gate.shut(Some(failure.clone()));
        assert_eq!(gate.wait(), Err(Some(failure)));
        let duplicate = Gate::new();
        duplicate.shut(None);
        assert_eq!(duplicate.wait(), Err(None));
    }
}
