//! Adapters: how messages enter a production (`mllp-in`, `file-in`) and leave it
//! (`mllp-out`, `file-out`).

pub mod file_in;
pub mod mllp_in;
pub mod outbound;

use std::sync::Arc;

use hie_core::{Envelope, Failure};

use crate::delivery::{Delivery, ReplyTo, Work};
use crate::engine::{ItemRuntime, ItemState, Shared};
use crate::worker::stamp;

/// Hand an inbound message to its service. A running service without a plugin
/// or hooks only passes messages on, so the message goes straight to the
/// service's targets (one queue hop less); otherwise it enters the service's queue.
pub(crate) async fn accept_inbound(
    shared: &Arc<Shared>,
    service: &ItemRuntime,
    msg: Envelope,
    reply_to: ReplyTo,
) -> Result<(), Failure> {
    let config = &service.config;
    let direct =
        config.plugin.is_none() && config.hooks.is_empty() && *service.state.lock() == ItemState::Running;
    if !direct {
        return shared
            .deliver_async(&config.name, Delivery::message_to(msg, reply_to))
            .await
            .map_err(|e| e.failure);
    }
    let mut reply_to = Some(reply_to);
    let mut first_failure = None;
    for target in &config.targets {
        let m = stamp(msg.clone(), &msg, &config.name, target);
        let delivery = Delivery {
            work: Work::Message(m),
            reply_to: reply_to.take().unwrap_or_default(),
        };
        if let Err(e) = shared.deliver_async(target, delivery).await {
            if first_failure.is_none() {
                first_failure = Some(e.failure);
            } else if let Some(m) = e.message {
                // The sender gets a NAK for the first target only; later ones are kept here.
                shared.dead_letters.put(target, *m, e.failure);
            }
        }
    }
    if let Some(reply_to) = reply_to {
        shared.resolve(reply_to, Ok(None));
    }
    match first_failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
