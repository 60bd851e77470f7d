//! Listener counters: plain atomics the engine reads for its metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one [`Listener`](crate::server::Listener); all monotonic except `connections_open`.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections accepted and served since start.
    pub connections_total: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Frames decoded (including empty ones).
    pub frames_in: AtomicU64,
    /// Bytes read from sockets.
    pub bytes_in: AtomicU64,
    /// Replies sent.
    pub replies_out: AtomicU64,
    /// Bytes written to sockets.
    pub bytes_out: AtomicU64,
    /// Empty, oversize, badly framed or unfinished frames.
    pub frame_errors: AtomicU64,
    /// Bytes skipped outside frames.
    pub junk_bytes: AtomicU64,
    /// Connections closed by the idle, frame-completion or write timeout.
    pub timeouts: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
}

/// A copy of [`ListenerMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListenerStats {
    /// See [`ListenerMetrics::connections_open`].
    pub connections_open: u64,
    /// See [`ListenerMetrics::connections_total`].
    pub connections_total: u64,
    /// See [`ListenerMetrics::connections_rejected`].
    pub connections_rejected: u64,
    /// See [`ListenerMetrics::frames_in`].
    pub frames_in: u64,
    /// See [`ListenerMetrics::bytes_in`].
    pub bytes_in: u64,
    /// See [`ListenerMetrics::replies_out`].
    pub replies_out: u64,
    /// See [`ListenerMetrics::bytes_out`].
    pub bytes_out: u64,
    /// See [`ListenerMetrics::frame_errors`].
    pub frame_errors: u64,
    /// See [`ListenerMetrics::junk_bytes`].
    pub junk_bytes: u64,
    /// See [`ListenerMetrics::timeouts`].
    pub timeouts: u64,
    /// See [`ListenerMetrics::tls_handshake_failures`].
    pub tls_handshake_failures: u64,
}

impl ListenerMetrics {
    /// Read every counter.
    pub fn snapshot(&self) -> ListenerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerStats {
            connections_open: get(&self.connections_open),
            connections_total: get(&self.connections_total),
            connections_rejected: get(&self.connections_rejected),
            frames_in: get(&self.frames_in),
            bytes_in: get(&self.bytes_in),
            replies_out: get(&self.replies_out),
            bytes_out: get(&self.bytes_out),
            frame_errors: get(&self.frame_errors),
            junk_bytes: get(&self.junk_bytes),
            timeouts: get(&self.timeouts),
            tls_handshake_failures: get(&self.tls_handshake_failures),
        }
    }
}
