//! An MLLP sink that ACKs, counts and optionally stores every message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hie_hl7::Message;
use hie_hl7::ack::{AckCode, build_ack, build_nak_unparseable};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::MllpError;
use crate::metrics::{ListenerMetrics, ListenerStats};
use crate::server::{FrameHandler, HandlerFuture, HandlerReply, Listener, ListenerConfig, PeerInfo};

/// How to listen.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// MSA-1 of the ACK sent for every parseable message.
    pub ack_code: AckCode,
    /// Write each message to this directory as `{sequence}_{control id}.hl7`.
    pub out_dir: Option<PathBuf>,
    /// Listener limits and TLS.
    pub listener: ListenerConfig,
}

/// Counters of a [`Sink`].
#[derive(Debug, Default)]
struct SinkCounters {
    messages: AtomicU64,
    bytes: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
}

/// A copy of the sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Frames handled.
    pub messages: u64,
    /// Payload bytes handled.
    pub bytes: u64,
    /// Messages answered with the configured ACK code.
    pub acked: u64,
    /// Messages answered with AR because they do not parse (or name an unknown charset).
    pub rejected: u64,
    /// Messages written to the output directory.
    pub written: u64,
    /// Messages that could not be written.
    pub write_errors: u64,
}

/// The [`FrameHandler`] of `hie listen`.
#[derive(Debug)]
pub struct Sink {
    ack_code: AckCode,
    out_dir: Option<PathBuf>,
    counters: SinkCounters,
}

impl Sink {
    /// A sink answering `ack_code`, writing messages to `out_dir` if given.
    pub fn new(ack_code: AckCode, out_dir: Option<PathBuf>) -> Self {
        Sink {
            ack_code,
            out_dir,
            counters: SinkCounters::default(),
        }
    }

    /// Read the counters.
    pub fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SinkStats {
            messages: get(&c.messages),
            bytes: get(&c.bytes),
            acked: get(&c.acked),
            rejected: get(&c.rejected),
            written: get(&c.written),
            write_errors: get(&c.write_errors),
        }
    }

    /// The reply for `frame`, and its control id if it parsed.
    fn reply_to(&self, frame: &[u8]) -> (Vec<u8>, Option<String>) {
        let message = match Message::parse(frame) {
            Ok(message) => message,
            Err(err) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return (build_nak_unparseable(&err.to_string()), None);
            }
        };
        if message.charset().is_none() {
            let charset = message.get("MSH-18").ok().flatten().unwrap_or_default();
            let err = MllpError::UnsupportedCharset { charset };
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            // An ACK echoing an unknown MSH-18 would be unreadable for the sender too.
            return (build_nak_unparseable(&err.to_string()), message.control_id());
        }
        self.counters.acked.fetch_add(1, Ordering::Relaxed);
        (build_ack(&message, self.ack_code, None), message.control_id())
    }

    async fn store(&self, sequence: u64, control_id: Option<&str>, frame: Bytes) {
        let Some(dir) = &self.out_dir else { return };
        let id: String = control_id
            .unwrap_or("unparseable")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let path = dir.join(format!("{sequence:09}_{id}.hl7"));
        // Write under a temporary name, then rename: whoever watches the directory
        // never sees a partly written `.hl7` file.
        let partial = dir.join(format!(".{sequence:09}_{id}.part"));
        // one trip to the blocking pool for both steps: the ACK waits for them
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::write(&partial, &frame)?;
            std::fs::rename(&partial, &target)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match written {
            Ok(()) => self.counters.written.fetch_add(1, Ordering::Relaxed),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "listen: cannot write message");
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

impl FrameHandler for Sink {
    fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move {
            let sequence = self.counters.messages.fetch_add(1, Ordering::Relaxed) + 1;
            self.counters
                .bytes
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            let (reply, control_id) = self.reply_to(&frame);
            self.store(sequence, control_id.as_deref(), frame).await;
            HandlerReply::Send(Bytes::from(reply))
        })
    }
}

/// What a listen run saw.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ListenReport {
    /// The bound address.
    pub addr: String,
    /// Sink counters.
    pub sink: SinkStats,
    /// Listener counters (connections, frames, errors).
    pub listener: ListenerStats,
    /// Seconds since start.
    pub elapsed_s: f64,
    /// Messages per second since start.
    pub msgs_per_sec: f64,
}

impl ListenReport {
    /// One line for a terminal.
    pub fn to_text(&self) -> String {
        let mut line = format!(
            "{} messages ({:.0} msg/s) on {}: acked {} rejected {} frame errors {} connections {} (open {})",
            self.sink.messages,
            self.msgs_per_sec,
            self.addr,
            self.sink.acked,
            self.sink.rejected,
            self.listener.frame_errors,
            self.listener.connections_total,
            self.listener.connections_open,
        );
        if self.sink.written > 0 || self.sink.write_errors > 0 {
            line += &format!(
                " written {} write errors {}",
                self.sink.written, self.sink.write_errors
            );
        }
        line
    }
}

/// A running sink: bound, serving in the background until [`stop`](ListenSession::stop).
pub struct ListenSession {
    addr: SocketAddr,
    sink: Arc<Sink>,
    metrics: Arc<ListenerMetrics>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MllpError>>,
    started: Instant,
}

impl ListenSession {
    /// Bind and start serving.
    pub async fn start(opts: ListenOptions) -> Result<Self, MllpError> {
        if let Some(dir) = &opts.out_dir {
            tokio::fs::create_dir_all(dir).await?;
        }
        let listener = Listener::bind(opts.addr, opts.listener).await?;
        let addr = listener.local_addr()?;
        let metrics = listener.metrics();
        let sink = Arc::new(Sink::new(opts.ack_code, opts.out_dir));
        let shutdown = CancellationToken::new();
        let handler: Arc<dyn FrameHandler> = Arc::clone(&sink) as Arc<dyn FrameHandler>;
        let task = tokio::spawn(listener.serve(handler, shutdown.clone()));
        Ok(ListenSession {
            addr,
            sink,
            metrics,
            shutdown,
            task,
            started: Instant::now(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters now.
    pub fn report(&self) -> ListenReport {
        let sink = self.sink.stats();
        let elapsed_s = self.started.elapsed().as_secs_f64();
        ListenReport {
            addr: self.addr.to_string(),
            sink,
            listener: self.metrics.snapshot(),
            elapsed_s,
            msgs_per_sec: if elapsed_s > 0.0 {
                sink.messages as f64 / elapsed_s
            } else {
                0.0
            },
        }
    }

    /// Stop accepting, finish the frames already read, and report.
    pub async fn stop(mut self) -> Result<ListenReport, MllpError> {
        self.shutdown.cancel();
        (&mut self.task)
            .await
            .map_err(|join| MllpError::Io(std::io::Error::other(join)))??;
        Ok(self.report())
    }
}
