//! [`BlockingClient`]: the request/reply client of [`crate::client::MllpClient`]
//! on a plain blocking socket, for callers that are OS threads anyway (the
//! engine's operation workers). A reply then wakes the waiting thread straight
//! from the kernel, where the async client first wakes the runtime's reactor,
//! which wakes the thread: one context switch less per message each way.
//!
//! Same behaviour as the async client: connect on first use within the connect
//! timeout, reconnect after any error with the backoff spaced across calls, one
//! silent retry when an idle connection turns out to have been closed by the
//! peer, and the ACK timeout from the end of sending to a complete reply. Plain
//! TCP only: a TLS peer uses the async client.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::client::{ClientConfig, Pacing, millis};
use crate::codec::{MllpCodec, encode_frame};
use crate::error::MllpError;

/// A request/reply MLLP client over one persistent blocking TCP connection.
pub struct BlockingClient {
    config: ClientConfig,
    connection: Option<Conn>,
    pacing: Pacing,
    opened: u64,
}

struct Conn {
    stream: TcpStream,
    codec: MllpCodec,
    buf: BytesMut,
    out: BytesMut,
    /// The socket's read timeout is shorter than the ACK timeout (it was cut to
    /// what was left of a reply that came in several reads) and must be reset.
    read_timeout_cut: bool,
}

impl BlockingClient {
    /// A client for `config`; it connects on the first call. `None` when the
    /// config asks for TLS, which this client does not speak.
    pub fn new(config: ClientConfig) -> Option<Self> {
        if config.tls.is_some() {
            return None;
        }
        Some(BlockingClient {
            pacing: Pacing::new(config.backoff),
            config,
            connection: None,
            opened: 0,
        })
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

    /// Send `frame` and wait for its reply within the ACK timeout; see
    /// [`crate::client::MllpClient::call`].
    pub fn call(&mut self, frame: &[u8]) -> Result<Bytes, MllpError> {
        if frame.len() > self.config.codec.max_frame_len {
            return Err(MllpError::FrameTooLarge {
                limit: self.config.codec.max_frame_len,
            });
        }
        self.pipeline(&[frame]).pop().expect("one result per frame")
    }

    /// Send `frames` back to back on one connection, then read their replies in
    /// order (a peer answers the frames of a connection in the order it reads them):
    /// one write and as few reads as the replies need, instead of a round trip per
    /// frame. Each reply gets the ACK timeout from the one before it.
    ///
    /// When one frame fails (a timeout, a reset, bad framing), the connection is
    /// closed and every later frame of the call gets [`MllpError::Abandoned`]: the
    /// peer may or may not have read it. An idle connection the peer had closed
    /// is reopened once, as in [`BlockingClient::call`]. A frame over the size limit
    /// makes the call go one frame at a time, so only that frame fails.
    pub fn call_many(&mut self, frames: &[&[u8]]) -> Vec<Result<Bytes, MllpError>> {
        let limit = self.config.codec.max_frame_len;
        if frames.len() < 2 || frames.iter().any(|f| f.len() > limit) {
            return frames.iter().map(|f| self.call(f)).collect();
        }
        self.pipeline(frames)
    }

    /// `frames` (at least one) on the connection, opened if needed; one result each.
    /// An idle connection the peer had closed shows as a reset before the first
    /// reply: it is reopened and the frames sent again, once.
    fn pipeline(&mut self, frames: &[&[u8]]) -> Vec<Result<Bytes, MllpError>> {
        let fresh = match self.ensure_connected() {
            Ok(fresh) => fresh,
            Err(err) => return abandon_after(Vec::new(), err, frames.len()),
        };
        let replies = self.exchange_many(frames);
        if fresh || !matches!(replies.first(), Some(Err(MllpError::ResetByPeer))) {
            return replies;
        }
        tracing::debug!(addr = %self.config.addr, "mllp connection went stale, reconnecting");
        match self.ensure_connected() {
            Ok(_) => self.exchange_many(frames),
            Err(err) => abandon_after(Vec::new(), err, frames.len()),
        }
    }

    fn exchange_many(&mut self, frames: &[&[u8]]) -> Vec<Result<Bytes, MllpError>> {
        let Some(conn) = self.connection.as_mut() else {
            return abandon_after(Vec::new(), MllpError::ResetByPeer, frames.len());
        };
        let timeout = self.config.ack_timeout;
        let mut replies = Vec::with_capacity(frames.len());
        let failed = match conn.send(frames, timeout) {
            Err(err) => err,
            Ok(()) => loop {
                if replies.len() == frames.len() {
                    return replies;
                }
                match conn.read_reply(timeout) {
                    Ok(reply) => replies.push(Ok(reply)),
                    Err(err) => break err,
                }
            },
        };
        // later replies on this connection would be taken for other frames'
        if let Some(conn) = self.connection.take() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        abandon_after(replies, failed, frames.len())
    }

    /// Connect if needed; `Ok(true)` if a new connection was opened.
    fn ensure_connected(&mut self) -> Result<bool, MllpError> {
        if self.connection.is_some() {
            return Ok(false);
        }
        let mut attempts = self.config.connect_attempts.max(1);
        loop {
            std::thread::sleep(self.pacing.wait());
            match Conn::open(&self.config) {
                Ok(conn) => {
                    self.connection = Some(conn);
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

impl Drop for BlockingClient {
    fn drop(&mut self) {
        if let Some(conn) = self.connection.take() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

impl Conn {
    /// Connect to the first address of `config.addr` that answers, all within the
    /// connect timeout.
    fn open(config: &ClientConfig) -> Result<Conn, MllpError> {
        let timeout = config.connect_timeout;
        let deadline = Instant::now() + timeout;
        let timed_out = || MllpError::ConnectTimeout {
            addr: config.addr.clone(),
            timeout_ms: millis(timeout),
        };
        let addrs: Vec<SocketAddr> = config
            .addr
            .to_socket_addrs()
            .map_err(|err| MllpError::from_connect_io(err, &config.addr))?
            .collect();
        let mut last = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    // Frames go out whole; waiting to coalesce them only adds latency.
                    stream.set_nodelay(true)?;
                    // set once here, not per message: a zero timeout would mean "none"
                    let ack_timeout = Some(config.ack_timeout.max(MIN_TIMEOUT));
                    stream.set_write_timeout(ack_timeout)?;
                    stream.set_read_timeout(ack_timeout)?;
                    return Ok(Conn {
                        stream,
                        codec: MllpCodec::new(config.codec),
                        buf: BytesMut::with_capacity(READ_CHUNK),
                        out: BytesMut::new(),
                        read_timeout_cut: false,
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::TimedOut => last = Some(timed_out()),
                Err(err) => last = Some(MllpError::from_connect_io(err, &config.addr)),
            }
        }
        Err(last.unwrap_or_else(|| {
            MllpError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} resolves to no address", config.addr),
            ))
        }))
    }

    /// Write `frames` back to back in one go.
    fn send(&mut self, frames: &[&[u8]], ack_timeout: Duration) -> Result<(), MllpError> {
        self.out.clear();
        for frame in frames {
            encode_frame(frame, &mut self.out);
        }
        // a peer that stops reading blocks the write until the socket's write timeout
        self.stream.write_all(&self.out).map_err(|err| match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => MllpError::Timeout {
                timeout_ms: millis(ack_timeout),
            },
            _ => err.into(),
        })
    }

    /// The next reply on the connection, complete within `ack_timeout` from now.
    fn read_reply(&mut self, ack_timeout: Duration) -> Result<Bytes, MllpError> {
        let timed_out = || MllpError::Timeout {
            timeout_ms: millis(ack_timeout),
        };
        let deadline = Instant::now() + ack_timeout;
        if self.read_timeout_cut {
            self.stream.set_read_timeout(Some(ack_timeout.max(MIN_TIMEOUT)))?;
            self.read_timeout_cut = false;
        }
        let mut chunk = [0u8; READ_CHUNK];
        let mut first_read = true;
        loop {
            if let Some(reply) = self.codec.decode(&mut self.buf)? {
                return Ok(reply);
            }
            // the first read waits the whole ACK timeout (the socket's setting);
            // a reply that arrives in pieces gets only what is left of it
            if !first_read {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                self.stream.set_read_timeout(Some(left.max(MIN_TIMEOUT)))?;
                self.read_timeout_cut = true;
            }
            first_read = false;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.codec.decode_eof(&mut self.buf)?;
                    return Err(MllpError::ResetByPeer);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timed_out());
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// `replies` so far, then `failed` for the next frame and [`MllpError::Abandoned`]
/// for the rest, up to `n` results.
fn abandon_after(
    mut replies: Vec<Result<Bytes, MllpError>>,
    failed: MllpError,
    n: usize,
) -> Vec<Result<Bytes, MllpError>> {
    let cause = failed.to_string();
    replies.push(Err(failed));
    while replies.len() < n {
        replies.push(Err(MllpError::Abandoned { cause: cause.clone() }));
    }
    replies
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Shortest socket timeout set (a zero one would mean no timeout).
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
