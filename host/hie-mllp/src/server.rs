//! The inbound MLLP listener.
//!
//! Each connection gets one task with two halves joined together: a reader that
//! decodes frames into a bounded queue (at most [`ListenerConfig::read_ahead_frames`]
//! frames ahead of the handler, so a slow handler pushes back on the TCP socket) and
//! a replier that hands frames to the [`FrameHandler`] one at a time, in frame
//! order, and writes the replies in the same order, batching writes while more
//! replies are ready. A handler that answers [`HandlerReply::Later`] lets the
//! replier go on to the next frames while that reply is pending (pipelining, at
//! most [`ListenerConfig::max_in_flight`] pending per connection).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::{CodecConfig, MllpCodec, encode_frame};
use crate::error::MllpError;
use crate::metrics::ListenerMetrics;
use crate::tls;

/// How many bytes the reader asks the socket for at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Who sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The sender's address.
    pub addr: SocketAddr,
    /// The listener's own address for this connection.
    pub local_addr: SocketAddr,
    /// A number unique per connection within this process.
    pub connection_id: u64,
    /// True if the connection is TLS.
    pub tls: bool,
}

/// What the listener does after a frame was handled.
#[derive(Debug)]
pub enum HandlerReply {
    /// Frame these bytes, send them, and keep reading.
    Send(Bytes),
    /// Send the reply if there is one, then close the connection.
    Close(Option<Bytes>),
    /// Send nothing for this frame and keep reading (a sender that wants no ACK).
    Silent,
    /// The frame is admitted; its reply comes later. Meanwhile the listener hands
    /// the next frames of the connection to the handler (up to
    /// [`ListenerConfig::max_in_flight`] pending replies), and still writes the
    /// replies in frame order.
    Later(LaterReply),
}

impl HandlerReply {
    /// A reply that `future` gives later (see [`HandlerReply::Later`]).
    pub fn later(future: impl Future<Output = HandlerReply> + Send + 'static) -> Self {
        HandlerReply::Later(LaterReply(Box::pin(future)))
    }
}

/// The future of a deferred reply (see [`HandlerReply::Later`]).
pub struct LaterReply(Pin<Box<dyn Future<Output = HandlerReply> + Send + 'static>>);

impl std::fmt::Debug for LaterReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LaterReply(..)")
    }
}

impl LaterReply {
    /// Wait for the final reply (through any further deferrals).
    async fn resolve(self) -> FinalReply {
        let mut reply = self.0.await;
        loop {
            match reply {
                HandlerReply::Later(later) => reply = later.0.await,
                other => return FinalReply::of(other),
            }
        }
    }
}

/// What is written for one frame: the reply bytes, and whether to close after them.
struct FinalReply {
    bytes: Option<Bytes>,
    close: bool,
}

impl FinalReply {
    fn of(reply: HandlerReply) -> FinalReply {
        match reply {
            HandlerReply::Send(b) => FinalReply {
                bytes: Some(b),
                close: false,
            },
            HandlerReply::Close(bytes) => FinalReply { bytes, close: true },
            HandlerReply::Silent => FinalReply {
                bytes: None,
                close: false,
            },
            HandlerReply::Later(_) => unreachable!("deferred replies are resolved first"),
        }
    }
}

/// Why the listener answered a frame itself instead of passing it to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A frame with no payload (`0x0B 0x1C 0x0D`); the connection goes on.
    EmptyFrame,
    /// A frame over the size limit; the connection is closed after the reply.
    FrameTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Invalid framing (strict mode); the connection is closed after the reply.
    Framing {
        /// What was wrong.
        detail: String,
    },
    /// A frame started but did not end in time; the connection is closed after the reply.
    FrameTimeout {
        /// The frame-completion timeout.
        timeout: Duration,
    },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::EmptyFrame => f.write_str("empty frame"),
            Rejection::FrameTooLarge { limit } => {
                write!(f, "frame larger than the limit of {limit} bytes")
            }
            Rejection::Framing { detail } => write!(f, "invalid mllp framing: {detail}"),
            Rejection::FrameTimeout { timeout } => {
                write!(f, "frame not completed within {} ms", timeout.as_millis())
            }
        }
    }
}

/// The future a [`FrameHandler`] returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = HandlerReply> + Send + 'a>>;

/// What the listener calls for each frame.
///
/// Per connection, `handle` is called one frame at a time, in frame order: the
/// next call starts only when the previous future has finished. A handler that
/// wants several frames of a connection worked on at once returns
/// [`HandlerReply::Later`] as soon as it has admitted a frame (for the engine:
/// queued it); replies are still written in frame order.
pub trait FrameHandler: Send + Sync + 'static {
    /// Handle one frame's payload and say what to send back.
    fn handle(&self, frame: Bytes, peer: PeerInfo) -> HandlerFuture<'_>;

    /// The reply to a frame the listener rejects itself (default: an AR NAK with the reason).
    fn reject(&self, rejection: &Rejection, peer: &PeerInfo) -> Bytes {
        let _ = peer;
        Bytes::from(hie_hl7::ack::build_nak_unparseable(&rejection.to_string()))
    }
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Frame size limit and trailing-CR strictness.
    pub codec: CodecConfig,
    /// Close a connection that completes no frame for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A started frame must end within this time, or the connection is cut (slowloris).
    pub frame_timeout: Duration,
    /// Connections beyond this many are accepted and closed at once.
    pub max_connections: usize,
    /// Frames read ahead of the handler per connection before the reader stops reading.
    pub read_ahead_frames: usize,
    /// Deferred replies ([`HandlerReply::Later`]) pending per connection before the
    /// listener stops handing further frames to the handler. Frames read but not
    /// yet answered are at most `read_ahead_frames + max_in_flight + 1`.
    pub max_in_flight: usize,
    /// TLS server settings (`None`: plain TCP).
    pub tls: Option<tls::ServerTls>,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            codec: CodecConfig::default(),
            idle_timeout: None,
            frame_timeout: Duration::from_secs(30),
            max_connections: 1024,
            read_ahead_frames: 64,
            max_in_flight: 32,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl ListenerConfig {
    /// This config with TLS from a PEM certificate chain and a PEM private key file.
    pub fn with_tls_files(mut self, cert: &Path, key: &Path) -> Result<Self, MllpError> {
        self.tls = Some(tls::ServerTls::from_pem_files(cert, key)?);
        Ok(self)
    }
}

/// A bound MLLP listener, ready to [`serve`](Listener::serve).
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    config: ListenerConfig,
    metrics: Arc<ListenerMetrics>,
}

impl Listener {
    /// Bind to `addr` (port 0 picks a free port; see [`Listener::local_addr`]).
    pub async fn bind(addr: SocketAddr, config: ListenerConfig) -> Result<Self, MllpError> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listener::from_tcp(tcp, config))
    }

    /// Wrap an already bound tokio listener.
    pub fn from_tcp(tcp: TcpListener, config: ListenerConfig) -> Self {
        Listener {
            tcp,
            config,
            metrics: Arc::new(ListenerMetrics::default()),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The live counters of this listener (shared; read them any time).
    pub fn metrics(&self) -> Arc<ListenerMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Accept and serve connections until `shutdown` is cancelled, then stop accepting,
    /// let every connection finish the frames it has read, and return.
    pub async fn serve(
        self,
        handler: Arc<dyn FrameHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), MllpError> {
        let shared = Arc::new(Shared {
            config: self.config,
            metrics: self.metrics,
            handler,
            shutdown,
        });
        let slots = Arc::new(Semaphore::new(shared.config.max_connections));
        let tasks = TaskTracker::new();
        let mut next_id = 0u64;
        loop {
            let accepted = tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                accepted = self.tcp.accept() => accepted,
            };
            let (tcp, addr) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "mllp accept failed");
                    tokio::select! {
                        _ = shared.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                shared
                    .metrics
                    .connections_rejected
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %addr, limit = shared.config.max_connections, "mllp connection refused: too many connections");
                drop(tcp);
                continue;
            };
            next_id += 1;
            let peer = PeerInfo {
                addr,
                local_addr: tcp.local_addr().unwrap_or(addr),
                connection_id: next_id,
                tls: shared.config.tls.is_some(),
            };
            let shared = Arc::clone(&shared);
            tasks.spawn(async move {
                let _slot = slot;
                shared.run_connection(tcp, peer).await;
            });
        }
        tasks.close();
        tasks.wait().await;
        Ok(())
    }
}

/// Bind `addr` and serve until `shutdown` (see [`Listener::serve`]).
pub async fn serve(
    addr: SocketAddr,
    config: ListenerConfig,
    handler: Arc<dyn FrameHandler>,
    shutdown: CancellationToken,
) -> Result<(), MllpError> {
    Listener::bind(addr, config).await?.serve(handler, shutdown).await
}

/// What the reader passes to the replier.
enum Inbound {
    Frame(Bytes),
    Reject { rejection: Rejection, fatal: bool },
}

struct Shared {
    config: ListenerConfig,
    metrics: Arc<ListenerMetrics>,
    handler: Arc<dyn FrameHandler>,
    shutdown: CancellationToken,
}

/// Decrements the open-connections gauge however the connection ends.
struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    async fn run_connection(&self, tcp: TcpStream, peer: PeerInfo) {
        self.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        self.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        let _open = OpenConnection(&self.metrics.connections_open);
        // Replies are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        tracing::debug!(peer = %peer.addr, connection = peer.connection_id, "mllp connection opened");
        match &self.config.tls {
            None => self.run_frames(tcp, peer).await,
            Some(tls) => {
                let handshake = tls.acceptor().accept(tcp);
                match tokio::time::timeout(self.config.tls_handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => self.run_frames(stream, peer).await,
                    Ok(Err(err)) => self.tls_failed(&peer, &err.to_string()),
                    Err(_) => self.tls_failed(&peer, "handshake timed out"),
                }
            }
        }
        tracing::debug!(peer = %peer.addr, connection = peer.connection_id, "mllp connection closed");
    }

    fn tls_failed(&self, peer: &PeerInfo, detail: &str) {
        self.metrics
            .tls_handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %peer.addr, error = detail, "mllp tls handshake failed");
    }

    async fn run_frames<S>(&self, stream: S, peer: PeerInfo)
    where
        S: AsyncRead + AsyncWrite + Send,
    {
        let (rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(self.config.read_ahead_frames.max(1));
        let stop = self.shutdown.child_token();
        tokio::join!(
            self.read_frames(rd, tx, &stop, &peer),
            self.write_replies(wr, rx, &stop, &peer)
        );
    }

    /// Decode frames into `tx` until EOF, an error, a timeout or `stop`.
    async fn read_frames<R: AsyncRead>(
        &self,
        rd: R,
        tx: mpsc::Sender<Inbound>,
        stop: &CancellationToken,
        peer: &PeerInfo,
    ) {
        let mut rd = std::pin::pin!(rd);
        let mut codec = MllpCodec::new(self.config.codec);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut last_frame_at = Instant::now();
        let mut frame_started_at: Option<Instant> = None;
        loop {
            let decoded = self.decode_available(&mut codec, &mut buf, &tx).await;
            self.metrics
                .junk_bytes
                .fetch_add(codec.take_junk_bytes(), Ordering::Relaxed);
            match decoded {
                Decoded::Frames(0) => {}
                Decoded::Frames(_) => last_frame_at = Instant::now(),
                Decoded::Done => return,
            }
            frame_started_at = match (codec.in_frame(), frame_started_at) {
                (false, _) => None,
                (true, None) => Some(Instant::now()),
                (true, started) => started,
            };
            let deadline = match frame_started_at {
                Some(started) => Some(started + self.config.frame_timeout),
                None => self.config.idle_timeout.map(|idle| last_frame_at + idle),
            };
            buf.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                read = rd.read_buf(&mut buf) => match read {
                    Ok(0) => {
                        if codec.decode_eof(&mut buf).is_err() {
                            self.metrics.frame_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(peer = %peer.addr, "mllp connection closed inside a frame");
                        }
                        return;
                    }
                    Ok(n) => {
                        self.metrics.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(err) => {
                        tracing::debug!(peer = %peer.addr, error = %err, "mllp read failed");
                        return;
                    }
                },
                _ = sleep_until(deadline) => {
                    self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                    if frame_started_at.is_some() {
                        self.metrics.frame_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %peer.addr, "mllp frame not completed in time, closing");
                        let rejection = Rejection::FrameTimeout { timeout: self.config.frame_timeout };
                        let _ = tx.send(Inbound::Reject { rejection, fatal: true }).await;
                    } else {
                        tracing::debug!(peer = %peer.addr, "mllp connection idle, closing");
                    }
                    return;
                }
            }
        }
    }

    /// Pass every complete frame in `buf` on; `Done` when the connection must stop reading.
    async fn decode_available(
        &self,
        codec: &mut MllpCodec,
        buf: &mut BytesMut,
        tx: &mpsc::Sender<Inbound>,
    ) -> Decoded {
        let mut frames = 0;
        loop {
            let inbound = match codec.decode(buf) {
                Ok(None) => return Decoded::Frames(frames),
                Ok(Some(frame)) => {
                    frames += 1;
                    self.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
                    if frame.is_empty() {
                        self.metrics.frame_errors.fetch_add(1, Ordering::Relaxed);
                        Inbound::Reject {
                            rejection: Rejection::EmptyFrame,
                            fatal: false,
                        }
                    } else {
                        Inbound::Frame(frame)
                    }
                }
                Err(err) => {
                    self.metrics.frame_errors.fetch_add(1, Ordering::Relaxed);
                    let rejection = match err {
                        MllpError::FrameTooLarge { limit } => Rejection::FrameTooLarge { limit },
                        other => Rejection::Framing {
                            detail: other.to_string(),
                        },
                    };
                    let _ = tx
                        .send(Inbound::Reject {
                            rejection,
                            fatal: true,
                        })
                        .await;
                    return Decoded::Done;
                }
            };
            if tx.send(inbound).await.is_err() {
                return Decoded::Done;
            }
        }
    }

    /// Admit frames to the handler one at a time in frame order, keep up to
    /// [`ListenerConfig::max_in_flight`] deferred replies pending at once, and write
    /// the replies in frame order; cancels `stop` when done.
    async fn write_replies<W: AsyncWrite>(
        &self,
        wr: W,
        mut rx: mpsc::Receiver<Inbound>,
        stop: &CancellationToken,
        peer: &PeerInfo,
    ) {
        let mut wr = std::pin::pin!(wr);
        let mut out = BytesMut::new();
        let max_in_flight = self.config.max_in_flight.max(1);
        let mut pending: FuturesOrdered<ReplyFuture> = FuturesOrdered::new();
        let mut admitting: Option<HandlerFuture<'_>> = None;
        let mut input_done = false;
        loop {
            if input_done && admitting.is_none() && pending.is_empty() {
                break;
            }
            let step = tokio::select! {
                biased;
                Some(reply) = pending.next(), if !pending.is_empty() => Step::Reply(reply),
                reply = async { admitting.as_mut().expect("guarded").await }, if admitting.is_some() => Step::Admitted(reply),
                inbound = rx.recv(), if !input_done && admitting.is_none() && pending.len() < max_in_flight => match inbound {
                    Some(inbound) => Step::Inbound(inbound),
                    None => Step::InputDone,
                },
                else => break,
            };
            match step {
                Step::InputDone => input_done = true,
                Step::Inbound(Inbound::Frame(frame)) => {
                    admitting = Some(self.handler.handle(frame, *peer));
                }
                Step::Inbound(Inbound::Reject { rejection, fatal }) => {
                    tracing::debug!(peer = %peer.addr, reason = %rejection, "mllp frame rejected");
                    let reply = FinalReply {
                        bytes: Some(self.handler.reject(&rejection, peer)),
                        close: fatal,
                    };
                    pending.push_back(Box::pin(std::future::ready(reply)));
                }
                Step::Admitted(reply) => {
                    admitting = None;
                    pending.push_back(match reply {
                        HandlerReply::Later(later) => Box::pin(later.resolve()),
                        ready => Box::pin(std::future::ready(FinalReply::of(ready))),
                    });
                }
                Step::Reply(first) => {
                    // Take every reply that is ready now, in order, and write them together.
                    let mut next = Some(first);
                    let mut close = false;
                    while let Some(reply) = next.take() {
                        if let Some(bytes) = reply.bytes {
                            encode_frame(&bytes, &mut out);
                            self.metrics.replies_out.fetch_add(1, Ordering::Relaxed);
                        }
                        if reply.close {
                            close = true;
                            break;
                        }
                        if !pending.is_empty() {
                            next = pending.next().now_or_never().flatten();
                        }
                    }
                    if !out.is_empty() && !self.flush(&mut wr, &mut out, peer).await {
                        break;
                    }
                    if close {
                        break;
                    }
                }
            }
        }
        stop.cancel();
        let _ = wr.shutdown().await;
    }

    /// Write `out` and clear it; false if the connection must close.
    async fn flush<W: AsyncWrite>(&self, wr: &mut Pin<&mut W>, out: &mut BytesMut, peer: &PeerInfo) -> bool {
        // A peer that stops reading its replies must not hold the connection forever.
        let write = tokio::time::timeout(self.config.frame_timeout, wr.write_all(out));
        match write.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(peer = %peer.addr, error = %err, "mllp write failed");
                return false;
            }
            Err(_) => {
                self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %peer.addr, "mllp peer does not read its replies, closing");
                return false;
            }
        }
        self.metrics
            .bytes_out
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        out.clear();
        true
    }
}

/// A reply in the per-connection ordered queue.
type ReplyFuture = Pin<Box<dyn Future<Output = FinalReply> + Send>>;

/// What the connection loop does next.
enum Step {
    Inbound(Inbound),
    InputDone,
    Admitted(HandlerReply),
    Reply(FinalReply),
}

enum Decoded {
    Frames(usize),
    Done,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
