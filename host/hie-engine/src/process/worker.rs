//! The side of the socket that runs in `hie worker`: `threads` threads, each
//! with its own plugin instance, take the calls the engine sends; host imports
//! go back to the engine as frames on the same socket, tagged with the call id.
//!
//! A reader thread owns the socket's input: it queues calls, answers
//! heartbeats (so a long plugin call does not look like a hung worker), routes
//! host-import answers to the waiting thread, and handles shutdown.
//!
//! Hot reload: every call names the plugin version it is for (its component
//! file; none for the configured plugin). A thread runs each call on its
//! instance of that version, making one when a version is new to it, so the
//! process stays up (same pid) across a reload and a canary, and each thread
//! swaps after its current call. A thread keeps its [`MAX_VERSIONS`] most
//! recently used versions' instances (current, canary, previous).

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Instances of distinct plugin versions one worker thread keeps.
pub const MAX_VERSIONS: usize = 3;

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

/// What every worker thread needs to make instances.
struct Maker {
    item: ItemConfig,
    factory: Arc<dyn PluginFactory>,
    host: Arc<ProxyHost>,
    adapter: bool,
}

impl Maker {
    /// A started instance of `plugin` (a version's component file), or of the
    /// item's configured plugin.
    fn instance(&self, plugin: Option<&PathBuf>) -> Result<Box<dyn ItemInstance>, String> {
        let mut item = self.item.clone();
        if let (Some(spec), Some(path)) = (item.plugin.as_mut(), plugin) {
            spec.path = Some(path.clone());
        }
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

/// One thread's instances, by the plugin version they run; most recently used first.
struct Instances(Vec<(Option<PathBuf>, Box<dyn ItemInstance>)>);

impl Instances {
    /// The instance for `plugin`, made now if this thread has none.
    fn get(
        &mut self,
        maker: &Maker,
        plugin: Option<PathBuf>,
        thread: &str,
    ) -> Result<&mut Box<dyn ItemInstance>, String> {
        match self.0.iter().position(|(p, _)| *p == plugin) {
            Some(0) => {}
            Some(n) => {
                let used = self.0.remove(n);
                self.0.insert(0, used);
            }
            None => {
                let fresh = maker.instance(plugin.as_ref())?;
                tracing::info!(
                    item = %maker.item.name,
                    thread,
                    plugin = %plugin.as_deref().map_or("(configured)".into(), |p| p.display().to_string()),
                    "worker thread started an instance of a plugin version"
                );
                self.0.insert(0, (plugin, fresh));
                if self.0.len() > MAX_VERSIONS
                    && let Some((_, mut old)) = self.0.pop()
                {
                    old.stop();
                }
            }
        }
        Ok(&mut self.0[0].1)
    }

    /// After a trap the instance is dead: the next call of its version gets a fresh one.
    fn drop_first(&mut self) {
        if !self.0.is_empty() {
            let (_, mut broken) = self.0.remove(0);
            broken.stop();
        }
    }

    fn stop(self) {
        for (_, mut instance) in self.0 {
            instance.stop();
        }
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
        item: plugin_item,
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
        match maker.instance(None) {
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
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<(u64, Option<PathBuf>, Job)>();
    let mut handles = Vec::with_capacity(threads);
    for (n, instance) in instances.into_iter().enumerate() {
        let ctx = ThreadCtx {
            jobs: jobs_rx.clone(),
            writer: Arc::clone(&writer),
            maker: Arc::clone(&maker),
            name: format!("{}-t{n}", options.worker),
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
            let end = read_loop(reader, jobs_tx, &reader_writer, &waiting);
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
    jobs: Sender<(u64, Option<PathBuf>, Job)>,
    writer: &Writer,
    waiting: &Waiting,
) -> Result<(), String> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let frame = match protocol::read_frame(&mut reader, &mut buf) {
            Ok(f) => f,
            Err(protocol::FrameError::Closed) => return Err("the engine closed the socket".into()),
            Err(e) => return Err(format!("from the engine: {e}")),
        };
        match frame {
            Frame::Deliver { call, plugin, msg } => {
                let _ = jobs.send((call, plugin, Job::Deliver(msg)));
            }
            Frame::Reply {
                call,
                plugin,
                correlation_id,
                result,
            } => {
                let _ = jobs.send((call, plugin, Job::Reply(correlation_id, result)));
            }
            Frame::HostReply { call, response } => {
                if let Some(tx) = waiting.lock().remove(&call) {
                    let _ = tx.send(response);
                }
            }
            Frame::Heartbeat { seq } => write(writer, &Frame::HeartbeatAck { seq })?,
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
    jobs: Receiver<(u64, Option<PathBuf>, Job)>,
    writer: Writer,
    maker: Arc<Maker>,
    /// Thread name, `ITEM-N-tM`, for the log.
    name: String,
    abort_on: Option<String>,
}

impl ThreadCtx {
    fn run(self, first: Box<dyn ItemInstance>) {
        let mut instances = Instances(vec![(None, first)]);
        while let Ok((call, plugin, job)) = self.jobs.recv() {
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
            let result = match instances.get(&self.maker, plugin, &self.name) {
                Ok(instance) => {
                    CALL.with(|c| c.set(Some(call)));
                    let result = match job {
                        Job::Deliver(msg) => instance.call(msg),
                        Job::Reply(correlation_id, reply) => instance.on_reply(&correlation_id, reply),
                    };
                    CALL.with(|c| c.set(None));
                    if let Err(e) = &result
                        && broken(e)
                    {
                        instances.drop_first();
                    }
                    result
                }
                // the engine counts it against the version (rollback) like any failed call
                Err(reason) => Err(PluginError::Instantiate(reason)),
            };
            if write(&self.writer, &Frame::Outcome { call, result }).is_err() {
                break;
            }
        }
        instances.stop();
    }
}

fn broken(e: &PluginError) -> bool {
    matches!(e, PluginError::Trap { .. } | PluginError::Instantiate(_))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
