//! The side of the socket that runs in `hie worker`: `threads` threads, each
//! with its own plugin instance, take the calls the engine sends; host imports
//! go back to the engine as frames on the same socket, tagged with the call id.
//!
//! A reader thread owns the socket's input: it queues calls, answers
//! heartbeats (so a long plugin call does not look like a hung worker), routes
//! host-import answers to the waiting thread, and handles reload and shutdown.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use hie_config::ItemConfig;
use hie_core::{Envelope, Failure, HostApi, LogLevel, PluginError};
use parking_lot::Mutex;

use super::protocol::{self, Frame, HostRequest, HostResponse};
use super::{ProcessSettings, plugin_view};
use crate::plugin::{ItemInstance, OutboundAdapter, PluginFactory};

/// How `hie worker` was started.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Worker id, `ITEM-N`.
    pub worker: String,
    /// Threads, each with its own plugin instance.
    pub threads: usize,
    /// The production file (for setting errors).
    pub file: PathBuf,
}

thread_local! {
    /// The call this worker thread is running, for the host imports it makes.
    static CALL: Cell<Option<u64>> = const { Cell::new(None) };
}

type Writer = Arc<Mutex<UnixStream>>;
type Waiting = Arc<Mutex<HashMap<u64, Sender<HostResponse>>>>;

fn write(writer: &Writer, frame: &Frame) -> Result<(), String> {
    let bytes = protocol::encode(frame);
    writer
        .lock()
        .write_all(&bytes)
        .map_err(|e| format!("cannot write to the engine: {e}"))
}

/// Tell the engine this worker cannot start, and why.
pub fn refuse(stream: &UnixStream, reason: &str) {
    let _ = (&*stream).write_all(&protocol::encode(&Frame::Refuse {
        reason: reason.to_string(),
    }));
}

/// The host imports of a plugin in a worker: proxied to the engine.
struct ProxyHost {
    writer: Writer,
    waiting: Waiting,
}

impl ProxyHost {
    fn ask(&self, request: HostRequest) -> Result<HostResponse, Failure> {
        let Some(call) = CALL.with(Cell::get) else {
            return Err(Failure::permanent(
                "no-message",
                "in multi_process mode host calls work only while a message is handled, not in on-init or on-start",
            ));
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.waiting.lock().insert(call, tx);
        let sent = write(&self.writer, &Frame::Host { call, request });
        let answer = match sent {
            Ok(()) => rx
                .recv()
                .map_err(|_| Failure::transient("no-engine", "the engine went away during a host call")),
            Err(e) => Err(Failure::transient("no-engine", e)),
        };
        self.waiting.lock().remove(&call);
        answer
    }

    fn one_way(&self, frame: impl FnOnce(u64) -> Frame) {
        if let Some(call) = CALL.with(Cell::get) {
            let _ = write(&self.writer, &frame(call));
        }
    }
}

fn unexpected(what: &str) -> Failure {
    Failure::permanent(
        "protocol",
        format!("the engine answered {what} with something else"),
    )
}

impl HostApi for ProxyHost {
    /// Plugin log lines are emitted by the plugin host in this process; its log
    /// goes to the engine's log through the worker's stderr.
    fn log(&self, _item: &str, _level: LogLevel, _text: &str) {}

    fn lookup(&self, table: &str, key: &str) -> Option<String> {
        match self.ask(HostRequest::Lookup {
            table: table.into(),
            key: key.into(),
        }) {
            Ok(HostResponse::Lookup(v)) => v,
            _ => None,
        }
    }

    fn send(&self, _from: &str, target: &str, msg: Envelope) -> Result<(), Failure> {
        match self.ask(HostRequest::Send {
            target: target.into(),
            msg,
        })? {
            HostResponse::Sent(r) => r,
            _ => Err(unexpected("send")),
        }
    }

    fn send_request_sync(
        &self,
        _from: &str,
        target: &str,
        msg: Envelope,
        timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        match self.ask(HostRequest::SendRequestSync {
            target: target.into(),
            msg,
            timeout_ms,
        })? {
            HostResponse::Reply(r) => r,
            _ => Err(unexpected("send-request-sync")),
        }
    }

    fn send_request_async(&self, _from: &str, target: &str, msg: Envelope) -> Result<String, Failure> {
        match self.ask(HostRequest::SendRequestAsync {
            target: target.into(),
            msg,
        })? {
            HostResponse::Correlation(r) => r,
            _ => Err(unexpected("send-request-async")),
        }
    }

    fn counter_add(&self, item: &str, name: &str, value: u64) {
        self.one_way(|call| Frame::Counter {
            call,
            item: item.into(),
            name: name.into(),
            value,
        });
    }

    fn histogram_record(&self, item: &str, name: &str, value: f64) {
        self.one_way(|call| Frame::Histogram {
            call,
            item: item.into(),
            name: name.into(),
            value,
        });
    }
}

/// An operation's outbound adapter, which stays in the engine.
struct ProxyAdapter(Arc<ProxyHost>);

impl OutboundAdapter for ProxyAdapter {
    fn call(&mut self, request: &[u8]) -> Result<Bytes, Failure> {
        match self.0.ask(HostRequest::Adapter {
            request: request.to_vec(),
        })? {
            HostResponse::Adapter(r) => r,
            _ => Err(unexpected("adapter.call")),
        }
    }
}

enum Job {
    Deliver(Envelope),
    Reply(String, Result<Envelope, Failure>),
}

/// A pending hot reload, seen by every thread between calls.
struct Reload {
    generation: AtomicU64,
    plugin: Mutex<Option<PathBuf>>,
    /// Threads done with the current generation, and the first failure.
    done: Mutex<(usize, Option<String>)>,
}

/// What every worker thread needs to make instances.
struct Maker {
    item: Mutex<ItemConfig>,
    factory: Arc<dyn PluginFactory>,
    host: Arc<ProxyHost>,
    adapter: bool,
}

impl Maker {
    fn instance(&self) -> Result<Box<dyn ItemInstance>, String> {
        let item = self.item.lock().clone();
        let adapter = self
            .adapter
            .then(|| Box::new(ProxyAdapter(Arc::clone(&self.host))) as Box<dyn OutboundAdapter>);
        let host: Arc<dyn HostApi> = self.host.clone();
        let mut instance = self
            .factory
            .item_instance(&item, host, adapter)
            .map_err(|e| format!("cannot instantiate plugin: {e}"))?;
        instance
            .start()
            .map_err(|e| format!("plugin refused to start: {e}"))?;
        Ok(instance)
    }
}

/// Serve the engine on `stream` until it says shut down (`Ok`) or goes away
/// (`Err` with why). `item` is the item as loaded from the production file.
pub fn serve_worker(
    stream: UnixStream,
    item: &ItemConfig,
    factory: Arc<dyn PluginFactory>,
    options: WorkerOptions,
) -> Result<(), String> {
    let mut reader = stream
        .try_clone()
        .map_err(|e| format!("cannot clone the socket: {e}"))?;
    let mut buf = Vec::new();
    let hello =
        protocol::read_frame(&mut reader, &mut buf).map_err(|e| format!("no hello from the engine: {e}"))?;
    let Frame::Hello {
        protocol: version,
        build,
        item: name,
        plugin,
        adapter,
        ..
    } = hello
    else {
        let reason = "the engine's first frame is not hello".to_string();
        refuse(&stream, &reason);
        return Err(reason);
    };
    let checks = protocol::check_peer("the engine", version, &build)
        .and_then(|()| {
            (name == item.name).then_some(()).ok_or_else(|| {
                format!(
                    "the engine asked for item {name}, this worker was started for {}",
                    item.name
                )
            })
        })
        .and_then(|()| ProcessSettings::of(item, &options.file).map_err(|e| e.to_string()));
    let settings = match checks {
        Ok(s) => s,
        Err(reason) => {
            refuse(&stream, &reason);
            return Err(reason);
        }
    };
    let mut plugin_item = plugin_view(item);
    if let (Some(spec), Some(path)) = (plugin_item.plugin.as_mut(), plugin) {
        spec.path = Some(path);
    }
    let writer: Writer = Arc::new(Mutex::new(stream));
    let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
    let maker = Arc::new(Maker {
        item: Mutex::new(plugin_item),
        factory,
        host: Arc::new(ProxyHost {
            writer: Arc::clone(&writer),
            waiting: Arc::clone(&waiting),
        }),
        adapter,
    });
    let threads = options.threads.max(1);
    let mut instances = Vec::with_capacity(threads);
    for _ in 0..threads {
        match maker.instance() {
            Ok(i) => instances.push(i),
            Err(reason) => {
                let _ = write(
                    &writer,
                    &Frame::Refuse {
                        reason: reason.clone(),
                    },
                );
                return Err(reason);
            }
        }
    }
    let reload = Arc::new(Reload {
        generation: AtomicU64::new(0),
        plugin: Mutex::new(None),
        done: Mutex::new((0, None)),
    });
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<(u64, Job)>();
    let mut handles = Vec::with_capacity(threads);
    for (n, instance) in instances.into_iter().enumerate() {
        let ctx = ThreadCtx {
            jobs: jobs_rx.clone(),
            writer: Arc::clone(&writer),
            maker: Arc::clone(&maker),
            reload: Arc::clone(&reload),
            threads,
            abort_on: settings.test_abort_on.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("{}-t{n}", options.worker))
            .spawn(move || ctx.run(instance))
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        handles.push(handle);
    }
    drop(jobs_rx);
    write(
        &writer,
        &Frame::Ready {
            protocol: protocol::PROTOCOL_VERSION,
            build: protocol::build_id(),
            threads,
        },
    )?;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let reader_writer = Arc::clone(&writer);
    std::thread::Builder::new()
        .name(format!("{}-rd", options.worker))
        .spawn(move || {
            let end = read_loop(reader, jobs_tx, &reader_writer, &waiting, &reload, threads);
            let _ = stop_tx.send(end);
        })
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    match stop_rx.recv() {
        Ok(Ok(())) => {
            for h in handles {
                let _ = h.join();
            }
            Ok(())
        }
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err("the reader thread ended".into()),
    }
}

/// Read the engine's frames. Returns `Ok` on shutdown (after which the caller
/// joins the threads while this loop goes on routing host answers), `Err` if
/// the engine went away or wrote garbage.
fn read_loop(
    mut reader: UnixStream,
    jobs: Sender<(u64, Job)>,
    writer: &Writer,
    waiting: &Waiting,
    reload: &Reload,
    threads: usize,
) -> Result<(), String> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let frame = match protocol::read_frame(&mut reader, &mut buf) {
            Ok(f) => f,
            Err(protocol::FrameError::Closed) => return Err("the engine closed the socket".into()),
            Err(e) => return Err(format!("from the engine: {e}")),
        };
        match frame {
            Frame::Deliver { call, msg } => {
                let _ = jobs.send((call, Job::Deliver(msg)));
            }
            Frame::Reply {
                call,
                correlation_id,
                result,
            } => {
                let _ = jobs.send((call, Job::Reply(correlation_id, result)));
            }
            Frame::HostReply { call, response } => {
                if let Some(tx) = waiting.lock().remove(&call) {
                    let _ = tx.send(response);
                }
            }
            Frame::Heartbeat { seq } => write(writer, &Frame::HeartbeatAck { seq })?,
            Frame::Reload { plugin } => {
                *reload.plugin.lock() = plugin;
                *reload.done.lock() = (0, None);
                reload.generation.fetch_add(1, Ordering::SeqCst);
                if threads == 0 {
                    write(writer, &Frame::Reloaded { result: Ok(()) })?;
                }
            }
            Frame::Shutdown => {
                // the threads finish what is queued, then end; answers to their
                // host calls still arrive here, so keep reading in the background
                drop(jobs);
                let writer = Arc::clone(writer);
                let waiting = Arc::clone(waiting);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    while let Ok(frame) = protocol::read_frame(&mut reader, &mut buf) {
                        match frame {
                            Frame::HostReply { call, response } => {
                                if let Some(tx) = waiting.lock().remove(&call) {
                                    let _ = tx.send(response);
                                }
                            }
                            Frame::Heartbeat { seq } => {
                                let _ = write(&writer, &Frame::HeartbeatAck { seq });
                            }
                            _ => {}
                        }
                    }
                });
                return Ok(());
            }
            other => {
                return Err(format!(
                    "garbage from the engine: an engine does not send {}",
                    super::remote::frame_name(&other)
                ));
            }
        }
    }
}

struct ThreadCtx {
    jobs: Receiver<(u64, Job)>,
    writer: Writer,
    maker: Arc<Maker>,
    reload: Arc<Reload>,
    threads: usize,
    abort_on: Option<String>,
}

impl ThreadCtx {
    fn run(self, mut instance: Box<dyn ItemInstance>) {
        let mut generation = 0;
        loop {
            let job = match self.jobs.recv_timeout(Duration::from_millis(50)) {
                Ok(job) => Some(job),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            let wanted = self.reload.generation.load(Ordering::SeqCst);
            if wanted != generation {
                generation = wanted;
                self.swap(&mut instance);
            }
            let Some((call, job)) = job else { continue };
            if let (Some(pattern), Job::Deliver(msg)) = (&self.abort_on, &job)
                && contains(&msg.body, pattern.as_bytes())
            {
                // test only (worker.test_abort_on): a real process crash, not a wasm trap
                eprintln!(
                    "worker.test_abort_on matched message {}: aborting the process",
                    msg.id
                );
                std::process::abort();
            }
            CALL.with(|c| c.set(Some(call)));
            let result = match job {
                Job::Deliver(msg) => instance.call(msg),
                Job::Reply(correlation_id, reply) => instance.on_reply(&correlation_id, reply),
            };
            CALL.with(|c| c.set(None));
            if let Err(e) = &result
                && broken(e)
            {
                // the instance is dead after a trap; the next call gets a fresh one
                match self.maker.instance() {
                    Ok(fresh) => instance = fresh,
                    Err(reason) => {
                        tracing::error!(reason = %reason, "cannot replace a broken plugin instance")
                    }
                }
            }
            if write(&self.writer, &Frame::Outcome { call, result }).is_err() {
                break;
            }
        }
        instance.stop();
    }

    fn swap(&self, instance: &mut Box<dyn ItemInstance>) {
        if let Some(path) = self.reload.plugin.lock().clone()
            && let Some(spec) = self.maker.item.lock().plugin.as_mut()
        {
            spec.path = Some(path);
        }
        let failure = match self.maker.instance() {
            Ok(fresh) => {
                let mut old = std::mem::replace(instance, fresh);
                old.stop();
                None
            }
            Err(reason) => Some(reason),
        };
        let mut done = self.reload.done.lock();
        done.0 += 1;
        if done.1.is_none() {
            done.1 = failure;
        }
        if done.0 == self.threads {
            let result = match done.1.take() {
                None => Ok(()),
                Some(e) => Err(e),
            };
            let _ = write(&self.writer, &Frame::Reloaded { result });
        }
    }
}

fn broken(e: &PluginError) -> bool {
    matches!(e, PluginError::Trap { .. } | PluginError::Instantiate(_))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
