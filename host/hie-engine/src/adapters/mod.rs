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
use hie_store::{Applied, MessageStore, Status, WriteBatch};

use crate::delivery::{Delivery, ReplyTo, Work};
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
/// With a store, the message is committed (queued at those destinations) before it
/// is queued in memory; `Err` means it is not stored and must not be acknowledged.
/// A destination that refuses it after the commit makes it a dead letter there: it
/// is stored, so the intake still succeeds.
pub(crate) async fn accept_inbound(
    shared: &Arc<Shared>,
    service: &ItemRuntime,
    msg: Envelope,
    reply_to: ReplyTo,
    intake: Intake,
) -> Result<Accepted, Failure> {
    let config = &service.config;
    let direct =
        config.plugin.is_none() && config.hooks.is_empty() && *service.state.lock() == ItemState::Running;
    let destinations: Vec<String> = if direct {
        config.targets.clone()
    } else {
        vec![config.name.clone()]
    };
    let stored = shared.store.is_some();
    if stored {
        room_for(shared, &destinations)?;
        if let Some(dup) = store_inbound(shared, service, &msg, &destinations, intake).await? {
            return Ok(dup);
        }
    }
    let mut reply_to = Some(reply_to);
    let mut first_failure = None;
    for target in &destinations {
        let mut m = msg.clone();
        m.target.clone_from(target);
        let delivery = Delivery {
            work: Work::Message(m),
            reply_to: reply_to.take().unwrap_or_default(),
        };
        if let Err(e) = shared.deliver_async(target, delivery).await {
            if !stored && first_failure.is_none() {
                first_failure = Some(e.failure);
            } else if let Some(m) = e.message {
                // without a store the sender gets a NAK for the first target only;
                // with one the message is stored, so each refusal is a dead letter
                shared.dead_letters.put(target, *m, e.failure);
            }
        }
    }
    if let Some(reply_to) = reply_to {
        shared.resolve(reply_to, Ok(None));
    }
    if direct {
        shared.metrics.passed_on(&config.name, first_failure.is_none());
    }
    match first_failure {
        Some(f) => Err(f),
        None => Ok(Accepted::Queued),
    }
}

/// Refuse before storing what the destinations would refuse now (disabled, stopping,
/// or full with overflow `reject`/`dead-letter`), so the sender gets `AR` and can
/// send it again, rather than a stored message nobody takes.
fn room_for(shared: &Shared, destinations: &[String]) -> Result<(), Failure> {
    for name in destinations {
        let Some(item) = shared.item(name) else {
            return Err(Failure::permanent(
                outward::UNKNOWN_TARGET,
                format!("no item named {name:?}"),
            ));
        };
        if !item.is_accepting() {
            return Err(Failure::transient(
                outward::ITEM_UNAVAILABLE,
                format!("item {name} is not taking messages"),
            ));
        }
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

/// Store `msg` queued at each destination (at the service, marked done, if it has
/// none). `Some` if it is a duplicate of an earlier upstream message.
async fn store_inbound(
    shared: &Shared,
    service: &ItemRuntime,
    msg: &Envelope,
    destinations: &[String],
    intake: Intake,
) -> Result<Option<Accepted>, Failure> {
    let Some(persist) = &shared.store else {
        return Ok(None);
    };
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
    if !wait {
        persist.detach(batch);
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let committed = persist.store().submit(batch).await;
    shared.metrics.store_commit(started.elapsed());
    match committed {
        Ok(outcome) => Ok(match outcome.applied.into_iter().next() {
            Some(Applied::Duplicate { original, ack }) => Some(Accepted::Duplicate { original, ack }),
            _ => None,
        }),
        Err(e) => {
            tracing::error!(item = %service_name, message_id = %msg.id, error = %e, "inbound message not stored, refused");
            Err(storage_failure(&e))
        }
    }
}
