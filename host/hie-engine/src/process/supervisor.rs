//! The [`ProcessPool`] of a multi_process item: starts its `hie worker`
//! processes, watches them (socket EOF, `waitpid`, heartbeats), restarts them
//! with backoff under the item's restart policy, and stops them gracefully.
//!
//! Each process has one supervisor thread for its whole life. The thread that
//! spawns a child is the one `PR_SET_PDEATHSIG` watches, so a supervisor
//! outlives every child it starts. Processes run while at least one engine
//! worker thread holds a [`PoolUser`]; the last one to go stops them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use hie_config::{Execution, HookConfig, ItemConfig};
use hie_core::{HostApi, PluginError};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::ProcessSettings;
use super::protocol::{self, Frame};
use super::remote::{Connection, RemoteInstance};
use crate::engine::Shared;
use crate::hooks::MessageHook;
use crate::plugin::{ItemInstance, OutboundAdapter, PluginFactory};

/// How often a supervisor looks at its worker between heartbeats.
const TICK: Duration = Duration::from_millis(20);

/// What an operator sees of one worker process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// Worker id, `ITEM-N`.
    pub id: String,
    /// Its OS process id while it runs.
    pub pid: Option<u32>,
    /// `starting`, `running`, `restarting`, `failed` or `stopped`.
    pub state: &'static str,
    /// Times this worker was restarted since the item started.
    pub restarts: u64,
    /// Calls in flight in it now.
    pub in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Stopped,
    Starting,
    Running,
    Restarting,
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Restarting => "restarting",
            Phase::Failed => "failed",
        }
    }
}

struct Slot {
    conn: Option<Arc<Connection>>,
    pid: Option<u32>,
    phase: Phase,
    restarts: u64,
    last_failure: Option<String>,
}

struct PoolState {
    closing: bool,
    /// The component workers instantiate (changed by a reload).
    plugin: Option<PathBuf>,
    slots: Vec<Slot>,
}

struct Lifecycle {
    users: usize,
    supervisors: Vec<JoinHandle<()>>,
}

/// The worker processes of one multi_process item.
pub struct ProcessPool {
    item: ItemConfig,
    file: PathBuf,
    exe: PathBuf,
    settings: ProcessSettings,
    threads: usize,
    state: Mutex<PoolState>,
    changed: Condvar,
    lifecycle: Mutex<Lifecycle>,
    suspects: Mutex<()>,
    next_user: AtomicUsize,
    redeliveries: AtomicU64,
    engine: OnceLock<Weak<Shared>>,
}

impl std::fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPool")
            .field("item", &self.item.name)
            .field("workers", &self.status())
            .finish_non_exhaustive()
    }
}

/// Held by each engine worker thread of the item; the processes run while any is held.
pub struct PoolUser(Arc<ProcessPool>);

impl Drop for PoolUser {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// What ended a worker process's life.
enum Exit {
    /// Stopped on request.
    Stopped,
    /// Died or was killed; the reason.
    Died(String),
}

impl ProcessPool {
    /// A pool of `processes` workers with `threads` threads each for `item` of
    /// the production in `file`, started from `exe` (the `hie` binary).
    pub fn new(
        item: &ItemConfig,
        file: PathBuf,
        exe: PathBuf,
        settings: ProcessSettings,
        processes: usize,
        threads: usize,
    ) -> Arc<Self> {
        let slots = (0..processes.max(1))
            .map(|_| Slot {
                conn: None,
                pid: None,
                phase: Phase::Stopped,
                restarts: 0,
                last_failure: None,
            })
            .collect();
        Arc::new(ProcessPool {
            item: item.clone(),
            file,
            exe,
            settings,
            threads: threads.max(1),
            state: Mutex::new(PoolState {
                closing: true,
                plugin: item.plugin.as_ref().and_then(|p| p.path.clone()),
                slots,
            }),
            changed: Condvar::new(),
            lifecycle: Mutex::new(Lifecycle {
                users: 0,
                supervisors: Vec::new(),
            }),
            suspects: Mutex::new(()),
            next_user: AtomicUsize::new(0),
            redeliveries: AtomicU64::new(0),
            engine: OnceLock::new(),
        })
    }

    /// Let restarts count against the item's restart policy in `shared`.
    pub(crate) fn attach(&self, shared: Weak<Shared>) {
        let _ = self.engine.set(shared);
    }

    /// The item's name.
    pub fn item_name(&self) -> &str {
        &self.item.name
    }

    /// The item's worker settings.
    pub fn settings(&self) -> &ProcessSettings {
        &self.settings
    }

    /// Messages sent again because their worker died during them.
    pub fn redeliveries(&self) -> u64 {
        self.redeliveries.load(Ordering::Relaxed)
    }

    pub(crate) fn record_redelivery(&self) {
        self.redeliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Serialises calls whose message was in flight when a worker died.
    pub(crate) fn suspects(&self) -> MutexGuard<'_, ()> {
        self.suspects.lock()
    }

    /// Every worker's status.
    pub fn status(&self) -> Vec<WorkerStatus> {
        let state = self.state.lock();
        state
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| WorkerStatus {
                id: self.worker_id(i),
                pid: s.pid,
                state: s.phase.as_str(),
                restarts: s.restarts,
                in_flight: s.conn.as_ref().map_or(0, |c| c.in_flight()),
            })
            .collect()
    }

    fn worker_id(&self, index: usize) -> String {
        format!("{}-{index}", self.item.name)
    }

    /// Register an engine worker thread; starts the processes if none run.
    /// Returns the guard and the worker index this thread prefers.
    pub fn acquire(self: &Arc<Self>) -> Result<(PoolUser, usize), PluginError> {
        let mut life = self.lifecycle.lock();
        if life.users == 0 {
            self.state.lock().closing = false;
            for index in 0..self.processes() {
                let pool = Arc::clone(self);
                let handle = std::thread::Builder::new()
                    .name(format!("{}-sup", self.worker_id(index)))
                    .spawn(move || pool.supervise(index))
                    .map_err(|e| {
                        PluginError::Instantiate(format!("cannot start a supervisor thread: {e}"))
                    })?;
                life.supervisors.push(handle);
            }
        }
        life.users += 1;
        let preferred = self.next_user.fetch_add(1, Ordering::Relaxed) % self.processes();
        Ok((PoolUser(Arc::clone(self)), preferred))
    }

    fn release(&self) {
        let mut life = self.lifecycle.lock();
        life.users -= 1;
        if life.users > 0 {
            return;
        }
        self.state.lock().closing = true;
        self.changed.notify_all();
        for handle in life.supervisors.drain(..) {
            let _ = handle.join();
        }
    }

    fn processes(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// A live worker, `preferred` first; waits while workers (re)start.
    pub fn pick(&self, preferred: usize) -> Result<Arc<Connection>, PluginError> {
        let mut state = self.state.lock();
        loop {
            if state.closing {
                return Err(PluginError::WorkerDied(format!(
                    "the worker processes of item {} are stopping",
                    self.item.name
                )));
            }
            let n = state.slots.len();
            for k in 0..n {
                if let Some(conn) = &state.slots[(preferred + k) % n].conn
                    && !conn.is_dead()
                {
                    return Ok(Arc::clone(conn));
                }
            }
            if state.slots.iter().all(|s| s.phase == Phase::Failed) {
                let last = state
                    .slots
                    .iter()
                    .find_map(|s| s.last_failure.clone())
                    .unwrap_or_default();
                return Err(PluginError::WorkerDied(format!(
                    "every worker process of item {} failed (last: {last}); see the log, fix the cause, then restart the item",
                    self.item.name
                )));
            }
            self.changed.wait_for(&mut state, Duration::from_millis(200));
        }
    }

    fn closing(&self) -> bool {
        self.state.lock().closing
    }

    fn set_phase(&self, index: usize, phase: Phase) {
        self.state.lock().slots[index].phase = phase;
        self.changed.notify_all();
    }

    /// One worker's whole life: start, watch, restart with backoff until the
    /// pool closes or the restart policy gives up.
    fn supervise(self: Arc<Self>, index: usize) {
        let id = self.worker_id(index);
        loop {
            if self.closing() {
                self.set_phase(index, Phase::Stopped);
                return;
            }
            self.set_phase(index, Phase::Starting);
            let reason = match self.run_once(index, &id) {
                Exit::Stopped => {
                    self.set_phase(index, Phase::Stopped);
                    return;
                }
                Exit::Died(reason) => reason,
            };
            if self.closing() {
                self.set_phase(index, Phase::Stopped);
                return;
            }
            tracing::warn!(item = %self.item.name, worker = %id, reason = %reason, "worker process failed");
            match self.restart_decision(&reason) {
                Some(backoff) => {
                    {
                        let mut state = self.state.lock();
                        state.slots[index].restarts += 1;
                        state.slots[index].phase = Phase::Restarting;
                        state.slots[index].last_failure = Some(reason);
                    }
                    if !self.sleep_unless_closing(backoff) {
                        self.set_phase(index, Phase::Stopped);
                        return;
                    }
                }
                None => {
                    {
                        let mut state = self.state.lock();
                        state.slots[index].phase = Phase::Failed;
                        state.slots[index].last_failure = Some(reason);
                    }
                    self.changed.notify_all();
                    tracing::error!(item = %self.item.name, worker = %id, "worker process not restarted: restart policy exhausted");
                    return;
                }
            }
        }
    }

    fn restart_decision(&self, reason: &str) -> Option<Duration> {
        let shared = self.engine.get().and_then(Weak::upgrade);
        match shared {
            Some(shared) => {
                let item = shared.item(&self.item.name)?;
                shared.restart_decision(&item, reason)
            }
            // not part of a running engine (tools, benches): restart after a pause
            None => Some(self.item.restart.backoff),
        }
    }

    fn sleep_unless_closing(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut state = self.state.lock();
        while !state.closing {
            if self.changed.wait_until(&mut state, until).timed_out() {
                return !state.closing;
            }
        }
        false
    }

    fn run_once(&self, index: usize, id: &str) -> Exit {
        let (ours, theirs) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => return Exit::Died(format!("cannot create a socketpair: {e}")),
        };
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .arg("--production")
            .arg(&self.file)
            .arg("--item")
            .arg(&self.item.name)
            .arg("--worker")
            .arg(id)
            .arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--threads")
            .arg(self.threads.to_string())
            // the socket is the worker's stdin: std dups it there for the child
            // only, so no other child inherits it and EOF means this worker is gone
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let spawned = cmd.spawn();
        drop(cmd);
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return Exit::Died(format!("cannot start {}: {e}", self.exe.display())),
        };
        let pid = child.id();
        self.state.lock().slots[index].pid = Some(pid);
        forward_output(child.stdout.take(), &self.item.name, id, pid);
        forward_output(child.stderr.take(), &self.item.name, id, pid);
        let hello = Frame::Hello {
            protocol: protocol::PROTOCOL_VERSION,
            build: protocol::build_id(),
            item: self.item.name.clone(),
            worker: id.to_string(),
            plugin: self.state.lock().plugin.clone(),
            adapter: self.item.adapter.is_some(),
        };
        let (conn, reader) = match Connection::handshake(ours, id, &hello, self.settings.start_timeout) {
            Ok(c) => c,
            Err(reason) => {
                let status = kill_and_reap(&mut child);
                self.state.lock().slots[index].pid = None;
                return Exit::Died(format!("{reason} ({status})"));
            }
        };
        if let Err(reason) = conn.set_write_timeout(self.settings.heartbeat_timeout) {
            conn.mark_dead(&reason);
            let status = kill_and_reap(&mut child);
            return Exit::Died(format!("{reason} ({status})"));
        }
        let (death_tx, death_rx) = crossbeam_channel::bounded(1);
        let reader_conn = Arc::clone(&conn);
        let spawned = std::thread::Builder::new()
            .name(format!("{id}-rd"))
            .spawn(move || {
                let reason = reader_conn.read_loop(reader);
                let _ = death_tx.send(reason);
            });
        if let Err(e) = spawned {
            conn.mark_dead("no reader thread");
            let status = kill_and_reap(&mut child);
            return Exit::Died(format!("cannot start a reader thread: {e} ({status})"));
        }
        {
            let mut state = self.state.lock();
            state.slots[index].conn = Some(Arc::clone(&conn));
            state.slots[index].phase = Phase::Running;
        }
        self.changed.notify_all();
        tracing::info!(item = %self.item.name, worker = %id, pid, "worker process ready");
        let exit = self.watch(&conn, &death_rx, &mut child, id);
        let mut state = self.state.lock();
        state.slots[index].conn = None;
        state.slots[index].pid = None;
        exit
    }

    /// Heartbeats until the worker dies or the pool closes.
    fn watch(&self, conn: &Connection, death: &Receiver<String>, child: &mut Child, id: &str) -> Exit {
        let mut seq = 0u64;
        let mut next_beat = Instant::now() + self.settings.heartbeat;
        loop {
            match death.recv_timeout(TICK) {
                Ok(reason) => {
                    let status = kill_and_reap(child);
                    return Exit::Died(format!("{reason} ({status})"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = kill_and_reap(child);
                    return Exit::Died(format!("its reader stopped ({status})"));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.closing() {
                return self.stop(conn, death, child, id);
            }
            let now = Instant::now();
            if now >= next_beat {
                seq += 1;
                // skipped when a writer holds the socket: the silence check below still runs
                conn.try_send(&Frame::Heartbeat { seq });
                next_beat = now + self.settings.heartbeat;
            }
            if let Some(reason) = conn.dead_reason() {
                let status = kill_and_reap(child);
                return Exit::Died(format!("{reason} ({status})"));
            }
            let silent = conn.last_ack().elapsed();
            if silent > self.settings.heartbeat_timeout {
                let reason = format!("missed heartbeats: silent for {} ms, killed", silent.as_millis());
                conn.mark_dead(&reason);
                let status = kill_and_reap(child);
                return Exit::Died(format!("{reason} ({status})"));
            }
        }
    }

    /// Graceful stop: the worker finishes what it has, runs `on-stop` and exits;
    /// SIGKILL after the stop timeout.
    fn stop(&self, conn: &Connection, death: &Receiver<String>, child: &mut Child, id: &str) -> Exit {
        let _ = conn.send(&Frame::Shutdown);
        let deadline = Instant::now() + self.settings.stop_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                conn.mark_dead("stopped");
                tracing::info!(item = %self.item.name, worker = %id, %status, "worker process stopped");
                return Exit::Stopped;
            }
            if Instant::now() >= deadline {
                conn.mark_dead("stopped");
                let status = kill_and_reap(child);
                tracing::warn!(item = %self.item.name, worker = %id, %status, "worker process did not stop in time: killed");
                return Exit::Stopped;
            }
            let _ = death.recv_timeout(TICK);
        }
    }
}

/// SIGKILL the worker's process group and reap the worker; returns how it ended.
fn kill_and_reap(child: &mut Child) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        return status.to_string();
    }
    // the worker leads its own process group (process_group(0)); the pid cannot
    // have been reused because the child is not reaped yet
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("cannot reap it: {e}"),
    }
}

/// Copy a worker's output lines into the engine's log, with the worker id.
fn forward_output(stream: Option<impl Read + Send + 'static>, item: &str, worker: &str, pid: u32) {
    let Some(stream) = stream else { return };
    let (item, worker) = (item.to_string(), worker.to_string());
    let _ = std::thread::Builder::new()
        .name(format!("{worker}-out"))
        .spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                // the worker writes `LEVEL target: message`: keep its level, so
                // its warnings stay warnings and the item's log level applies
                let (level, text) = worker_line(&line);
                match level {
                    tracing::Level::ERROR => {
                        tracing::error!(target: "hie_worker", item = %item, worker = %worker, pid, "{text}")
                    }
                    tracing::Level::WARN => {
                        tracing::warn!(target: "hie_worker", item = %item, worker = %worker, pid, "{text}")
                    }
                    tracing::Level::DEBUG => {
                        tracing::debug!(target: "hie_worker", item = %item, worker = %worker, pid, "{text}")
                    }
                    tracing::Level::TRACE => {
                        tracing::trace!(target: "hie_worker", item = %item, worker = %worker, pid, "{text}")
                    }
                    _ => tracing::info!(target: "hie_worker", item = %item, worker = %worker, pid, "{text}"),
                }
            }
        });
}

/// The level a worker's log line starts with, and the rest; a line without one
/// (a panic message, say) is a `WARN` as it is.
fn worker_line(line: &str) -> (tracing::Level, &str) {
    let trimmed = line.trim_start();
    let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let level = match word {
        "ERROR" => tracing::Level::ERROR,
        "WARN" => tracing::Level::WARN,
        "INFO" => tracing::Level::INFO,
        "DEBUG" => tracing::Level::DEBUG,
        "TRACE" => tracing::Level::TRACE,
        _ => return (tracing::Level::WARN, line),
    };
    (level, rest.trim_start())
}

/// The process pools of a running production, one per multi_process item,
/// made when the item's first worker thread asks for an instance. A config
/// reload that changes the item gets a new pool; the old one stops when its last
/// worker thread lets go.
pub struct ProcessPools {
    file: PathBuf,
    exe: PathBuf,
    pools: Mutex<HashMap<String, Arc<ProcessPool>>>,
    engine: OnceLock<Weak<Shared>>,
}

impl std::fmt::Debug for ProcessPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPools")
            .field("items", &self.pools.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProcessPools {
    /// Pools for the production in `file`. Workers are started from
    /// `$HIE_WORKER_EXE` if set (tools and tests that embed the engine), else
    /// from this process's own executable (`hie`).
    pub fn new(file: PathBuf) -> Arc<Self> {
        let exe = std::env::var_os("HIE_WORKER_EXE")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("hie"));
        Arc::new(ProcessPools {
            file,
            exe,
            pools: Mutex::new(HashMap::new()),
            engine: OnceLock::new(),
        })
    }

    /// Let worker restarts count against the items' restart policies.
    pub(crate) fn attach(&self, shared: Weak<Shared>) {
        let _ = self.engine.set(shared);
    }

    /// The pool of `item` (made now if it has none, or if its config changed).
    pub fn pool_for(&self, item: &ItemConfig) -> Result<Arc<ProcessPool>, PluginError> {
        let Execution::MultiProcess { processes, threads } = item.execution else {
            return Err(PluginError::Instantiate(format!(
                "item {} does not run in multi_process mode",
                item.name
            )));
        };
        let mut pools = self.pools.lock();
        if let Some(pool) = pools.get(&item.name)
            && pool.item == *item
        {
            return Ok(Arc::clone(pool));
        }
        let settings =
            ProcessSettings::of(item, &self.file).map_err(|e| PluginError::Instantiate(e.to_string()))?;
        let pool = ProcessPool::new(
            item,
            self.file.clone(),
            self.exe.clone(),
            settings,
            processes,
            threads,
        );
        if let Some(engine) = self.engine.get() {
            pool.attach(engine.clone());
        }
        pools.insert(item.name.clone(), Arc::clone(&pool));
        Ok(pool)
    }

    /// The pool of the item called `item`, if it has one (hot reload, status).
    pub fn get(&self, item: &str) -> Option<Arc<ProcessPool>> {
        self.pools.lock().get(item).cloned()
    }

    /// The worker processes of `item` (empty unless it runs in multi_process mode).
    pub fn status(&self, item: &str) -> Vec<WorkerStatus> {
        self.get(item).map(|p| p.status()).unwrap_or_default()
    }
}

/// A [`PluginFactory`] that gives multi_process items proxies to their worker
/// processes and leaves every other item (and every hook) to `inner`.
pub struct ProcessFactory {
    inner: Arc<dyn PluginFactory>,
    pools: Arc<ProcessPools>,
    /// Versions loaded for multi_process items: content hash → component file,
    /// which every call of that version names so the worker runs it.
    files: Mutex<HashMap<String, PathBuf>>,
}

impl ProcessFactory {
    /// Proxies through `pools` for multi_process items, `inner` for the rest.
    pub fn new(inner: Arc<dyn PluginFactory>, pools: Arc<ProcessPools>) -> Self {
        ProcessFactory {
            inner,
            pools,
            files: Mutex::new(HashMap::new()),
        }
    }
}

fn is_multi_process(item: &ItemConfig) -> bool {
    matches!(item.execution, Execution::MultiProcess { .. })
}

impl PluginFactory for ProcessFactory {
    fn item_instance(
        &self,
        item: &ItemConfig,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        if is_multi_process(item) {
            Ok(Box::new(RemoteInstance::new(
                self.pools.pool_for(item)?,
                host,
                adapter,
                None,
            )?))
        } else {
            self.inner.item_instance(item, host, adapter)
        }
    }

    fn load_version(&self, item: &ItemConfig, path: &Path) -> Result<String, PluginError> {
        let hash = self.inner.load_version(item, path)?;
        if is_multi_process(item) {
            self.files.lock().insert(hash.clone(), path.to_path_buf());
        }
        Ok(hash)
    }

    fn configured_version(&self, item: &ItemConfig) -> Option<String> {
        self.inner.configured_version(item)
    }

    fn version_instance(
        &self,
        item: &ItemConfig,
        hash: &str,
        host: Arc<dyn HostApi>,
        adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        if !is_multi_process(item) {
            return self.inner.version_instance(item, hash, host, adapter);
        }
        if self.inner.configured_version(item).as_deref() == Some(hash) {
            return self.item_instance(item, host, adapter);
        }
        let Some(file) = self.files.lock().get(hash).cloned() else {
            return Err(PluginError::Instantiate(format!(
                "item {}: plugin version {hash} was never loaded; reload it from its file",
                item.name
            )));
        };
        // the worker processes make their instances of this version when a call
        // names it (same pid, each thread after its current call); on-init has
        // been checked in the engine by the reload's trial instance
        Ok(Box::new(RemoteInstance::new(
            self.pools.pool_for(item)?,
            host,
            adapter,
            Some(file),
        )?))
    }

    fn trial(&self, item: &ItemConfig, hash: &str, host: Arc<dyn HostApi>) -> Result<(), PluginError> {
        // in the engine, sandboxed like every instance: a version whose on-init
        // fails is refused before any worker process sees it
        let local = super::plugin_view(item);
        self.inner.version_instance(&local, hash, host, None).map(drop)
    }

    fn hook_instance(
        &self,
        hook: &HookConfig,
        host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError> {
        self.inner.hook_instance(hook, host)
    }
}

#[cfg(test)]
mod tests {
    use super::worker_line;
    use tracing::Level;

    #[test]
    fn worker_lines_keep_their_level() {
        assert_eq!(
            worker_line(" WARN hie_plugin: slow lookup item=router"),
            (Level::WARN, "hie_plugin: slow lookup item=router")
        );
        assert_eq!(
            worker_line("ERROR hie::cmd::worker: worker stops"),
            (Level::ERROR, "hie::cmd::worker: worker stops")
        );
        assert_eq!(worker_line("DEBUG x: y"), (Level::DEBUG, "x: y"));
        assert_eq!(worker_line("TRACE x: y"), (Level::TRACE, "x: y"));
        assert_eq!(worker_line(" INFO x: y"), (Level::INFO, "x: y"));
        let panic = "thread 'main' panicked at src/lib.rs:1:1:";
        assert_eq!(worker_line(panic), (Level::WARN, panic));
        assert_eq!(worker_line(""), (Level::WARN, ""));
    }
}
