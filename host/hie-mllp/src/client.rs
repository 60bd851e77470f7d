//! The outbound MLLP client: a persistent connection, reconnects with exponential
//! backoff, and waits for each reply within an ACK timeout.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::codec::{CodecConfig, MllpCodec, encode_frame};
use crate::error::MllpError;
use crate::tls::ClientTls;

/// Delays between connection attempts: `initial`, doubled after each failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

/// When the next connection attempt may start: right away until one fails, then
/// after the backoff's delay, doubled after each failure, reset by a success. Kept
/// across calls, so a caller that retries does not hammer a receiver that is down.
#[derive(Debug, Clone)]
pub(crate) struct Pacing {
    backoff: Backoff,
    next_delay: Duration,
    next_attempt_at: Option<Instant>,
}

impl Pacing {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Pacing {
            backoff,
            next_delay: backoff.initial,
            next_attempt_at: None,
        }
    }

    /// How long to wait before the next attempt.
    pub(crate) fn wait(&self) -> Duration {
        self.next_attempt_at
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn succeeded(&mut self) {
        self.next_delay = self.backoff.initial;
        self.next_attempt_at = None;
    }

    pub(crate) fn failed(&mut self) {
        self.next_attempt_at = Some(Instant::now() + self.next_delay);
        self.next_delay = (self.next_delay * 2).min(self.backoff.max);
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where to connect: `host:port`.
    pub addr: String,
    /// Time allowed for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Time allowed between the end of sending a frame and a complete reply.
    pub ack_timeout: Duration,
    /// Reply size limit and trailing-CR strictness.
    pub codec: CodecConfig,
    /// Delays between connection attempts.
    pub backoff: Backoff,
    /// Connection attempts per [`MllpClient::call`] before it gives up (at least 1).
    pub connect_attempts: u32,
    /// TLS settings (`None`: plain TCP).
    pub tls: Option<ClientTls>,
}

impl ClientConfig {
    /// Defaults for `addr`: connect timeout 5 s, ACK timeout 30 s, one attempt per call.
    pub fn new(addr: impl Into<String>) -> Self {
        ClientConfig {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            codec: CodecConfig::default(),
            backoff: Backoff::default(),
            connect_attempts: 1,
            tls: None,
        }
    }
}

/// Any byte stream a connection can run on (TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

type BoxStream = Box<dyn Stream>;

/// One open MLLP connection, split into a sending and a receiving half.
pub struct Connection {
    /// Sends frames.
    pub sender: FrameSender,
    /// Receives frames (replies), in order.
    pub receiver: FrameReceiver,
}

impl Connection {
    /// Connect (and do the TLS handshake) within `config.connect_timeout`.
    pub async fn open(config: &ClientConfig) -> Result<Self, MllpError> {
        let timeout = config.connect_timeout;
        let setup = async {
            let tcp = TcpStream::connect(&config.addr)
                .await
                .map_err(|err| MllpError::from_connect_io(err, &config.addr))?;
            // Frames go out whole; waiting to coalesce them only adds latency.
            tcp.set_nodelay(true)?;
            let stream: BoxStream = match &config.tls {
                None => Box::new(tcp),
                Some(tls) => Box::new(tls.connector().connect(tls.server_name(), tcp).await.map_err(
                    |err| MllpError::TlsHandshake {
                        peer: config.addr.clone(),
                        detail: err.to_string(),
                    },
                )?),
            };
            Ok::<_, MllpError>(stream)
        };
        let stream =
            tokio::time::timeout(timeout, setup)
                .await
                .map_err(|_| MllpError::ConnectTimeout {
                    addr: config.addr.clone(),
                    timeout_ms: millis(timeout),
                })??;
        let (rd, wr) = tokio::io::split(stream);
        Ok(Connection {
            sender: FrameSender {
                wr,
                out: BytesMut::new(),
                max_frame_len: config.codec.max_frame_len,
            },
            receiver: FrameReceiver {
                rd,
                codec: MllpCodec::new(config.codec),
                buf: BytesMut::with_capacity(8 * 1024),
            },
        })
    }
}

/// The sending half of a [`Connection`].
pub struct FrameSender {
    wr: WriteHalf<BoxStream>,
    out: BytesMut,
    max_frame_len: usize,
}

impl FrameSender {
    /// Frame `payload` into the send buffer; nothing is written until [`flush`](Self::flush).
    pub fn queue(&mut self, payload: &[u8]) -> Result<(), MllpError> {
        if payload.len() > self.max_frame_len {
            return Err(MllpError::FrameTooLarge {
                limit: self.max_frame_len,
            });
        }
        encode_frame(payload, &mut self.out);
        Ok(())
    }

    /// Write every queued frame to the socket.
    pub async fn flush(&mut self) -> Result<(), MllpError> {
        if !self.out.is_empty() {
            self.wr.write_all(&self.out).await?;
            self.out.clear();
        }
        self.wr.flush().await?;
        Ok(())
    }

    /// Queue one frame and flush.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), MllpError> {
        self.queue(payload)?;
        self.flush().await
    }
}

/// The receiving half of a [`Connection`].
pub struct FrameReceiver {
    rd: ReadHalf<BoxStream>,
    codec: MllpCodec,
    buf: BytesMut,
}

impl FrameReceiver {
    /// The next frame; [`MllpError::ResetByPeer`] if the peer closes first.
    pub async fn next_frame(&mut self) -> Result<Bytes, MllpError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf)? {
                return Ok(frame);
            }
            self.buf.reserve(8 * 1024);
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                self.codec.decode_eof(&mut self.buf)?;
                return Err(MllpError::ResetByPeer);
            }
        }
    }

    /// The next frame within `timeout`, else [`MllpError::Timeout`].
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Result<Bytes, MllpError> {
        tokio::time::timeout(timeout, self.next_frame())
            .await
            .map_err(|_| MllpError::Timeout {
                timeout_ms: millis(timeout),
            })?
    }
}

/// A request/reply MLLP client over one persistent connection.
///
/// The connection is opened on first use and reopened after any error. Failed
/// connection attempts are spaced by [`ClientConfig::backoff`], also across calls,
/// so a caller that retries does not hammer a receiver that is down.
pub struct MllpClient {
    config: ClientConfig,
    connection: Option<Connection>,
    pacing: Pacing,
    opened: u64,
}

impl MllpClient {
    /// A client for `config`; it connects on the first call.
    pub fn new(config: ClientConfig) -> Self {
        MllpClient {
            pacing: Pacing::new(config.backoff),
            config,
            connection: None,
            opened: 0,
        }
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// How many connections this client has opened so far (reconnects included).
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Close the connection, if any (the next call reconnects).
    pub async fn close(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            let _ = connection.sender.wr.shutdown().await;
        }
    }

    /// Open the connection if it is not open, waiting out the backoff of earlier failures.
    pub async fn connect(&mut self) -> Result<(), MllpError> {
        self.ensure_connected().await.map(|_| ())
    }

    /// Send `frame` and wait for its reply within the ACK timeout.
    ///
    /// A connection that turns out to have been closed by the peer while idle is
    /// reopened once and the frame resent; any other error closes the connection and
    /// is returned (the caller's reply policy decides about retrying).
    pub async fn call(&mut self, frame: &[u8]) -> Result<Bytes, MllpError> {
        let fresh = self.ensure_connected().await?;
        match self.exchange(frame).await {
            Err(MllpError::ResetByPeer) if !fresh => {
                tracing::debug!(addr = %self.config.addr, "mllp connection went stale, reconnecting");
                self.ensure_connected().await?;
                self.exchange(frame).await
            }
            result => result,
        }
    }

    async fn exchange(&mut self, frame: &[u8]) -> Result<Bytes, MllpError> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(MllpError::ResetByPeer);
        };
        let ack_timeout = self.config.ack_timeout;
        let result = async {
            connection.sender.send(frame).await?;
            connection.receiver.next_frame_within(ack_timeout).await
        }
        .await;
        if result.is_err() {
            // A late reply on this connection would be taken for the next frame's.
            self.connection = None;
        }
        result
    }

    /// Connect if needed; `Ok(true)` if a new connection was opened.
    async fn ensure_connected(&mut self) -> Result<bool, MllpError> {
        if self.connection.is_some() {
            return Ok(false);
        }
        let mut attempts = self.config.connect_attempts.max(1);
        loop {
            tokio::time::sleep(self.pacing.wait()).await;
            match Connection::open(&self.config).await {
                Ok(connection) => {
                    self.connection = Some(connection);
                    self.opened += 1;
                    self.pacing.succeeded();
                    return Ok(true);
                }
                Err(err) => {
                    tracing::debug!(addr = %self.config.addr, error = %err, "mllp connect failed");
                    self.pacing.failed();
                    attempts -= 1;
                    if attempts == 0 {
                        return Err(err);
                    }
                }
            }
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
