//! Typed MLLP errors: each one names what happened and what an operator can do.

use std::fmt;
use std::io;

/// The kind of an [`MllpError`], for counting and for choosing a reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Nothing listens at the address, or the host refused the connection.
    ConnectionRefused,
    /// The TCP (and TLS) connection was not set up within the connect timeout.
    ConnectTimeout,
    /// No complete reply arrived within the ACK timeout.
    Timeout,
    /// The peer reset or closed the connection before answering.
    ResetByPeer,
    /// The bytes on the wire are not valid MLLP framing.
    Framing,
    /// A frame is larger than the configured maximum.
    FrameTooLarge,
    /// A message names a character set this engine cannot decode.
    UnsupportedCharset,
    /// The TLS handshake failed (certificate, name, protocol).
    TlsHandshake,
    /// A TLS certificate, key or CA file could not be read or used.
    TlsConfig,
    /// Any other input/output error.
    Io,
    /// A frame sent in a pipeline got no reply because an earlier frame on the same
    /// connection failed and the connection was closed.
    Abandoned,
}

impl ErrorKind {
    /// A short stable name (`connection_refused`, `timeout`, …) for reports and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectionRefused => "connection_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ResetByPeer => "reset_by_peer",
            ErrorKind::Framing => "framing",
            ErrorKind::FrameTooLarge => "frame_too_large",
            ErrorKind::UnsupportedCharset => "unsupported_charset",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::TlsConfig => "tls_config",
            ErrorKind::Io => "io",
            ErrorKind::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An MLLP connection, framing or TLS error.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// See [`ErrorKind::ConnectionRefused`].
    #[error("connection to {addr} refused: check that the receiver is running and listening on that port")]
    ConnectionRefused {
        /// The address that refused.
        addr: String,
    },
    /// See [`ErrorKind::ConnectTimeout`].
    #[error(
        "no connection to {addr} within {timeout_ms} ms: check the address, firewalls and that the receiver accepts connections"
    )]
    ConnectTimeout {
        /// The address tried.
        addr: String,
        /// The connect timeout that ran out.
        timeout_ms: u64,
    },
    /// See [`ErrorKind::Timeout`].
    #[error(
        "no ack within {timeout_ms} ms: the receiver is slow or stuck; raise the ack timeout or check the receiver"
    )]
    Timeout {
        /// The ACK timeout that ran out.
        timeout_ms: u64,
    },
    /// See [`ErrorKind::ResetByPeer`].
    #[error(
        "connection closed by the peer before a reply: the message may not have been received; it will be resent on a new connection"
    )]
    ResetByPeer,
    /// See [`ErrorKind::Framing`].
    #[error("invalid mllp framing: {detail}; check that the peer speaks mllp (0x0b … 0x1c 0x0d)")]
    Framing {
        /// What was wrong with the bytes.
        detail: String,
    },
    /// See [`ErrorKind::FrameTooLarge`].
    #[error(
        "frame larger than the limit of {limit} bytes: split the message or raise the maximum frame size"
    )]
    FrameTooLarge {
        /// The configured maximum frame size.
        limit: usize,
    },
    /// See [`ErrorKind::UnsupportedCharset`].
    #[error("unsupported character set {charset:?}: send utf-8 or a charset listed in the documentation")]
    UnsupportedCharset {
        /// The character set named by the message (MSH-18).
        charset: String,
    },
    /// See [`ErrorKind::TlsHandshake`].
    #[error(
        "tls handshake with {peer} failed: {detail}; check certificates, the server name and that both sides use tls"
    )]
    TlsHandshake {
        /// The peer address.
        peer: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// See [`ErrorKind::TlsConfig`].
    #[error("tls setup failed: {detail}; check the certificate, key and ca files (pem)")]
    TlsConfig {
        /// What was wrong.
        detail: String,
    },
    /// See [`ErrorKind::Io`].
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    /// See [`ErrorKind::Abandoned`].
    #[error(
        "no reply: an earlier frame on the same connection failed ({cause}), so the connection was closed; the message may not have been received and will be resent"
    )]
    Abandoned {
        /// Why the earlier frame failed.
        cause: String,
    },
}

impl MllpError {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MllpError::ConnectionRefused { .. } => ErrorKind::ConnectionRefused,
            MllpError::ConnectTimeout { .. } => ErrorKind::ConnectTimeout,
            MllpError::Timeout { .. } => ErrorKind::Timeout,
            MllpError::ResetByPeer => ErrorKind::ResetByPeer,
            MllpError::Framing { .. } => ErrorKind::Framing,
            MllpError::FrameTooLarge { .. } => ErrorKind::FrameTooLarge,
            MllpError::UnsupportedCharset { .. } => ErrorKind::UnsupportedCharset,
            MllpError::TlsHandshake { .. } => ErrorKind::TlsHandshake,
            MllpError::TlsConfig { .. } => ErrorKind::TlsConfig,
            MllpError::Io(_) => ErrorKind::Io,
            MllpError::Abandoned { .. } => ErrorKind::Abandoned,
        }
    }

    /// Classify an I/O error from a connected socket (resets become [`ErrorKind::ResetByPeer`]).
    pub(crate) fn from_stream_io(err: io::Error) -> Self {
        use io::ErrorKind as K;
        match err.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                MllpError::ResetByPeer
            }
            _ => MllpError::Io(err),
        }
    }

    /// Classify an I/O error from `connect` to `addr`.
    pub(crate) fn from_connect_io(err: io::Error, addr: &str) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => MllpError::ConnectionRefused {
                addr: addr.to_owned(),
            },
            _ => MllpError::Io(err),
        }
    }
}

impl From<io::Error> for MllpError {
    fn from(err: io::Error) -> Self {
        MllpError::from_stream_io(err)
    }
}
