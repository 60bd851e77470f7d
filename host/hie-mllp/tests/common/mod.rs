//! Helpers shared by the integration tests: listeners on 127.0.0.1, a raw MLLP peer,
//! and waiting with deadlines.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hie_hl7::Message;
use hie_hl7::ack::{AckCode, build_ack, build_nak_unparseable};
use hie_mllp::codec::{MllpCodec, frame};
use hie_mllp::metrics::ListenerMetrics;
use hie_mllp::server::{FrameHandler, HandlerFuture, HandlerReply, Listener, ListenerConfig, PeerInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An ADT^A01 with control id `id`.
pub fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|SND|FAC|RCV|FAC|20240101120000||ADT^A01|{id}|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\r")
        .into_bytes()
}

/// `count` framed ADT messages with control ids `{prefix}0`, `{prefix}1`, …, back to back.
pub fn pipelined(prefix: &str, count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| frame(&adt(&format!("{prefix}{i}"))))
        .collect()
}

/// ACKs parseable messages AA, NAKs others AR with the parser's reason.
pub struct AckHandler;

impl FrameHandler for AckHandler {
    fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move { HandlerReply::Send(Bytes::from(ack_for(&frame))) })
    }
}

/// The reply [`AckHandler`] gives.
pub fn ack_for(frame: &[u8]) -> Vec<u8> {
    match Message::parse(frame) {
        Ok(message) => build_ack(&message, AckCode::AA, None),
        Err(err) => build_nak_unparseable(&err.to_string()),
    }
}

/// MSA-2 of an ACK (panics if `reply` is not an ACK).
pub fn acked_id(reply: &[u8]) -> Option<String> {
    hie_hl7::ack::parse_ack(reply)
        .expect("reply is an ack")
        .control_id
}

/// A listener serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<ListenerMetrics>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), hie_mllp::MllpError>>,
}

impl Running {
    /// Cancel and wait for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
            .expect("serve ok");
    }
}

/// Start a listener on 127.0.0.1 (port 0 or `addr`) with `handler`.
pub async fn start_at(addr: SocketAddr, config: ListenerConfig, handler: Arc<dyn FrameHandler>) -> Running {
    let listener = Listener::bind(addr, config).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics = listener.metrics();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(listener.serve(handler, shutdown.clone()));
    Running {
        addr,
        metrics,
        shutdown,
        task,
    }
}

/// Start a listener on a free port of 127.0.0.1.
pub async fn start(config: ListenerConfig, handler: Arc<dyn FrameHandler>) -> Running {
    start_at(loopback(), config, handler).await
}

/// 127.0.0.1, any port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A raw MLLP peer that writes arbitrary bytes and reads frames.
pub struct RawPeer {
    pub stream: TcpStream,
    codec: MllpCodec,
    buf: BytesMut,
}

/// What a read from a [`RawPeer`] gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Frame(Bytes),
    Closed,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawPeer {
            stream,
            codec: MllpCodec::default(),
            buf: BytesMut::new(),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, payload: &[u8]) {
        self.write(&frame(payload)).await;
    }

    /// The next frame, or `Closed` on EOF or reset; panics after [`DEADLINE`].
    pub async fn read(&mut self) -> Read {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(Some(frame)) = self.codec.decode(&mut self.buf) {
                    return Read::Frame(frame);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return Read::Closed,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("a frame or the end of the connection within the deadline")
    }

    /// The next frame as an ACK; panics if the connection closed.
    pub async fn read_ack(&mut self) -> hie_hl7::ack::AckInfo {
        match self.read().await {
            Read::Frame(frame) => hie_hl7::ack::parse_ack(&frame).expect("reply is an ack"),
            Read::Closed => panic!("connection closed instead of a reply"),
        }
    }
}

/// Poll `check` until it holds; panic with `what` after [`DEADLINE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Client settings for tests: 5 s ACK timeout, a short backoff.
pub fn client_config(addr: SocketAddr) -> hie_mllp::client::ClientConfig {
    hie_mllp::client::ClientConfig {
        ack_timeout: Duration::from_secs(5),
        backoff: hie_mllp::client::Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        ..hie_mllp::client::ClientConfig::new(addr.to_string())
    }
}

/// A loopback address nothing listens on (bound once, then released).
pub async fn free_port() -> SocketAddr {
    let probe = tokio::net::TcpListener::bind(loopback()).await.expect("bind");
    probe.local_addr().expect("addr")
}
