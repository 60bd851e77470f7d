//! `mllp-in`: an MLLP listener feeding a service. Each frame becomes a message;
//! the ACK is decided by `outward::inbound_ack` (see there for the table).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hie_config::{AckMode, MllpInConfig};
use hie_core::{Envelope, Failure};
use hie_mllp::server::{FrameHandler, HandlerFuture, HandlerReply, Listener, ListenerConfig, PeerInfo};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use hie_store::WriteBatch;

use crate::adapters::{Accepted, Intake, accept_inbound, priority};
use crate::delivery::{InboundResult, InboundWaiter, ReplyTo};
use crate::engine::{ItemRuntime, Shared};
use crate::error::EngineError;
use crate::outward;
use crate::persist::{Progress, index_of};

/// Bind the listener of `item` and serve it until `shutdown`; returns the bound address.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    item: &Arc<ItemRuntime>,
    cfg: &MllpInConfig,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<SocketAddr, EngineError> {
    let name = item.config.name.clone();
    let text = format!("{}:{}", cfg.host, cfg.port);
    let bind_error = |source: std::io::Error| EngineError::Bind {
        item: name.clone(),
        addr: text.clone(),
        source,
    };
    let addr = tokio::net::lookup_host(&text)
        .await
        .map_err(bind_error)?
        .next()
        .ok_or_else(|| bind_error(std::io::Error::other("address resolves to nothing")))?;
    let config = ListenerConfig {
        max_connections: cfg.max_connections,
        max_in_flight: cfg.max_in_flight,
        ..ListenerConfig::default()
    };
    let tcp = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    let listener = Listener::from_tcp(tcp, config);
    let local = listener.local_addr().map_err(bind_error)?;
    shared.metrics.watch_listener(&name, listener.metrics());
    let handler = Arc::new(Inbound {
        shared: Arc::clone(shared),
        item: Arc::clone(item),
        mode: cfg.ack_mode,
        ack_timeout: cfg.ack_timeout,
        priority: cfg.priority.clone(),
    });
    tasks.spawn(async move {
        if let Err(err) = listener.serve(handler, shutdown).await {
            tracing::error!(item = %name, error = %err, "mllp listener failed");
        }
    });
    tracing::info!(item = %item.config.name, addr = %local, "mllp listener started");
    Ok(local)
}

#[derive(Clone)]
struct Inbound {
    shared: Arc<Shared>,
    item: Arc<ItemRuntime>,
    mode: AckMode,
    ack_timeout: std::time::Duration,
    priority: hie_config::InboundPriority,
}

impl FrameHandler for Inbound {
    /// Called one frame at a time per connection, in frame order, so messages are
    /// queued in the order they were sent. In application mode the wait for the
    /// route's result is returned as `HandlerReply::Later`: the listener goes on
    /// with the next frames (up to `max_in_flight`) and writes ACKs in frame order.
    fn handle(&self, frame: Bytes, peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(self.accept(frame, peer))
    }
}

impl Inbound {
    /// Store and route one frame; the ACK to send, if the mode sends one.
    async fn accept(&self, frame: Bytes, peer: PeerInfo) -> HandlerReply {
        let parsed = match hie_hl7::Message::parse(&frame) {
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = parsed {
            tracing::info!(item = %self.item.config.name, peer = %peer.addr, error = %err, "inbound frame is not hl7");
            return HandlerReply::Send(outward::unparseable(&err));
        }
        let mut msg = Envelope::hl7(self.item.config.name.clone(), frame.clone());
        msg.priority = priority::of(&self.priority, &frame, None);
        msg.properties.insert("mllp.peer".into(), peer.addr.to_string());
        let id = msg.id;
        match self.mode {
            AckMode::Commit | AckMode::Never => {
                let ack = outward::inbound_ack(&frame, &InboundResult::Accepted);
                let intake = Intake::Commit {
                    dedup: true,
                    ack: Some(ack.clone()),
                };
                let mut admission =
                    accept_inbound(&self.shared, &self.item, msg, ReplyTo::Nobody, intake).await;
                match admission.decided() {
                    Some(accepted) => self.commit_reply(id, &frame, ack, accepted),
                    // queued behind its commit: the next frames go on meanwhile, and the
                    // ACK is sent (in frame order) once this one is stored
                    None => {
                        let this = self.clone();
                        HandlerReply::later(async move {
                            let accepted = admission.settle().await;
                            this.commit_reply(id, &frame, ack, accepted)
                        })
                    }
                }
            }
            AckMode::Immediate => {
                let admission =
                    accept_inbound(&self.shared, &self.item, msg, ReplyTo::Nobody, Intake::Detached).await;
                let result = match admission.settle().await {
                    Ok(_) => InboundResult::Accepted,
                    Err(f) => InboundResult::Refused(f),
                };
                self.log_refusal(id, &result);
                HandlerReply::Send(outward::inbound_ack(&frame, &result))
            }
            AckMode::Application => self.application(msg, frame).await,
        }
    }

    /// The reply in `commit` (or `never`) mode once the intake is decided: the ACK
    /// cached with the message, the earlier copy's ACK for a duplicate, else a NAK.
    fn commit_reply(
        &self,
        id: hie_core::MessageId,
        frame: &[u8],
        ack: Bytes,
        accepted: Result<Accepted, Failure>,
    ) -> HandlerReply {
        let result = match accepted {
            Ok(Accepted::Queued) => InboundResult::Replied(ack),
            Ok(Accepted::Duplicate {
                original,
                ack: cached,
            }) => {
                tracing::info!(item = %self.item.config.name, message_id = %original, "duplicate of a stored message, sent its ACK again");
                // stored without a cached ACK (application mode before a restart): it is stored
                InboundResult::Replied(cached.unwrap_or(ack))
            }
            Err(f) => InboundResult::Refused(f),
        };
        self.log_refusal(id, &result);
        if self.mode == AckMode::Never {
            return HandlerReply::Silent;
        }
        HandlerReply::Send(outward::inbound_ack(frame, &result))
    }

    /// Application mode: stored first, then the ACK waits for the route's result and
    /// is recorded for de-duplication. A re-send of a message still in progress gets
    /// `AR` ("in progress, send it again later"), one already finished its recorded
    /// ACK (or `AA`/`AE` from its stored state if the ACK was not recorded).
    ///
    /// The message is queued before this returns; the wait for its result is the
    /// `HandlerReply::Later` part, so the next frames of the connection are queued
    /// meanwhile (pipelining).
    async fn application(&self, msg: Envelope, frame: Bytes) -> HandlerReply {
        let id = msg.id;
        let (w, rx) = InboundWaiter::new();
        let intake = Intake::Commit {
            dedup: true,
            ack: None,
        };
        let admission = accept_inbound(&self.shared, &self.item, msg, ReplyTo::Inbound(w), intake).await;
        let result = match admission.settle().await {
            Err(f) => InboundResult::Refused(f),
            Ok(Accepted::Duplicate { ack: Some(ack), .. }) => InboundResult::Replied(ack),
            Ok(Accepted::Duplicate { original, ack: None }) => self.duplicate_in_progress(original),
            Ok(Accepted::Queued) => {
                let this = self.clone();
                return HandlerReply::later(async move {
                    let result = match tokio::time::timeout(this.ack_timeout, rx).await {
                        Ok(Ok(result)) => result,
                        Ok(Err(_)) => InboundResult::Failed(Failure::transient(
                            "internal",
                            "the route ended without an answer",
                        )),
                        Err(_) => InboundResult::Failed(Failure::transient(
                            outward::TIMEOUT,
                            format!("no result within {} ms", this.ack_timeout.as_millis()),
                        )),
                    };
                    this.record_ack(&frame, &result);
                    this.log_refusal(id, &result);
                    HandlerReply::Send(outward::inbound_ack(&frame, &result))
                });
            }
        };
        self.log_refusal(id, &result);
        HandlerReply::Send(outward::inbound_ack(&frame, &result))
    }

    fn log_refusal(&self, id: hie_core::MessageId, result: &InboundResult) {
        if !matches!(result, InboundResult::Accepted | InboundResult::Replied(_)) {
            tracing::info!(item = %self.item.config.name, message_id = %id, result = ?result_code(result), "inbound message not accepted");
        }
    }

    /// Cache the final ACK of an application-mode message for re-sends. A timeout is
    /// not final (the route goes on), so it is not cached.
    fn record_ack(&self, frame: &[u8], result: &InboundResult) {
        let Some(persist) = &self.shared.store else {
            return;
        };
        if let InboundResult::Failed(f) = result
            && f.code == outward::TIMEOUT
        {
            return;
        }
        let Some(key) = index_of(frame).ack_key() else {
            return;
        };
        let mut batch = WriteBatch::new();
        batch.record_ack(&key, outward::inbound_ack(frame, result));
        persist.detach(batch);
    }

    fn duplicate_in_progress(&self, original: hie_core::MessageId) -> InboundResult {
        let progress = match &self.shared.store {
            Some(persist) => persist.progress(original),
            None => Progress::Unknown,
        };
        tracing::info!(item = %self.item.config.name, message_id = %original, progress = ?progress, "re-sent message is already stored");
        match progress {
            Progress::Done => InboundResult::Accepted,
            Progress::DeadLettered => InboundResult::Failed(Failure::permanent(
                "dead-lettered",
                format!("message {original} was stored earlier and is a dead letter"),
            )),
            Progress::Open | Progress::Unknown => InboundResult::Refused(Failure::transient(
                IN_PROGRESS,
                format!("message {original} is stored and still being processed; send it again later"),
            )),
        }
    }
}

/// Failure code of a re-send whose first copy is still being processed (application mode).
pub const IN_PROGRESS: &str = "in-progress";

fn result_code(result: &InboundResult) -> &str {
    match result {
        InboundResult::Accepted | InboundResult::Replied(_) => "ok",
        InboundResult::Failed(f) | InboundResult::Refused(f) => &f.code,
    }
}
