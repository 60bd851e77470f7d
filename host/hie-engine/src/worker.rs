//! The worker loop, the same for every executor: take from the item's queue →
//! `on-before-process` hooks → the plugin → `on-after-process` hooks (or
//! `on-process-error`) → deliver the outcome. A failed message is retried per
//! the item's retry policy, then dead-lettered; it never stops the worker. A
//! broken instance (trap, failed instantiation) ends the worker, which the
//! item's restart policy replaces with backoff.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hie_config::ItemKind;
use hie_core::{Envelope, Failure, HostApi, MessageId, Outcome, PluginError, now_ms};

use crate::adapters::outbound::AdapterSend;
use crate::delivery::{Delivery, ReplyTo, Work};
use crate::engine::{ItemRuntime, ItemState, Shared};
use crate::hooks::{BeforeAction, ErrorAction, HookChain};
use crate::metrics::{Finish, ItemMetrics};
use crate::outward;
use crate::persist::describe;
use crate::plugin::{ItemInstance, PassThrough};
use crate::queue::{Lease, PushError};

/// The message a worker thread is processing, for host calls made during it.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext {
    /// Its session.
    pub session_id: MessageId,
    /// Its id.
    pub message_id: MessageId,
}

thread_local! {
    static CURRENT: Cell<Option<MessageContext>> = const { Cell::new(None) };
}

/// The message this thread's plugin call is processing, if any.
pub fn current_message() -> Option<MessageContext> {
    CURRENT.with(Cell::get)
}

/// Marks a plugin call's message as current for its duration.
struct CurrentMessage;

impl CurrentMessage {
    fn enter(msg: &Envelope) -> Self {
        CURRENT.with(|c| {
            c.set(Some(MessageContext {
                session_id: msg.session_id,
                message_id: msg.id,
            }))
        });
        CurrentMessage
    }
}

impl Drop for CurrentMessage {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(None));
    }
}

/// Run one worker of `item` until its epoch ends, restarting its instance per
/// the item's restart policy.
pub(crate) fn run(shared: Arc<Shared>, item: Arc<ItemRuntime>, index: usize, epoch: u64) {
    let name = item.config.name.clone();
    loop {
        if item.queue.epoch() != epoch || item.queue.is_closed() {
            return;
        }
        let reason = match Worker::create(&shared, &item, index) {
            Ok(mut worker) => {
                tracing::debug!(item = %name, worker = index, "worker started");
                match worker.serve(epoch) {
                    None => {
                        worker.instance.stop();
                        tracing::debug!(item = %name, worker = index, "worker stopped");
                        return;
                    }
                    Some(reason) => reason,
                }
            }
            Err(reason) => reason,
        };
        tracing::warn!(item = %name, worker = index, reason = %reason, "worker failed");
        match shared.restart_decision(&item, &reason) {
            Some(backoff) => {
                if !wait(&item, epoch, backoff) {
                    return;
                }
            }
            None => return,
        }
    }
}

/// The most body bytes a worker takes from its queue for one batch (beyond the first message).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A call already made: its input, its result and how long it took.
type Called = (Envelope, Result<Outcome, PluginError>, Duration);

/// How `on-before-process` hooks ended a message before any call.
enum Ended {
    Skipped(String),
    Rejected(Failure),
}

/// The tracing span of one message at the item `item`.
fn message_span(item: &str, msg: &Envelope) -> tracing::Span {
    tracing::debug_span!(
        "message",
        item = %item,
        message_id = %msg.id,
        session_id = %msg.session_id,
        correlation_id = ?msg.correlation_id,
    )
}

/// Sleep `d` unless the worker's epoch ends first; true if the whole wait passed.
fn wait(item: &ItemRuntime, epoch: u64, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if item.queue.epoch() != epoch || item.queue.is_closed() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

struct Worker<'a> {
    shared: &'a Arc<Shared>,
    item: &'a Arc<ItemRuntime>,
    instance: Box<dyn ItemInstance>,
    hooks: HookChain,
    metrics: ItemMetrics,
}

impl<'a> Worker<'a> {
    fn create(shared: &'a Arc<Shared>, item: &'a Arc<ItemRuntime>, index: usize) -> Result<Self, String> {
        let config = &item.config;
        let host: Arc<dyn HostApi> = shared.host.clone();
        let adapter = item
            .outbound
            .as_ref()
            .map(|o| o.open(&shared.runtime, &shared.metrics, &config.name));
        let mut instance: Box<dyn ItemInstance> = match (&config.plugin, adapter) {
            // hot reload (reload.rs): the instance swaps plugin versions between messages
            (Some(_), adapter) => crate::reload::instance(shared, item, index, Arc::clone(&host), adapter)
                .map_err(|e| format!("cannot instantiate plugin: {e}"))?,
            (None, Some(adapter)) => Box::new(AdapterSend::new(adapter, &config.name)),
            (None, None) => Box::new(PassThrough),
        };
        let mut hooks = Vec::with_capacity(config.hooks.len());
        for name in &config.hooks {
            let Some(hook) = shared.production().hook(name).cloned() else {
                return Err(format!("hook {name} is not defined"));
            };
            let h = shared
                .factory
                .hook_instance(&hook, Arc::clone(&host))
                .map_err(|e| format!("cannot instantiate hook {name}: {e}"))?;
            hooks.push(h);
        }
        instance
            .start()
            .map_err(|e| format!("plugin refused to start: {e}"))?;
        Ok(Worker {
            shared,
            item,
            instance,
            hooks: HookChain::new(hooks),
            metrics: shared.metrics.item(&config.name),
        })
    }

    fn name(&self) -> &str {
        &self.item.config.name
    }

    /// Take and handle entries until the epoch ends (`None`) or the instance breaks (`Some(reason)`).
    fn serve(&mut self, epoch: u64) -> Option<String> {
        let window = self.instance.window();
        while let Some(lease) = self.item.queue.pop(epoch) {
            let fault = if window > 1 {
                let mut batch = vec![lease];
                self.item
                    .queue
                    .pop_ready(epoch, window - 1, MAX_BATCH_BYTES, &mut batch);
                self.handle_batch(batch, epoch)
            } else {
                let fault = self.handle(lease.delivery, epoch);
                self.item.queue.complete(lease.ticket);
                fault
            };
            if fault.is_some() {
                return fault;
            }
        }
        None
    }

    /// The work of `delivery` and whom to answer, once its intake is stored; `None`
    /// if it was not (its commit failed, or it duplicates an earlier message): its
    /// sender has been answered, and nothing may run it.
    fn admit(&self, delivery: Delivery) -> Option<(Work, ReplyTo)> {
        let Delivery { work, reply_to, gate } = delivery;
        if let Some(gate) = gate
            && let Err(told) = gate.wait()
        {
            if let Work::Message(m) = &work {
                tracing::debug!(item = %self.name(), message_id = %m.id, "message dropped: its intake was not stored");
            }
            self.shared.resolve(reply_to, told.map_or(Ok(None), Err));
            return None;
        }
        Some((work, reply_to))
    }

    fn handle(&mut self, delivery: Delivery, epoch: u64) -> Option<String> {
        match self.admit(delivery)? {
            (Work::Message(msg), reply_to) => self.process(msg, reply_to, epoch),
            (
                Work::Reply {
                    correlation_id,
                    result,
                },
                _,
            ) => self.reply(&correlation_id, result),
        }
    }

    /// Several queued messages for an instance that overlaps them (an `mllp-out`
    /// operation with `max_in_flight` above 1). Each is admitted, passed through
    /// `on-before-process` and marked in flight in queue order; then one
    /// [`ItemInstance::call_many`] sends them all; then each result goes the way a
    /// single call's would, in order. A retry is a single call again.
    fn handle_batch(&mut self, leases: Vec<Lease>, epoch: u64) -> Option<String> {
        let mut fault = None;
        let mut ready = Vec::with_capacity(leases.len());
        for Lease { delivery, ticket } in leases {
            match self.admit(delivery) {
                Some((Work::Message(msg), reply_to)) => {
                    self.metrics.taken(msg.id, &msg.body);
                    match self.before(&msg) {
                        Ok(input) => {
                            self.mark_in_flight(&msg);
                            ready.push((msg, input, reply_to, ticket));
                            continue;
                        }
                        Err(ended) => self.end_early(&msg, reply_to, ended),
                    }
                }
                Some((
                    Work::Reply {
                        correlation_id,
                        result,
                    },
                    _,
                )) => fault = fault.or(self.reply(&correlation_id, result)),
                None => {}
            }
            self.item.queue.complete(ticket);
        }
        if ready.is_empty() {
            return fault;
        }
        let inputs: Vec<Envelope> = ready.iter().map(|r| r.1.clone()).collect();
        let started = Instant::now();
        let results = {
            let _current = CurrentMessage::enter(&inputs[0]);
            self.instance.call_many(inputs)
        };
        let elapsed = started.elapsed();
        let mut results = results.into_iter();
        for (msg, input, reply_to, ticket) in ready {
            let _span = message_span(self.name(), &msg).entered();
            // an instance that returned too few results leaves the rest failed, not lost
            let called = results.next().unwrap_or_else(|| {
                Err(PluginError::Failed(Failure::transient(
                    "AE",
                    "the operation returned no result for this message",
                )))
            });
            let f = self.attempt(msg, reply_to, epoch, Some((input, called, elapsed)));
            self.item.queue.complete(ticket);
            fault = fault.or(f);
        }
        fault
    }

    fn reply(&mut self, correlation_id: &str, result: Result<Envelope, Failure>) -> Option<String> {
        let base = match &result {
            Ok(m) => m.clone(),
            Err(_) => Envelope::new(self.name(), "application/octet-stream", Bytes::new()),
        };
        let _span =
            tracing::debug_span!("reply", item = %self.name(), session_id = %base.session_id, correlation_id)
                .entered();
        let called = {
            let _current = CurrentMessage::enter(&base);
            self.instance.on_reply(correlation_id, result)
        };
        match called {
            Ok(outcome) => {
                // the reply itself is not stored: only what the route derives from it
                self.route(&base, outcome, ReplyTo::Nobody, false);
                None
            }
            Err(err) => {
                let failure = outward::failure_of(&err);
                self.shared.dead_letters.put(self.name(), base, failure);
                instance_fault(&err)
            }
        }
    }

    fn process(&mut self, msg: Envelope, reply_to: ReplyTo, epoch: u64) -> Option<String> {
        let _span = message_span(self.name(), &msg).entered();
        self.metrics.taken(msg.id, &msg.body);
        self.attempt(msg, reply_to, epoch, None)
    }

    /// `on-before-process` for one attempt on `msg`: the input to call, or how the
    /// hooks ended the message.
    fn before(&mut self, msg: &Envelope) -> Result<Envelope, Ended> {
        if self.hooks.is_empty() {
            return Ok(msg.clone());
        }
        match self.hooks.before_process(&self.item.config.name, msg.clone()) {
            BeforeAction::Continue(m) => Ok(m),
            BeforeAction::Skip(reason) => Err(Ended::Skipped(reason)),
            BeforeAction::Reject(f) => Err(Ended::Rejected(f)),
        }
    }

    /// Finish `msg`, which a hook skipped or rejected before any call.
    fn end_early(&mut self, msg: &Envelope, reply_to: ReplyTo, ended: Ended) {
        let name = self.name();
        match ended {
            Ended::Skipped(reason) => {
                tracing::debug!(item = %name, message_id = %msg.id, reason = %reason, "message skipped by a hook");
                self.record_done(msg, Some(&format!("skipped by a hook: {reason}")));
                self.metrics.finished(Finish::Out);
                self.shared.resolve(reply_to, Ok(None));
            }
            Ended::Rejected(f) => {
                tracing::info!(item = %name, message_id = %msg.id, code = %f.code, "message rejected by a hook");
                self.record_done(msg, Some(&format!("rejected by a hook: {}", describe(&f))));
                self.metrics.finished(Finish::Failed);
                self.shared.resolve(reply_to, Err(f));
            }
        }
    }

    fn mark_in_flight(&self, msg: &Envelope) {
        if let Some(store) = &self.shared.store {
            store.in_flight(msg, self.name(), None);
        }
    }

    /// Call the instance on `msg` until it is done, dead-lettered or put back, per
    /// the retry policy. `first`: the input, result and time of a first call
    /// already made (by [`Worker::handle_batch`]).
    fn attempt(
        &mut self,
        mut msg: Envelope,
        reply_to: ReplyTo,
        epoch: u64,
        mut first: Option<Called>,
    ) -> Option<String> {
        let name = self.item.config.name.clone();
        // attempts in this delivery; a requeued message gets a fresh budget
        let mut tries = 1;
        loop {
            let (input, called, elapsed) = match first.take() {
                Some(made) => made,
                None => {
                    let input = match self.before(&msg) {
                        Ok(input) => input,
                        Err(ended) => {
                            self.end_early(&msg, reply_to, ended);
                            return None;
                        }
                    };
                    self.mark_in_flight(&msg);
                    let started = Instant::now();
                    let called = {
                        let _current = CurrentMessage::enter(&input);
                        self.instance.call(input.clone())
                    };
                    (input, called, started.elapsed())
                }
            };
            self.metrics.called(input.id, elapsed, called.as_ref().err());
            let err = match called {
                Ok(outcome) => {
                    let outcome = if self.hooks.is_empty() {
                        outcome
                    } else {
                        self.hooks.after_process(&name, &input, outcome)
                    };
                    self.route(&input, outcome, reply_to, true);
                    self.metrics.finished(Finish::Out);
                    return None;
                }
                Err(err) => err,
            };
            let failure = outward::failure_of(&err);
            let fault = instance_fault(&err);
            let action = self.hooks.process_error(&name, &input, &failure);
            tracing::warn!(
                item = %name,
                message_id = %input.id,
                code = %failure.code,
                error = %failure.text,
                attempt = input.attempt,
                "message failed"
            );
            let retry = self.item.config.retry;
            let wants_retry = match action {
                ErrorAction::Suppress => {
                    self.record_done(
                        &msg,
                        Some(&format!("error suppressed by a hook: {}", describe(&failure))),
                    );
                    self.metrics.finished(Finish::Failed);
                    self.shared.resolve(reply_to, Ok(None));
                    return fault;
                }
                ErrorAction::DeadLetter => false,
                ErrorAction::Retry => true,
                ErrorAction::Default => failure.retryable,
            };
            if wants_retry && fault.is_none() && tries < retry.max_attempts {
                let backoff = if failure.code == outward::ABANDONED && tries == 1 {
                    // the failure that closed its connection waited its backoff already
                    Duration::ZERO
                } else {
                    retry
                        .backoff
                        .saturating_mul(2u32.saturating_pow(tries - 1))
                        .min(retry.max_backoff)
                };
                if let Some(store) = &self.shared.store {
                    store.failed(&msg, &name, self.instance.version(), &failure);
                }
                if wait(self.item, epoch, backoff) {
                    tries += 1;
                    msg.attempt += 1;
                    continue;
                }
                if self.shared.store.is_some() {
                    // stopping or restarting is no reason to give up on it: the store
                    // keeps it open, and a restarted worker takes it again
                    msg.attempt += 1;
                    self.put_back(msg, reply_to, failure);
                    self.metrics.finished(Finish::Failed);
                    return fault;
                }
            }
            self.dead_letter(input, failure, reply_to);
            self.metrics.finished(Finish::Failed);
            return fault;
        }
    }

    fn dead_letter(&mut self, msg: Envelope, failure: Failure, reply_to: ReplyTo) {
        if failure.code == outward::REPLY_DISABLE {
            tracing::error!(item = %self.name(), "reply-code policy disables the operation");
            self.item.set_state(ItemState::Disabled);
            self.item.queue.close();
        }
        self.shared.dead_letters.put(self.name(), msg, failure.clone());
        self.shared.resolve(reply_to, Err(failure));
    }

    /// Record in the store that `msg` is done at this item, with nothing derived.
    fn record_done(&self, msg: &Envelope, note: Option<&str>) {
        if let Some(store) = &self.shared.store {
            store.done(msg, true, self.name(), self.instance.version(), note, &[]);
        }
    }

    /// Queue a message whose retry was cut short (stop, restart) again at the back of
    /// this item's queue; if the queue is closed it stays open in the store only.
    fn put_back(&self, msg: Envelope, reply_to: ReplyTo, failure: Failure) {
        let key = self.item.key_of(&msg);
        let delivery = Delivery {
            work: Work::Message(msg),
            reply_to,
            gate: None,
        };
        if let Err(PushError::Closed(d) | PushError::Full(d)) = self.item.queue.push_force(delivery, key) {
            let Delivery { work, reply_to, .. } = *d;
            if let Work::Message(m) = &work {
                tracing::info!(item = %self.name(), message_id = %m.id, "retry cut short by stop; the message stays open in the store for the next start");
            }
            self.shared.resolve(reply_to, Err(failure));
        }
    }

    /// Deliver what the plugin decided. `stored`: `input` is a stored message queued
    /// at this item (not the reply to an async request), so its hop is recorded.
    fn route(&mut self, input: &Envelope, outcome: Outcome, reply_to: ReplyTo, stored: bool) {
        let done = |w: &Self, note: Option<&str>| {
            if stored {
                w.record_done(input, note);
            }
        };
        match outcome {
            Outcome::Done => {
                done(self, None);
                self.shared.resolve(reply_to, Ok(None))
            }
            Outcome::Drop(reason) => {
                tracing::debug!(item = %self.name(), message_id = %input.id, reason = %reason, "message dropped");
                done(self, Some(&format!("dropped: {reason}")));
                self.shared.resolve(reply_to, Ok(None));
            }
            Outcome::Reply(m) => {
                let reply = self.stamp(m, input, "");
                done(self, None);
                self.shared.resolve(reply_to, Ok(Some(reply)));
            }
            Outcome::Pass(m) => {
                let targets = &self.item.config.targets;
                let sends: Vec<(String, Envelope)> = match targets.len() {
                    0 => Vec::new(),
                    1 => vec![(targets[0].clone(), m)],
                    _ => targets.iter().map(|t| (t.clone(), m.clone())).collect(),
                };
                self.send_all(input, sends, reply_to, stored);
            }
            Outcome::Forward(routes) => {
                let sends = routes.into_iter().map(|r| (r.target, r.message)).collect();
                self.send_all(input, sends, reply_to, stored);
            }
        }
    }

    fn send_all(
        &mut self,
        input: &Envelope,
        sends: Vec<(String, Envelope)>,
        reply_to: ReplyTo,
        stored: bool,
    ) {
        // A waiting requester follows the (first) message on, so whoever finally
        // replies answers it; an inbound sender in application mode is answered
        // by the first process or operation that handled the message.
        let carry = match &reply_to {
            ReplyTo::Nobody => false,
            ReplyTo::Inbound(_) => self.item.config.kind == ItemKind::Service,
            ReplyTo::Sync(_) | ReplyTo::Async { .. } => true,
        };
        let mut waiting = Some(reply_to);
        let mut first_failure = None;
        let name = self.item.config.name.clone();
        let mut out = Vec::with_capacity(sends.len());
        for (target, m) in sends {
            let m = self.stamp(m, input, &target);
            let m = if self.hooks.is_empty() {
                m
            } else {
                match self.hooks.before_send(&name, &target, m.clone()) {
                    BeforeAction::Continue(m) => m,
                    BeforeAction::Skip(_) => continue,
                    BeforeAction::Reject(f) => {
                        self.hooks.after_send(&name, &target, &m, &Err(f.clone()));
                        first_failure.get_or_insert(f);
                        continue;
                    }
                }
            };
            out.push((target, m));
        }
        // the derived messages and this hop's end commit together: a crash either
        // keeps the input open here (the hop runs again) or has them all queued
        if let Some(store) = &self.shared.store {
            store.done(input, stored, &name, self.instance.version(), None, &out);
        }
        for (target, m) in out {
            let reply_to = if carry {
                waiting.take().unwrap_or_default()
            } else {
                ReplyTo::Nobody
            };
            let copy = (!self.hooks.is_empty()).then(|| m.clone());
            let sent = self.shared.deliver(
                &target,
                Delivery {
                    work: Work::Message(m),
                    reply_to,
                    gate: None,
                },
                None,
            );
            if let Some(copy) = copy {
                let result = sent.as_ref().map(|_| ()).map_err(|e| e.failure.clone());
                self.hooks.after_send(&name, &target, &copy, &result);
            }
            if let Err(e) = sent {
                if let Some(m) = e.message {
                    self.shared.dead_letters.put(&target, *m, e.failure.clone());
                }
                first_failure.get_or_insert(e.failure);
            }
        }
        if let Some(reply_to) = waiting {
            let result = match first_failure {
                Some(f) => Err(f),
                None => Ok(None),
            };
            self.shared.resolve(reply_to, result);
        }
    }

    fn stamp(&self, m: Envelope, input: &Envelope, target: &str) -> Envelope {
        stamp(m, input, &self.item.config.name, target)
    }
}

/// Header fields of a message leaving `source` for `target`, caused by `input`:
/// a fresh id, the input's session, the input as parent.
pub(crate) fn stamp(mut m: Envelope, input: &Envelope, source: &str, target: &str) -> Envelope {
    m.id = uuid::Uuid::now_v7();
    m.session_id = input.session_id;
    m.parent_id = Some(input.id);
    m.source = source.to_string();
    m.target = target.to_string();
    m.attempt = 1;
    m.created_at_ms = now_ms();
    if m.correlation_id.is_none() {
        m.correlation_id = input.correlation_id;
    }
    m
}

/// Whether an error means the instance is broken (the worker restarts).
fn instance_fault(err: &PluginError) -> Option<String> {
    match err {
        PluginError::Trap { .. } | PluginError::Instantiate(_) | PluginError::WorkerDied(_) => {
            Some(err.to_string())
        }
        _ => None,
    }
}
