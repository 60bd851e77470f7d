//! The engine side of one worker's socket ([`Connection`]) and the proxy
//! [`crate::ItemInstance`] that engine worker threads of a multi_process item use.
//!
//! A call registers its id, writes its frame and waits on its own channel. The
//! connection's reader thread routes every frame for that id there: host
//! imports the plugin makes are answered on the calling engine thread (so the
//! current-message context is right), and the outcome ends the call. When the
//! worker dies the reader drops every waiting channel at once, so each call in
//! flight learns of the death without waiting for a timeout.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hie_core::{Envelope, Failure, HostApi, Outcome, Plugin, PluginError};
use parking_lot::Mutex;

use super::protocol::{self, Frame, FrameError, HostRequest, HostResponse};
use super::supervisor::{PoolUser, ProcessPool};
use crate::plugin::{ItemInstance, OutboundAdapter};

/// A call could not complete because its worker process went away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The worker died (or was killed) before the call's outcome arrived.
    #[error("worker died: {0}")]
    Died(String),
}

struct Pending {
    calls: HashMap<u64, Sender<Frame>>,
    /// Set once the connection is dead; no call registers after that.
    dead: Option<String>,
}

/// The engine's end of one worker process's socket.
pub struct Connection {
    worker: String,
    writer: Mutex<UnixStream>,
    pending: Mutex<Pending>,
    next_call: AtomicU64,
    in_flight: AtomicUsize,
    last_ack: Mutex<Instant>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("worker", &self.worker)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    /// Greet the worker on `stream` with `hello` and wait at most `timeout` for
    /// it to be ready. Returns the connection and the stream half its reader
    /// thread must run [`Connection::read_loop`] on.
    pub fn handshake(
        stream: UnixStream,
        worker: &str,
        hello: &Frame,
        timeout: Duration,
    ) -> Result<(Arc<Connection>, UnixStream), String> {
        let mut reader = stream
            .try_clone()
            .map_err(|e| format!("cannot clone the worker socket: {e}"))?;
        (&stream)
            .write_all(&protocol::encode(hello))
            .map_err(|e| format!("cannot greet the worker: {e}"))?;
        reader
            .set_read_timeout(Some(timeout))
            .map_err(|e| format!("cannot set a read timeout: {e}"))?;
        let mut buf = Vec::new();
        let first = protocol::read_frame(&mut reader, &mut buf).map_err(|e| match e {
            FrameError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("not ready within {} ms", timeout.as_millis())
            }
            FrameError::Closed => "exited during start".to_string(),
            other => other.to_string(),
        })?;
        match first {
            Frame::Ready { protocol, build, .. } => protocol::check_peer("the worker", protocol, &build)?,
            Frame::Refuse { reason } => return Err(format!("refused to start: {reason}")),
            other => {
                return Err(format!(
                    "garbage on the socket: expected ready, got {}",
                    frame_name(&other)
                ));
            }
        }
        reader
            .set_read_timeout(None)
            .map_err(|e| format!("cannot clear the read timeout: {e}"))?;
        let conn = Arc::new(Connection {
            worker: worker.to_string(),
            writer: Mutex::new(stream),
            pending: Mutex::new(Pending {
                calls: HashMap::new(),
                dead: None,
            }),
            next_call: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            last_ack: Mutex::new(Instant::now()),
        });
        Ok((conn, reader))
    }

    /// Route frames from the worker until the socket ends; returns why. All
    /// calls still waiting are failed at once.
    pub fn read_loop(&self, mut reader: UnixStream) -> String {
        let mut buf = Vec::with_capacity(4096);
        let reason = loop {
            match protocol::read_frame(&mut reader, &mut buf) {
                Ok(frame) => {
                    if let Err(reason) = self.route(frame) {
                        break reason;
                    }
                }
                Err(FrameError::Closed) => break "the worker closed its socket (exited)".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        self.mark_dead(&reason);
        reason
    }

    fn route(&self, frame: Frame) -> Result<(), String> {
        let call = match &frame {
            Frame::Outcome { call, .. } | Frame::Host { call, .. } => *call,
            Frame::Counter { call, .. } | Frame::Histogram { call, .. } => *call,
            Frame::HeartbeatAck { .. } => {
                *self.last_ack.lock() = Instant::now();
                return Ok(());
            }
            Frame::Refuse { reason } => return Err(format!("the worker gave up: {reason}")),
            other => {
                return Err(format!(
                    "garbage on the socket: a worker does not send {}",
                    frame_name(other)
                ));
            }
        };
        let pending = self.pending.lock();
        if let Some(tx) = pending.calls.get(&call) {
            let _ = tx.send(frame);
        } else {
            tracing::debug!(worker = %self.worker, call, "frame for a call nobody waits for");
        }
        Ok(())
    }

    /// Fail every waiting call and refuse new ones.
    pub fn mark_dead(&self, reason: &str) {
        let mut pending = self.pending.lock();
        if pending.dead.is_none() {
            pending.dead = Some(reason.to_string());
        }
        pending.calls.clear();
    }

    /// Why the connection was given up, if it was.
    pub fn dead_reason(&self) -> Option<String> {
        self.pending.lock().dead.clone()
    }

    /// Whether the worker is gone.
    pub fn is_dead(&self) -> bool {
        self.pending.lock().dead.is_some()
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// When the worker last answered a heartbeat.
    pub fn last_ack(&self) -> Instant {
        *self.last_ack.lock()
    }

    /// Write a frame that needs no answer.
    /// A failed write may have left half a frame on the socket, so the
    /// connection is marked dead and the supervisor replaces the worker.
    pub fn send(&self, frame: &Frame) -> Result<(), String> {
        let bytes = protocol::encode(frame);
        let written = self.writer.lock().write_all(&bytes);
        written.map_err(|e| {
            let reason = format!("cannot write to the worker: {e}");
            self.mark_dead(&reason);
            reason
        })
    }

    /// Bound every write: a worker that has not read for this long is as good as
    /// dead, and a writer must not block on it forever.
    pub fn set_write_timeout(&self, timeout: Duration) -> Result<(), String> {
        self.writer
            .lock()
            .set_write_timeout(Some(timeout))
            .map_err(|e| format!("cannot set the write timeout: {e}"))
    }

    /// Write a frame unless another thread is writing (it may be blocked on a
    /// worker that stopped reading): the supervisor's heartbeat must never wait,
    /// or it could not notice the silence. False when skipped or failed.
    pub fn try_send(&self, frame: &Frame) -> bool {
        let Some(mut writer) = self.writer.try_lock() else {
            return false;
        };
        let written = writer.write_all(&protocol::encode(frame));
        drop(writer);
        if let Err(e) = written {
            self.mark_dead(&format!("cannot write to the worker: {e}"));
            return false;
        }
        true
    }

    fn register(&self) -> Result<(u64, Receiver<Frame>), CallError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending.lock();
        if let Some(reason) = &pending.dead {
            return Err(CallError::Died(reason.clone()));
        }
        pending.calls.insert(call, tx);
        Ok((call, rx))
    }

    fn died(&self) -> CallError {
        CallError::Died(
            self.pending
                .lock()
                .dead
                .clone()
                .unwrap_or_else(|| "the worker went away".into()),
        )
    }

    /// Run one call in the worker: `make` builds the frame for the call id.
    /// Host imports made meanwhile are answered through `host` (as item `item`)
    /// and `adapter` on this thread.
    pub fn call(
        &self,
        make: impl FnOnce(u64) -> Frame,
        item: &str,
        host: &dyn HostApi,
        mut adapter: Option<&mut Box<dyn OutboundAdapter>>,
    ) -> Result<Result<Outcome, PluginError>, CallError> {
        let (call, rx) = self.register()?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let result = (|| {
            if self.send(&make(call)).is_err() {
                return Err(self.died());
            }
            loop {
                let Ok(frame) = rx.recv() else {
                    return Err(self.died());
                };
                match frame {
                    Frame::Outcome { result, .. } => return Ok(result),
                    Frame::Host { request, .. } => {
                        let response = answer(request, item, host, adapter.as_deref_mut());
                        if self.send(&Frame::HostReply { call, response }).is_err() {
                            return Err(self.died());
                        }
                    }
                    Frame::Counter {
                        item, name, value, ..
                    } => host.counter_add(&item, &name, value),
                    Frame::Histogram {
                        item, name, value, ..
                    } => host.histogram_record(&item, &name, value),
                    _ => {}
                }
            }
        })();
        self.pending.lock().calls.remove(&call);
        result
    }
}

fn answer(
    request: HostRequest,
    item: &str,
    host: &dyn HostApi,
    adapter: Option<&mut Box<dyn OutboundAdapter>>,
) -> HostResponse {
    match request {
        HostRequest::Lookup { table, key } => HostResponse::Lookup(host.lookup(&table, &key)),
        HostRequest::Send { target, msg } => HostResponse::Sent(host.send(item, &target, msg)),
        HostRequest::SendRequestSync {
            target,
            msg,
            timeout_ms,
        } => HostResponse::Reply(host.send_request_sync(item, &target, msg, timeout_ms)),
        HostRequest::SendRequestAsync { target, msg } => {
            HostResponse::Correlation(host.send_request_async(item, &target, msg))
        }
        HostRequest::Adapter { request } => HostResponse::Adapter(match adapter {
            Some(a) => a.call(&request),
            None => Err(Failure::permanent(
                "no-adapter",
                format!("item {item} has no outbound adapter to call"),
            )),
        }),
    }
}

/// Short name of a frame for error texts (never its contents: they hold patient data).
pub(crate) fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "hello",
        Frame::Ready { .. } => "ready",
        Frame::Refuse { .. } => "refuse",
        Frame::Deliver { .. } => "deliver",
        Frame::Reply { .. } => "reply",
        Frame::Outcome { .. } => "outcome",
        Frame::Host { .. } => "host",
        Frame::HostReply { .. } => "host-reply",
        Frame::Counter { .. } => "counter",
        Frame::Histogram { .. } => "histogram",
        Frame::Heartbeat { .. } => "heartbeat",
        Frame::HeartbeatAck { .. } => "heartbeat-ack",
        Frame::Shutdown => "shutdown",
    }
}

/// What an engine worker thread of a multi_process item calls: each call goes
/// to a live worker process; if that process dies during the call, the message
/// goes to a live one again with `attempt + 1`, until it has killed
/// `worker.max_attempts` workers (then it fails and is dead-lettered).
pub(crate) struct RemoteInstance {
    pool: Arc<ProcessPool>,
    _user: PoolUser,
    host: Arc<dyn HostApi>,
    adapter: Option<Box<dyn OutboundAdapter>>,
    preferred: usize,
    /// The plugin version this instance runs in the workers: its component
    /// file, named in every call; `None`: the item's configured plugin.
    plugin: Option<PathBuf>,
}

impl RemoteInstance {
    pub fn new(
        pool: Arc<ProcessPool>,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
        plugin: Option<PathBuf>,
    ) -> Result<Self, PluginError> {
        let (user, preferred) = pool.acquire()?;
        Ok(RemoteInstance {
            pool,
            _user: user,
            host,
            adapter,
            preferred,
            plugin,
        })
    }

    fn run(
        &mut self,
        mut msg: Envelope,
        reply: Option<(String, Result<Envelope, Failure>)>,
    ) -> Result<Outcome, PluginError> {
        let max = self.pool.settings().max_attempts;
        let mut deaths = 0u32;
        loop {
            // A message that was in flight when its worker died runs only while no
            // other such suspect does, so a poison message cannot take innocent
            // messages with it again and again.
            let _suspect = (deaths > 0).then(|| self.pool.suspects());
            let conn = self.pool.pick(self.preferred)?;
            let item = self.pool.item_name();
            let m = msg.clone();
            let plugin = self.plugin.clone();
            let made = |call| match &reply {
                None => Frame::Deliver { call, plugin, msg: m },
                Some((correlation_id, result)) => Frame::Reply {
                    call,
                    plugin,
                    correlation_id: correlation_id.clone(),
                    result: result.clone(),
                },
            };
            match conn.call(made, item, self.host.as_ref(), self.adapter.as_mut()) {
                Ok(result) => return result,
                Err(CallError::Died(reason)) => {
                    deaths += 1;
                    self.pool.record_redelivery();
                    if deaths >= max {
                        tracing::error!(item, message_id = %msg.id, deaths, reason = %reason, "message killed its worker process every time: dead-lettering it");
                        return Err(PluginError::Failed(Failure::permanent(
                            "worker-died",
                            format!(
                                "the message's worker process died {deaths} times during it (last: {reason}); \
                                 it is probably a poison message: inspect it, fix the plugin, then requeue it"
                            ),
                        )));
                    }
                    msg.attempt += 1;
                    tracing::warn!(item, message_id = %msg.id, attempt = msg.attempt, reason = %reason, "worker process died during the message: redelivering it");
                }
            }
        }
    }
}

impl Plugin for RemoteInstance {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        self.run(msg, None)
    }

    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Envelope, Failure>,
    ) -> Result<Outcome, PluginError> {
        let base = match &reply {
            Ok(m) => m.clone(),
            Err(_) => Envelope::new(
                self.pool.item_name(),
                "application/octet-stream",
                bytes::Bytes::new(),
            ),
        };
        self.run(base, Some((correlation_id.to_string(), reply)))
    }
}

impl ItemInstance for RemoteInstance {}
