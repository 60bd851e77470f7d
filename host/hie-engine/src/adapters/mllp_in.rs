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

use crate::adapters::accept_inbound;
use crate::delivery::{InboundResult, InboundWaiter, ReplyTo};
use crate::engine::{ItemRuntime, Shared};
use crate::error::EngineError;
use crate::outward;

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
        ..ListenerConfig::default()
    };
    let tcp = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    let listener = Listener::from_tcp(tcp, config);
    let local = listener.local_addr().map_err(bind_error)?;
    let handler = Arc::new(Inbound {
        shared: Arc::clone(shared),
        item: Arc::clone(item),
        mode: cfg.ack_mode,
        ack_timeout: cfg.ack_timeout,
    });
    tasks.spawn(async move {
        if let Err(err) = listener.serve(handler, shutdown).await {
            tracing::error!(item = %name, error = %err, "mllp listener failed");
        }
    });
    tracing::info!(item = %item.config.name, addr = %local, "mllp listener started");
    Ok(local)
}

struct Inbound {
    shared: Arc<Shared>,
    item: Arc<ItemRuntime>,
    mode: AckMode,
    ack_timeout: std::time::Duration,
}

impl FrameHandler for Inbound {
    fn handle(&self, frame: Bytes, peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move { HandlerReply::Send(self.accept(frame, peer).await) })
    }
}

impl Inbound {
    async fn accept(&self, frame: Bytes, peer: PeerInfo) -> Bytes {
        if let Err(err) = hie_hl7::Message::parse(&frame) {
            tracing::info!(item = %self.item.config.name, peer = %peer.addr, error = %err, "inbound frame is not hl7");
            return outward::unparseable(&err.to_string());
        }
        let mut msg = Envelope::hl7(self.item.config.name.clone(), frame.clone());
        msg.properties.insert("mllp.peer".into(), peer.addr.to_string());
        let id = msg.id;
        let (reply_to, waiter) = match self.mode {
            AckMode::Accept => (ReplyTo::Nobody, None),
            AckMode::Application => {
                let (w, rx) = InboundWaiter::new();
                (ReplyTo::Inbound(w), Some(rx))
            }
        };
        let result = match (
            accept_inbound(&self.shared, &self.item, msg, reply_to).await,
            waiter,
        ) {
            (Err(f), _) => InboundResult::Refused(f),
            (Ok(()), None) => InboundResult::Accepted,
            (Ok(()), Some(rx)) => match tokio::time::timeout(self.ack_timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => InboundResult::Failed(Failure::transient(
                    "internal",
                    "the route ended without an answer",
                )),
                Err(_) => InboundResult::Failed(Failure::transient(
                    outward::TIMEOUT,
                    format!("no result within {} ms", self.ack_timeout.as_millis()),
                )),
            },
        };
        if !matches!(result, InboundResult::Accepted | InboundResult::Replied(_)) {
            tracing::info!(item = %self.item.config.name, message_id = %id, result = ?result_code(&result), "inbound message not accepted");
        }
        outward::inbound_ack(&frame, &result)
    }
}

fn result_code(result: &InboundResult) -> &str {
    match result {
        InboundResult::Accepted | InboundResult::Replied(_) => "ok",
        InboundResult::Failed(f) | InboundResult::Refused(f) => &f.code,
    }
}
