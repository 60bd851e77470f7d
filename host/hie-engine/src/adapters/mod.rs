//! Adapters: how messages enter a production (`mllp-in`, `file-in`) and leave it
//! (`mllp-out`, `file-out`).

pub mod file_in;
pub mod mllp_in;
pub mod outbound;
pub(crate) mod priority;

use std::sync::Arc;

use bytes::Bytes;
use hie_config::Overflow;
use hie_core::{Envelope, Failure, MessageId};
use hie_store::{Applied, BatchOutcome, MessageStore, Pending, Status, StoreError, WriteBatch};

use crate::delivery::{Delivery, Gate, ReplyTo, Work};
use crate::engine::{ItemRuntime, ItemState, Shared};
use crate::outward;
use crate::persist::{index_of, storage_failure};

/// How an inbound message is stored before it is queued.
#[derive(Debug, Clone)]
pub(crate) enum Intake {
    /// Commit it and wait for the commit; with `dedup`, an upstream message already
    /// seen (MSH-3, MSH-4, MSH-10 within the window) is not stored again. `ack` is
    /// cached with it in the same transaction (commit ACK mode).
    Commit { dedup: bool, ack: Option<Bytes> },
    /// Submit it without waiting (`immediate` ACK mode); no de-duplication.
    Detached,
}

/// What became of an inbound message that was not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Stored (when the production has a store) and queued.
    Queued,
    /// An earlier copy of the same upstream message is stored; nothing was done.
    Duplicate {
        /// The stored copy.
        original: MessageId,
        /// The ACK recorded for it, if any yet.
        ack: Option<Bytes>,
    },
}

/// Hand an inbound message to its service. A running service without a plugin
/// or hooks only passes messages on, so the message goes straight to the
/// service's targets (one queue hop less); otherwise it enters the service's queue.
///
/// With a store and [`Intake::Commit`], the message's transaction is submitted and the
/// message is queued in memory behind a [`Gate`] without waiting for the commit: the
/// caller (one connection, one frame at a time) goes on with its next frame while this
/// one commits, so frames are queued in the order they came and many share one commit.
/// The returned [`Admission`] says, once settled, whether it is stored: only then may it
/// be acknowledged. A destination that refuses it makes it a dead letter there once it
/// is stored, so the intake still succeeds.
pub(crate) async fn accept_inbound(
    shared: &Arc<Shared>,
    service: &ItemRuntime,
    msg: Envelope,
    reply_to: ReplyTo,
    intake: Intake,
) -> Admission {
    let config = &service.config;
    let direct =
        config.plugin.is_none() && config.hooks.is_empty() && *service.state.lock() == ItemState::Running;
    let destinations: Vec<String> = if direct {
        config.targets.clone()
    } else {
        vec![config.name.clone()]
    };
    let mut commit = None;
    if let Some(persist) = &shared.store {
        if let Err(f) = room_for(shared, &destinations) {
            return Admission::settled(Err(f));
        }
        // backpressure comes before the commit: from the submit to the last push below
        // nothing awaits, so a closing connection cannot leave the message stored but
        // not queued
        for name in &destinations {
            if let Some(item) = shared.item(name)
                && item.config.queue.overflow == Overflow::Block
            {
                item.queue.wait_for_room().await;
            }
        }
        let (batch, wait) = intake_batch(service, &msg, &destinations, intake);
        if wait {
            commit = Some(CommitWait {
                shared: Arc::clone(shared),
                service: config.name.clone(),
                message_id: msg.id,
                pending: Some(persist.store().submit(batch)),
                gate: Gate::new(),
                refused: Vec::new(),
                started: std::time::Instant::now(),
            });
        } else {
            persist.detach(batch);
        }
    }
    let stored = shared.store.is_some();
    let mut reply_to = Some(reply_to);
    let mut first_failure = None;
    for target in &destinations {
        let mut m = msg.clone();
        m.target.clone_from(target);
        let delivery = Delivery {
            work: Work::Message(m),
            reply_to: reply_to.take().unwrap_or_default(),
            gate: commit.as_ref().map(|c| c.gate.clone()),
        };
        let pushed = if stored {
            shared.deliver_now(target, delivery)
        } else {
            shared.deliver_async(target, delivery).await
        };
        if let Err(e) = pushed {
            match (&mut commit, e.message) {
                // dead-lettered once the commit says it is stored
                (Some(c), Some(m)) => c.refused.push((target.clone(), *m, e.failure)),
                (Some(_), None) => {}
                (None, _) if !stored && first_failure.is_none() => first_failure = Some(e.failure),
                // without a store the sender gets a NAK for the first target only;
                // with one the message is stored, so each refusal is a dead letter
                (None, Some(m)) => shared.dead_letters.put(target, *m, e.failure),
                (None, None) => {}
            }
        }
    }
    if let Some(reply_to) = reply_to {
        shared.resolve(reply_to, Ok(None));
    }
    if direct {
        shared.metrics.passed_on(&config.name, first_failure.is_none());
    }
    match (commit, first_failure) {
        (Some(commit), _) => Admission {
            now: None,
            commit: Some(commit),
        },
        (None, Some(f)) => Admission::settled(Err(f)),
        (None, None) => Admission::settled(Ok(Accepted::Queued)),
    }
}

/// The transaction that stores `msg` queued at each destination (at the service,
/// marked done, if it has none), and whether the sender waits for its commit.
fn intake_batch(
    service: &ItemRuntime,
    msg: &Envelope,
    destinations: &[String],
    intake: Intake,
) -> (WriteBatch, bool) {
    let idx = index_of(&msg.body);
    let service_name = service.config.name.as_str();
    let first = destinations.first().map_or(service_name, String::as_str);
    let mut batch = WriteBatch::new();
    let wait = match intake {
        Intake::Commit { dedup: true, ack } => {
            batch.ingest_dedup(msg, &idx, first, ack);
            true
        }
        Intake::Commit { dedup: false, .. } => {
            batch.ingest(msg, &idx, first);
            true
        }
        Intake::Detached => {
            batch.ingest(msg, &idx, first);
            false
        }
    };
    for target in destinations.iter().skip(1) {
        batch.enqueue(msg, &idx, target);
    }
    if destinations.is_empty() {
        batch.mark(
            msg.id,
            service_name,
            Status::Done,
            msg.attempt,
            None,
            Some("the service has no targets"),
        );
    }
    (batch, wait)
}

/// An inbound message handed to its destinations; [`Admission::settle`] tells
/// whether it is stored (and so may be acknowledged).
pub(crate) struct Admission {
    now: Option<Result<Accepted, Failure>>,
    commit: Option<CommitWait>,
}

impl Admission {
    fn settled(result: Result<Accepted, Failure>) -> Self {
        Admission {
            now: Some(result),
            commit: None,
        }
    }

    /// The outcome if it is known without waiting for a commit (no store, or refused
    /// before storing); `None`: [`Admission::settle`] waits for the commit.
    pub fn decided(&mut self) -> Option<Result<Accepted, Failure>> {
        self.now.take()
    }

    /// Wait for the intake's commit: `Ok` once stored (or found to be a duplicate),
    /// `Err` if it is not stored and must not be acknowledged.
    pub async fn settle(mut self) -> Result<Accepted, Failure> {
        if let Some(result) = self.now.take() {
            return result;
        }
        let mut commit = self
            .commit
            .take()
            .expect("an admission is settled now or by a commit");
        let pending = commit.pending.as_mut().expect("a commit is awaited once");
        let result = pending.await;
        commit.pending = None;
        commit.shared.metrics.store_commit(commit.started.elapsed());
        commit.decide(result)
    }
}

/// An intake whose commit is not decided yet, and the copies queued behind its gate.
struct CommitWait {
    shared: Arc<Shared>,
    service: String,
    message_id: MessageId,
    /// `None` once awaited.
    pending: Option<Pending<BatchOutcome>>,
    gate: Gate,
    /// Destinations that refused their copy: dead-lettered there once it is stored.
    refused: Vec<(String, Envelope, Failure)>,
    started: std::time::Instant,
}

impl CommitWait {
    /// Open or shut the gate by the commit's result, and say what the sender gets.
    fn decide(&mut self, result: Result<BatchOutcome, StoreError>) -> Result<Accepted, Failure> {
        match result {
            Ok(outcome) => match outcome.applied.into_iter().next() {
                Some(Applied::Duplicate { original, ack }) => {
                    self.gate.shut(None);
                    Ok(Accepted::Duplicate { original, ack })
                }
                _ => {
                    self.gate.open();
                    for (target, m, failure) in self.refused.drain(..) {
                        self.shared.dead_letters.put(&target, m, failure);
                    }
                    Ok(Accepted::Queued)
                }
            },
            Err(e) => {
                tracing::error!(item = %self.service, message_id = %self.message_id, error = %e, "inbound message not stored, refused");
                let failure = storage_failure(&e);
                self.gate.shut(Some(failure.clone()));
                Err(failure)
            }
        }
    }
}

impl Drop for CommitWait {
    /// A connection that closes while its frame commits drops the wait, but the
    /// commit goes on and the copies behind the gate need its result.
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let mut rest = CommitWait {
            shared: Arc::clone(&self.shared),
            service: std::mem::take(&mut self.service),
            message_id: self.message_id,
            pending: None,
            gate: self.gate.clone(),
            refused: std::mem::take(&mut self.refused),
            started: self.started,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move {
                let result = pending.await;
                let _ = rest.decide(result);
            })),
            Err(_) => drop(std::thread::spawn(move || {
                let _ = rest.decide(pending.wait());
            })),
        }
    }
}

/// Refuse before storing what the destinations would refuse now (disabled, stopping,
/// or full with overflow `reject`/`dead-letter`), so the sender gets `AR` and can
/// send it again, rather than a stored message nobody takes.
fn room_for(shared: &Shared, destinations: &[String]) -> Result<(), Failure> {
    for name in destinations {
        let item = shared.accepting(name)?;
        if item.config.queue.overflow != Overflow::Block && item.queue.stats().depth >= item.queue.capacity()
        {
            return Err(Failure::transient(
                outward::QUEUE_FULL,
                format!("queue of item {name} is full ({})", item.queue.capacity()),
            ));
        }
    }
    Ok(())
}
