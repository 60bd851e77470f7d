//! The running production: items with their queues and workers, message
//! delivery between them, the request/reply broker, and lifecycle control.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hie_config::{ItemConfig, ItemKind, Overflow, Production, QueueKind, RestartPolicy};
use hie_core::{Envelope, Failure, HostApi, LogLevel, MessageId, now_ms};
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::outbound::OutboundSpec;
use crate::adapters::{file_in, mllp_in};
use crate::dead_letter::{DeadLetter, DeadLetterQueue};
use crate::delivery::{Delivery, InboundResult, ReplyTo, Work};
use crate::error::EngineError;
use crate::executor::{Executor, WorkerJoin};
use crate::outward;
use crate::plugin::PluginFactory;
use crate::queue::{ItemQueue, PushError, QueueStats};
use crate::worker;

/// The state of an item as an operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// Workers take messages.
    Running,
    /// Workers hold back; the queue accepts up to capacity.
    Paused,
    /// Stopped by an operator; messages to it are refused.
    Disabled,
    /// Stopped by its restart policy; its queue keeps what it holds.
    Failed,
    /// The production is stopping.
    Stopping,
    /// Workers stopped by an operator (`stop`); the queue keeps and accepts
    /// messages up to capacity until `start`.
    Stopped,
}

impl ItemState {
    /// Every state, for metrics.
    pub const ALL: [ItemState; 6] = [
        ItemState::Running,
        ItemState::Paused,
        ItemState::Disabled,
        ItemState::Failed,
        ItemState::Stopping,
        ItemState::Stopped,
    ];

    /// The state as a lowercase word (admin API, metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Running => "running",
            ItemState::Paused => "paused",
            ItemState::Disabled => "disabled",
            ItemState::Failed => "failed",
            ItemState::Stopping => "stopping",
            ItemState::Stopped => "stopped",
        }
    }
}

/// An item's state and queue counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatus {
    /// Name.
    pub name: String,
    /// State.
    pub state: ItemState,
    /// Queue counters.
    pub queue: QueueStats,
    /// Worker restarts so far.
    pub restarts: u64,
    /// Plugin versions: current, previous, canary, per worker.
    pub versions: crate::reload::VersionStatus,
    /// Worker processes (multi_process items; empty otherwise): pid, state, restarts, in-flight.
    pub workers: Vec<crate::process::WorkerStatus>,
}

/// One item at run time.
pub(crate) struct ItemRuntime {
    pub config: ItemConfig,
    pub queue: ItemQueue,
    pub executor: Executor,
    pub outbound: Option<OutboundSpec>,
    pub state: Mutex<ItemState>,
    restart_times: Mutex<VecDeque<Instant>>,
    restarts_total: Mutex<u64>,
    workers: Mutex<Vec<WorkerJoin>>,
    /// Plugin versions: current, previous, canary (hot reload).
    pub versions: crate::reload::PluginVersions,
}

impl ItemRuntime {
    /// An item built from its config, not started yet (start-up and config reload).
    pub(crate) fn new(
        config: &ItemConfig,
        runtime: &Handle,
        production_file: &std::path::Path,
    ) -> Result<ItemRuntime, EngineError> {
        let executor = Executor::for_item(config, runtime)?;
        let outbound = OutboundSpec::for_item(config, production_file)?;
        let state = if config.enabled {
            ItemState::Running
        } else {
            ItemState::Disabled
        };
        let item = ItemRuntime {
            queue: ItemQueue::new(&config.queue.kind, config.queue.capacity),
            config: config.clone(),
            executor,
            outbound,
            state: Mutex::new(state),
            restart_times: Mutex::new(VecDeque::new()),
            restarts_total: Mutex::new(0),
            workers: Mutex::new(Vec::new()),
            versions: crate::reload::PluginVersions::default(),
        };
        if !config.enabled {
            item.queue.close();
        }
        Ok(item)
    }

    /// The key of `msg` in this item's keyed queue.
    pub(crate) fn key_of(&self, msg: &Envelope) -> Option<String> {
        let QueueKind::Keyed { key } = &self.config.queue.kind else {
            return None;
        };
        let value = hie_hl7::Message::parse(&msg.body)
            .ok()
            .and_then(|m| m.get(key).ok().flatten());
        Some(value.unwrap_or_default())
    }

    pub fn is_accepting(&self) -> bool {
        matches!(
            *self.state.lock(),
            ItemState::Running | ItemState::Paused | ItemState::Failed | ItemState::Stopped
        )
    }

    pub fn set_state(&self, state: ItemState) {
        *self.state.lock() = state;
    }
}

/// Why a send did not queue the message.
#[derive(Debug)]
pub(crate) struct SendError {
    pub failure: Failure,
    /// The message is already in the dead-letter queue (overflow `dead-letter`).
    pub dead_lettered: bool,
    /// The refused message, when it is not in the dead-letter queue.
    pub message: Option<Box<Envelope>>,
}

/// What workers and adapters share. Items and the production are swapped as a
/// whole by a config reload (`reload.rs`); readers take a snapshot.
pub(crate) struct Shared {
    production: RwLock<Arc<Production>>,
    items: RwLock<HashMap<String, Arc<ItemRuntime>>>,
    pub dead_letters: DeadLetterQueue,
    /// The durable store; `None` with `[store] backend = "none"` (`persist.rs`).
    pub store: Option<Arc<crate::persist::Persist>>,
    /// Prometheus metrics (`metrics.rs`).
    pub metrics: Arc<crate::metrics::EngineMetrics>,
    pub factory: Arc<dyn PluginFactory>,
    pub runtime: Handle,
    pub host: Arc<EngineHost>,
    /// Worker processes of multi_process items.
    pub processes: Arc<crate::process::ProcessPools>,
}

impl Shared {
    pub fn item(&self, name: &str) -> Option<Arc<ItemRuntime>> {
        self.items.read().get(name).cloned()
    }

    /// Every item, in no particular order.
    pub fn all_items(&self) -> Vec<Arc<ItemRuntime>> {
        self.items.read().values().cloned().collect()
    }

    /// The running production (as last started or reloaded).
    pub fn production(&self) -> Arc<Production> {
        Arc::clone(&self.production.read())
    }

    /// Install a reloaded production and its item set (config reload).
    pub fn replace(&self, production: Arc<Production>, items: HashMap<String, Arc<ItemRuntime>>) {
        *self.items.write() = items;
        *self.production.write() = production;
    }

    /// Queue `delivery` for `target` from a thread, honouring the target's overflow.
    /// On failure the delivery's waiter has been told.
    pub fn deliver(&self, target: &str, delivery: Delivery, wait: Option<Duration>) -> Result<(), SendError> {
        let item = match self.accepting(target) {
            Ok(item) => item,
            Err(f) => return Err(self.refuse(delivery, f, None)),
        };
        let key = delivery.envelope().and_then(|m| item.key_of(m));
        let pushed = match item.config.queue.overflow {
            Overflow::Block => item.queue.push_blocking(delivery, key, wait),
            Overflow::Reject | Overflow::DeadLetter => item.queue.try_push(delivery, key),
        };
        self.after_push(&item, pushed)
    }

    /// Queue `delivery` for `target` from an async task (inbound adapters): a full
    /// `block` queue makes the task wait, which stops reading the socket.
    pub async fn deliver_async(&self, target: &str, delivery: Delivery) -> Result<(), SendError> {
        let item = match self.accepting(target) {
            Ok(item) => item,
            Err(f) => return Err(self.refuse(delivery, f, None)),
        };
        let key = delivery.envelope().and_then(|m| item.key_of(m));
        let pushed = match item.config.queue.overflow {
            Overflow::Block => item.queue.push_async(delivery, key).await,
            Overflow::Reject | Overflow::DeadLetter => item.queue.try_push(delivery, key),
        };
        self.after_push(&item, pushed)
    }

    /// Queue `delivery` for `target` without waiting: a full `block` queue takes it
    /// anyway. For an intake that waited for room ([`ItemQueue::wait_for_room`]) before
    /// it submitted its commit, so nothing can cancel it between the commit and the push.
    pub fn deliver_now(&self, target: &str, delivery: Delivery) -> Result<(), SendError> {
        let item = match self.accepting(target) {
            Ok(item) => item,
            Err(f) => return Err(self.refuse(delivery, f, None)),
        };
        let key = delivery.envelope().and_then(|m| item.key_of(m));
        let pushed = match item.config.queue.overflow {
            Overflow::Block => item.queue.push_force(delivery, key),
            Overflow::Reject | Overflow::DeadLetter => item.queue.try_push(delivery, key),
        };
        self.after_push(&item, pushed)
    }

    /// The item `target` if it takes messages now; the failure to report if not.
    pub(crate) fn accepting(&self, target: &str) -> Result<Arc<ItemRuntime>, Failure> {
        let Some(item) = self.item(target) else {
            return Err(Failure::permanent(
                outward::UNKNOWN_TARGET,
                format!("no item named {target:?}"),
            ));
        };
        if !item.is_accepting() {
            return Err(Failure::transient(
                outward::ITEM_UNAVAILABLE,
                format!("item {target} is not taking messages"),
            ));
        }
        Ok(item)
    }

    fn after_push(&self, item: &ItemRuntime, pushed: Result<(), PushError>) -> Result<(), SendError> {
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Closed(d)) => Err(self.refuse(
                *d,
                Failure::transient(
                    outward::ITEM_UNAVAILABLE,
                    format!("item {} is not taking messages", item.config.name),
                ),
                None,
            )),
            Err(PushError::Full(d)) => {
                let failure = Failure::transient(
                    outward::QUEUE_FULL,
                    format!(
                        "queue of item {} is full ({})",
                        item.config.name,
                        item.queue.capacity()
                    ),
                );
                let dead_letter = item.config.queue.overflow == Overflow::DeadLetter;
                Err(self.refuse(*d, failure, dead_letter.then_some(item.config.name.as_str())))
            }
        }
    }

    /// Tell the waiter of a delivery that was not queued; dead-letter it (as meant
    /// for `dead_letter`) if asked.
    pub fn refuse(&self, delivery: Delivery, failure: Failure, dead_letter: Option<&str>) -> SendError {
        let Delivery { work, reply_to, gate } = delivery;
        // an intake not committed yet dead-letters a refused copy once it is stored
        let dead_letter = dead_letter.filter(|_| gate.is_none());
        let mut message = match work {
            Work::Message(m) => Some(m),
            Work::Reply { .. } => None,
        };
        if let Some(item) = dead_letter
            && let Some(m) = message.take()
        {
            self.dead_letters.put(item, m, failure.clone());
        }
        match reply_to {
            ReplyTo::Inbound(w) => w.resolve(InboundResult::Refused(failure.clone())),
            other => self.resolve(other, Err(failure.clone())),
        }
        SendError {
            failure,
            dead_lettered: dead_letter.is_some(),
            message: message.map(Box::new),
        }
    }

    /// Tell whoever waits for a delivery how it ended: `Ok(Some)` a reply,
    /// `Ok(None)` done without a reply, `Err` a failure.
    pub fn resolve(&self, reply_to: ReplyTo, result: Result<Option<Envelope>, Failure>) {
        match reply_to {
            ReplyTo::Nobody => {}
            ReplyTo::Sync(tx) => {
                let reply = result.and_then(|r| {
                    r.ok_or_else(|| {
                        Failure::permanent(outward::NO_REPLY, "the target finished without a reply")
                    })
                });
                let _ = tx.send(reply);
            }
            ReplyTo::Async { item, correlation_id } => {
                if REQUESTING.with(|r| r.borrow().as_deref() == Some(correlation_id.as_str())) {
                    // refused while `send-request-async` queues it: that call returns
                    // the failure, so `on-reply` does not get it too
                    self.host.take_pending(&correlation_id);
                    return;
                }
                if !self.host.take_pending(&correlation_id) {
                    // its timeout already went to the requester's on-reply
                    tracing::warn!(item = %item, correlation_id = %correlation_id, ok = result.is_ok(), "late reply dropped: the async request had timed out");
                    return;
                }
                let reply = result.and_then(|r| {
                    r.ok_or_else(|| {
                        Failure::permanent(outward::NO_REPLY, "the target finished without a reply")
                    })
                });
                self.reply_to_requester(&item, correlation_id, reply);
            }
            ReplyTo::Inbound(w) => w.resolve(match result {
                Ok(Some(reply)) => InboundResult::Replied(reply.body),
                Ok(None) => InboundResult::Accepted,
                Err(f) => InboundResult::Failed(f),
            }),
        }
    }

    /// Queue the result of an async request for the `on-reply` of `item`.
    fn reply_to_requester(&self, item: &str, correlation_id: String, result: Result<Envelope, Failure>) {
        let Some(requester) = self.item(item) else {
            tracing::warn!(item = %item, correlation_id = %correlation_id, "reply dropped: the requester no longer exists");
            return;
        };
        let delivery = Delivery {
            work: Work::Reply {
                correlation_id: correlation_id.clone(),
                result,
            },
            reply_to: ReplyTo::Nobody,
            gate: None,
        };
        if requester.queue.push_force(delivery, None).is_err() {
            tracing::warn!(item = %item, correlation_id = %correlation_id, "reply dropped: requester is stopped");
        }
    }

    /// Count a worker failure against the item's restart policy. `Some(backoff)`:
    /// restart after waiting that long; `None`: the item is now failed.
    ///
    /// `on-failure` restarts with exponential backoff until more than
    /// `max_restarts` happen within `within`; then the item is failed. `always`
    /// never fails the item: past the intensity limit it logs an alert and keeps
    /// restarting at `max_backoff`. `never` fails the item at once.
    pub fn restart_decision(&self, item: &ItemRuntime, reason: &str) -> Option<Duration> {
        let policy = item.config.restart;
        let name = &item.config.name;
        if policy.policy == RestartPolicy::Never {
            self.mark_failed(item, reason);
            return None;
        }
        let now = Instant::now();
        let mut times = item.restart_times.lock();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.within)
        {
            times.pop_front();
        }
        if times.len() >= policy.max_restarts as usize {
            if policy.policy != RestartPolicy::Always {
                drop(times);
                self.mark_failed(item, reason);
                return None;
            }
            times.pop_front();
            times.push_back(now);
            drop(times);
            *item.restarts_total.lock() += 1;
            self.metrics.item(name).restarted();
            let backoff = policy.max_backoff;
            tracing::error!(item = %name, reason, max_restarts = policy.max_restarts, within_ms = policy.within.as_millis() as u64, backoff_ms = backoff.as_millis() as u64, "restart intensity exceeded; worker restarting anyway (policy always)");
            return Some(backoff);
        }
        times.push_back(now);
        let n = times.len() as u32;
        drop(times);
        *item.restarts_total.lock() += 1;
        self.metrics.item(name).restarted();
        let backoff = policy
            .backoff
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
            .min(policy.max_backoff);
        tracing::warn!(item = %name, reason, restart = n, backoff_ms = backoff.as_millis() as u64, "worker restarting");
        Some(backoff)
    }

    fn mark_failed(&self, item: &ItemRuntime, reason: &str) {
        let mut state = item.state.lock();
        if *state == ItemState::Failed {
            return;
        }
        *state = ItemState::Failed;
        drop(state);
        tracing::error!(item = %item.config.name, reason, "item failed: restart policy exhausted");
        item.queue.next_epoch();
    }
}

thread_local! {
    /// The correlation id of the async request this thread is queueing right now.
    static REQUESTING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The engine's implementation of the plugin host imports.
pub(crate) struct EngineHost {
    shared: Weak<Shared>,
    /// Async requests waiting for their reply: correlation id → its timeout timer.
    pending: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl EngineHost {
    pub(crate) fn new(shared: Weak<Shared>) -> Self {
        EngineHost {
            shared,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Claim the right to answer async request `correlation_id` (the reply or its
    /// timeout, whichever comes first); false if it was already answered.
    fn take_pending(&self, correlation_id: &str) -> bool {
        match self.pending.lock().remove(correlation_id) {
            Some(timer) => {
                timer.abort();
                true
            }
            None => false,
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, Failure> {
        self.shared
            .upgrade()
            .ok_or_else(|| Failure::permanent("no-engine", "the production has stopped"))
    }

    /// A plugin-made message as it leaves `from` for `target`.
    fn outgoing(from: &str, target: &str, mut msg: Envelope) -> Envelope {
        let ctx = worker::current_message();
        msg.id = uuid::Uuid::now_v7();
        if let Some(ctx) = &ctx {
            msg.session_id = ctx.session_id;
            msg.parent_id = Some(ctx.message_id);
        } else if msg.session_id.is_nil() {
            msg.session_id = msg.id;
        }
        msg.source = from.to_string();
        msg.target = target.to_string();
        msg.attempt = 1;
        msg.created_at_ms = now_ms();
        msg
    }
}

impl HostApi for EngineHost {
    /// Plugin log lines are already emitted by the plugin host (`hie-wasm`,
    /// target `hie_plugin`); logging them here too would print every line twice.
    fn log(&self, _item: &str, _level: LogLevel, _text: &str) {}

    fn lookup(&self, table: &str, key: &str) -> Option<String> {
        let shared = self.shared.upgrade()?;
        shared.production().lookups.get(table)?.get(key).cloned()
    }

    fn send(&self, from: &str, target: &str, msg: Envelope) -> Result<(), Failure> {
        let shared = self.shared()?;
        let msg = Self::outgoing(from, target, msg);
        shared
            .deliver_new(target, Delivery::message(msg), None)
            .map_err(|e| e.failure)
    }

    fn send_request_sync(
        &self,
        from: &str,
        target: &str,
        msg: Envelope,
        timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        let shared = self.shared()?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        if target == from && shared.item(from).is_some_and(|i| i.executor.workers() == 1) {
            return Err(Failure::transient(
                outward::TIMEOUT,
                format!("item {from} would wait on itself: it has one worker"),
            ));
        }
        let mut msg = Self::outgoing(from, target, msg);
        let correlation_id = uuid::Uuid::now_v7();
        msg.correlation_id = Some(correlation_id);
        let deadline = Instant::now() + timeout;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let delivery = Delivery {
            work: Work::Message(msg),
            reply_to: ReplyTo::Sync(tx),
            gate: None,
        };
        tracing::debug!(item = from, target, correlation_id = %correlation_id, "request sent");
        shared
            .deliver_new(target, delivery, Some(timeout))
            .map_err(|e| e.failure)?;
        drop(shared);
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(reply) => reply,
            Err(_) => Err(Failure::transient(
                outward::TIMEOUT,
                format!("no reply from {target} within {timeout_ms} ms"),
            )),
        }
    }

    fn send_request_async(&self, from: &str, target: &str, msg: Envelope) -> Result<String, Failure> {
        let shared = self.shared()?;
        let mut msg = Self::outgoing(from, target, msg);
        let correlation_id = uuid::Uuid::now_v7();
        msg.correlation_id = Some(correlation_id);
        let cid = correlation_id.to_string();
        let timeout = shared
            .item(from)
            .map_or(hie_config::DEFAULT_REQUEST_TIMEOUT, |i| i.config.request_timeout);
        // Registered before the request is queued: a fast reply must find it.
        {
            let weak = self.shared.clone();
            let (from, target, key) = (from.to_string(), target.to_string(), cid.clone());
            let mut pending = self.pending.lock();
            let timer = shared.runtime.spawn(async move {
                let cid = key;
                tokio::time::sleep(timeout).await;
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                if shared.host.pending.lock().remove(&cid).is_none() {
                    return;
                }
                tracing::warn!(item = %from, target = %target, correlation_id = %cid, timeout_ms = timeout.as_millis() as u64, "async request timed out");
                let failure = Failure::transient(
                    outward::TIMEOUT,
                    format!("no reply from {target} within {} ms", timeout.as_millis()),
                );
                shared.reply_to_requester(&from, cid, Err(failure));
            });
            pending.insert(cid.clone(), timer.abort_handle());
        }
        let delivery = Delivery {
            work: Work::Message(msg),
            reply_to: ReplyTo::Async {
                item: from.to_string(),
                correlation_id: cid.clone(),
            },
            gate: None,
        };
        REQUESTING.with(|r| *r.borrow_mut() = Some(cid.clone()));
        let queued = shared.deliver_new(target, delivery, None);
        REQUESTING.with(|r| *r.borrow_mut() = None);
        if let Err(e) = queued {
            // refused at once: the caller gets the failure; no timer is left behind
            self.take_pending(&cid);
            return Err(e.failure);
        }
        Ok(cid)
    }

    fn counter_add(&self, item: &str, name: &str, value: u64) {
        tracing::trace!(item, counter = name, value, "plugin counter");
    }

    fn histogram_record(&self, item: &str, name: &str, value: f64) {
        tracing::trace!(item, histogram = name, value, "plugin histogram");
    }
}

/// A running production.
pub struct Engine {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    inbound: TaskTracker,
    /// Inbound adapters by service: bound address (0.0.0.0:0 for a poller) and its stop token.
    listeners: Mutex<HashMap<String, (SocketAddr, CancellationToken)>>,
    /// One plugin or config reload at a time.
    pub(crate) reload: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("production", &self.shared.production().name)
            .finish_non_exhaustive()
    }
}

/// The order items start in: operations, then processes, then services.
fn start_rank(kind: ItemKind) -> u8 {
    match kind {
        ItemKind::Operation => 0,
        ItemKind::Process => 1,
        ItemKind::Service => 2,
    }
}

/// Check what only the engine knows without starting anything: execution modes
/// it supports and adapter settings it parses (reply-code policies).
pub fn preflight(production: &Production) -> Vec<EngineError> {
    let runtime = Handle::try_current().ok();
    let mut errors = Vec::new();
    for item in &production.items {
        if let Some(rt) = &runtime
            && let Err(e) = Executor::for_item(item, rt)
        {
            errors.push(e);
        }
        if matches!(item.execution, hie_config::Execution::MultiProcess { .. })
            && let Err(e) = crate::process::ProcessSettings::of(item, &production.file)
        {
            errors.push(e);
        }
        if let Err(e) = OutboundSpec::for_item(item, &production.file) {
            errors.push(e);
        }
    }
    errors
}

impl Engine {
    /// Build and start `production` (its plugins resolved) on the current tokio
    /// runtime: operations first, then processes, then services and their listeners.
    pub async fn start(
        production: Production,
        factory: Arc<dyn PluginFactory>,
    ) -> Result<Engine, EngineError> {
        let runtime = Handle::try_current().map_err(|_| EngineError::NoRuntime)?;
        let processes = crate::process::ProcessPools::new(production.file.clone());
        let factory: Arc<dyn PluginFactory> = Arc::new(crate::process::ProcessFactory::new(
            factory,
            Arc::clone(&processes),
        ));
        let store = crate::persist::Persist::open(&production)?.map(Arc::new);
        let mut items = HashMap::new();
        for config in &production.items {
            let item = ItemRuntime::new(config, &runtime, &production.file)?;
            item.versions.init(factory.as_ref(), config);
            items.insert(config.name.clone(), Arc::new(item));
        }
        let shared = Arc::new_cyclic(|weak| Shared {
            production: RwLock::new(Arc::new(production)),
            items: RwLock::new(items),
            dead_letters: DeadLetterQueue::with_store(store.clone()),
            store,
            metrics: Arc::default(),
            factory,
            runtime: runtime.clone(),
            host: Arc::new(EngineHost::new(weak.clone())),
            processes,
        });
        shared.processes.attach(Arc::downgrade(&shared));
        crate::persist::requeue_recovered(&shared).await?;
        let mut order = shared.all_items();
        order.sort_by_key(|i| (start_rank(i.config.kind), i.config.location.line));
        for item in &order {
            if item.config.enabled {
                start_workers(&shared, item)?;
            }
        }
        let engine = Engine {
            shared: Arc::clone(&shared),
            shutdown: CancellationToken::new(),
            inbound: TaskTracker::new(),
            listeners: Mutex::new(HashMap::new()),
            reload: tokio::sync::Mutex::new(()),
        };
        for item in &order {
            engine.start_inbound(item).await?;
        }
        tracing::info!(production = %shared.production().name, items = order.len(), "production started");
        Ok(engine)
    }

    /// Start the inbound adapter of a service (listener or poller), stopped by
    /// the engine's shutdown or by [`Engine::stop_inbound`].
    pub(crate) async fn start_inbound(&self, item: &Arc<ItemRuntime>) -> Result<(), EngineError> {
        let shared = &self.shared;
        let stop = self.shutdown.child_token();
        match &item.config.adapter {
            Some(hie_config::AdapterConfig::MllpIn(cfg)) if item.config.enabled => {
                let addr = mllp_in::start(shared, item, cfg, &self.inbound, stop.clone()).await?;
                self.listeners
                    .lock()
                    .insert(item.config.name.clone(), (addr, stop));
            }
            Some(hie_config::AdapterConfig::FileIn(cfg)) if item.config.enabled => {
                file_in::start(shared, item, cfg, &self.inbound, stop.clone())?;
                self.listeners.lock().insert(
                    item.config.name.clone(),
                    (SocketAddr::from(([0, 0, 0, 0], 0)), stop),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Stop the inbound adapter of a service (config reload removed or changed it).
    pub(crate) fn stop_inbound(&self, item: &str) {
        if let Some((_, stop)) = self.listeners.lock().remove(item) {
            stop.cancel();
        }
    }

    /// The production's name.
    pub fn name(&self) -> String {
        self.shared.production().name.clone()
    }

    /// The address an `mllp-in` item listens on.
    pub fn listener_addr(&self, item: &str) -> Option<SocketAddr> {
        self.listeners.lock().get(item).map(|(addr, _)| *addr)
    }

    /// The host imports as plugins see them (for tools and tests).
    pub fn host(&self) -> Arc<dyn HostApi> {
        self.shared.host.clone()
    }

    /// Send `msg` to `target` as if an item had (fire and forget).
    pub fn send(&self, target: &str, msg: Envelope) -> Result<(), Failure> {
        self.shared
            .deliver_new(target, Delivery::message(msg), Some(Duration::from_secs(30)))
            .map_err(|e| e.failure)
    }

    /// Every item's status, in file order.
    pub fn status(&self) -> Vec<ItemStatus> {
        let mut all: Vec<(usize, ItemStatus)> = self
            .shared
            .all_items()
            .iter()
            .map(|i| (i.config.location.line, status_of(i, &self.shared.processes)))
            .collect();
        all.sort_by_key(|(line, _)| *line);
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// One item's status.
    pub fn item_status(&self, item: &str) -> Result<ItemStatus, EngineError> {
        let item = self.item(item)?;
        Ok(status_of(&item, &self.shared.processes))
    }

    pub(crate) fn item(&self, name: &str) -> Result<Arc<ItemRuntime>, EngineError> {
        self.shared
            .item(name)
            .ok_or_else(|| EngineError::UnknownItem(name.to_string()))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Hold an item's workers back; its queue accepts up to capacity, then
    /// applies backpressure (or its overflow rule).
    pub fn pause(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        item.queue.pause();
        let mut state = item.state.lock();
        if *state == ItemState::Running {
            *state = ItemState::Paused;
        }
        tracing::info!(item = %item.config.name, "item paused");
        Ok(())
    }

    /// Let a paused item's workers go on.
    pub fn resume(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        let mut state = item.state.lock();
        if *state == ItemState::Paused {
            *state = ItemState::Running;
        }
        drop(state);
        item.queue.resume();
        tracing::info!(item = %item.config.name, "item resumed");
        Ok(())
    }

    /// Stop an item: its workers finish their message and end; what waits in its
    /// queue is dead-lettered; new messages to it are refused.
    pub async fn disable(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        item.set_state(ItemState::Disabled);
        item.queue.close();
        join_workers(&item).await;
        for d in crate::delivery::settled(item.queue.drain_waiting()).await {
            self.shared.refuse(
                d,
                Failure::transient(
                    outward::ITEM_UNAVAILABLE,
                    format!("item {} was disabled", item.config.name),
                ),
                Some(&item.config.name),
            );
        }
        tracing::info!(item = %item.config.name, "item disabled");
        Ok(())
    }

    /// Start a disabled (or failed) item again with fresh plugin instances.
    pub fn enable(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        item.queue.reopen();
        item.queue.resume();
        item.restart_times.lock().clear();
        item.set_state(ItemState::Running);
        item.queue.next_epoch();
        start_workers(&self.shared, &item)?;
        tracing::info!(item = %item.config.name, "item enabled");
        Ok(())
    }

    /// Replace an item's workers with fresh ones (new plugin instances); its queue is kept.
    pub async fn restart(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        item.queue.next_epoch();
        join_workers(&item).await;
        item.restart_times.lock().clear();
        {
            let mut state = item.state.lock();
            if *state == ItemState::Failed {
                *state = ItemState::Running;
            }
        }
        item.queue.next_epoch();
        start_workers(&self.shared, &item)?;
        tracing::info!(item = %item.config.name, "item restarted");
        Ok(())
    }

    /// Stop an item's workers (each finishes its current message); its queue
    /// keeps what it holds and accepts up to capacity until [`Engine::start_item`].
    pub async fn stop_item(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        {
            let mut state = item.state.lock();
            match *state {
                ItemState::Disabled | ItemState::Stopped => return Ok(()),
                ItemState::Stopping => {
                    return Err(state_error(&item, "cannot stop: the production is stopping"));
                }
                ItemState::Running | ItemState::Paused | ItemState::Failed => *state = ItemState::Stopped,
            }
        }
        item.queue.next_epoch();
        join_workers(&item).await;
        tracing::info!(item = %item.config.name, "item stopped");
        Ok(())
    }

    /// Start a stopped (or failed) item's workers again with fresh plugin instances.
    pub fn start_item(&self, item: &str) -> Result<(), EngineError> {
        let item = self.item(item)?;
        {
            let mut state = item.state.lock();
            match *state {
                ItemState::Running | ItemState::Paused => return Ok(()),
                ItemState::Disabled => {
                    return Err(state_error(
                        &item,
                        "is disabled: enable it (enable also starts it)",
                    ));
                }
                ItemState::Stopping => {
                    return Err(state_error(&item, "cannot start: the production is stopping"));
                }
                ItemState::Stopped | ItemState::Failed => *state = ItemState::Running,
            }
        }
        item.restart_times.lock().clear();
        item.queue.resume();
        item.queue.next_epoch();
        start_workers(&self.shared, &item)?;
        tracing::info!(item = %item.config.name, "item started");
        Ok(())
    }

    /// The production as running now (after any config reload).
    pub fn production(&self) -> Arc<Production> {
        self.shared.production()
    }

    /// The production's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render(&self.status())
    }

    /// The production's metrics registry (to add collectors, record store commits).
    pub fn metrics(&self) -> &crate::metrics::EngineMetrics {
        &self.shared.metrics
    }

    /// Drop a dead-lettered message for good; false if there is no such letter (or
    /// the store could not be read: logged).
    pub fn discard(&self, id: MessageId) -> bool {
        let gone = match self.shared.dead_letters.discard(id) {
            Ok(gone) => gone,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "cannot discard a dead letter");
                false
            }
        };
        if gone {
            tracing::info!(message_id = %id, "dead letter discarded");
        }
        gone
    }

    /// The dead-letter queue, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.dead_letters.list()
    }

    /// Put a dead-lettered message back in its item's queue (as a new attempt).
    pub fn requeue(&self, id: MessageId) -> Result<(), Failure> {
        let letter = self
            .shared
            .dead_letters
            .take(id)
            .map_err(|e| Failure::transient("store", e.to_string()))?
            .ok_or_else(|| Failure::permanent("not-found", format!("no dead letter {id}")))?;
        let mut msg = letter.message.clone();
        if self.shared.store.is_none() {
            msg.attempt += 1; // a stored letter comes back with its next attempt already
        }
        match self.shared.deliver(
            &letter.item,
            Delivery::message(msg.clone()),
            Some(Duration::from_secs(5)),
        ) {
            Ok(()) => Ok(()),
            Err(e) => {
                if !e.dead_lettered {
                    self.shared.dead_letters.put(&letter.item, msg, e.failure.clone());
                }
                Err(e.failure)
            }
        }
    }

    /// Stop: inbound adapters stop taking messages, then services, processes and
    /// operations drain in that order (each waits for its queue to empty, at most
    /// `drain_timeout` in all), then every worker ends. Returns whether everything
    /// drained in time.
    pub async fn stop(&self, drain_timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + drain_timeout;
        let production = self.shared.production();
        tracing::info!(production = %production.name, "production stopping");
        self.shutdown.cancel();
        self.inbound.close();
        let inbound_done = tokio::time::timeout_at(deadline, self.inbound.wait())
            .await
            .is_ok();
        let mut drained = inbound_done;
        let mut order = self.shared.all_items();
        order.sort_by_key(|i| {
            (
                std::cmp::Reverse(start_rank(i.config.kind)),
                i.config.location.line,
            )
        });
        for kind in [ItemKind::Service, ItemKind::Process, ItemKind::Operation] {
            for item in order.iter().filter(|i| i.config.kind == kind) {
                drained &= wait_idle(item, deadline).await;
            }
        }
        for item in &order {
            item.set_state(ItemState::Stopping);
            item.queue.close();
        }
        for item in &order {
            join_workers(item).await;
        }
        if let Some(store) = self.shared.store.clone() {
            // hop marks are written without waiting; make them durable before exit
            let flushed = tokio::task::spawn_blocking(move || store.store().flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::error!(error = %e, "store flush at stop failed; the next start re-runs the hops it lost");
            }
        }
        let left: usize = order.iter().map(|i| i.queue.stats().depth).sum();
        if drained && left == 0 {
            tracing::info!(production = %production.name, "production stopped");
        } else {
            tracing::warn!(production = %production.name, left_in_queues = left, "production stopped before draining");
        }
        drained && left == 0
    }
}

fn status_of(item: &ItemRuntime, processes: &crate::process::ProcessPools) -> ItemStatus {
    ItemStatus {
        name: item.config.name.clone(),
        state: *item.state.lock(),
        queue: item.queue.stats(),
        restarts: *item.restarts_total.lock(),
        versions: item.versions.status(),
        workers: processes.status(&item.config.name),
    }
}

fn state_error(item: &ItemRuntime, message: &str) -> EngineError {
    EngineError::State {
        item: item.config.name.clone(),
        message: message.to_string(),
    }
}

/// Wait until the item's queue is empty and nothing is in flight, or the deadline.
pub(crate) async fn wait_idle(item: &ItemRuntime, deadline: tokio::time::Instant) -> bool {
    loop {
        let stats = item.queue.stats();
        let state = *item.state.lock();
        let stuck = matches!(
            state,
            ItemState::Failed | ItemState::Disabled | ItemState::Stopped
        ) || stats.paused;
        if stats.depth == 0 && stats.in_flight == 0 {
            return true;
        }
        if stuck && stats.in_flight == 0 {
            return false;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) async fn join_workers(item: &ItemRuntime) {
    let workers: Vec<WorkerJoin> = std::mem::take(&mut *item.workers.lock());
    for w in workers {
        match w {
            WorkerJoin::Thread(t) => {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            WorkerJoin::Blocking(t) => {
                let _ = t.await;
            }
        }
    }
}

pub(crate) fn start_workers(shared: &Arc<Shared>, item: &Arc<ItemRuntime>) -> Result<(), EngineError> {
    let epoch = item.queue.epoch();
    let mut workers = item.workers.lock();
    workers.retain(|w| !w.is_finished());
    for index in 0..item.executor.workers() {
        let shared = Arc::clone(shared);
        let runtime_item = Arc::clone(item);
        let name = format!("{}-{index}", item.config.name);
        let join = item
            .executor
            .spawn(name, move || worker::run(shared, runtime_item, index, epoch))
            .map_err(|source| EngineError::Spawn {
                item: item.config.name.clone(),
                source,
            })?;
        workers.push(join);
    }
    Ok(())
}
