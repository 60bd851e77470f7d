//! Live instances: [`WasmPlugin`] (an item) and [`WasmHook`] (a message hook), both
//! run by one [`Runner`] that arms the limits before every call and replaces the
//! instance after any trap or limit hit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hie_core::{Envelope, Failure, Outcome, Plugin, PluginError};
use wasmtime::component::Instance;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::exports::hie::plugin::{hooks, item};
use crate::bindings::hie::plugin::types as wit;
use crate::component::{Component, ExportIndices};
use crate::convert::{self, Parent};
use crate::error::{DeadlineExceeded, MemoryLimitExceeded, classify, one_line};
use crate::state::{CallState, ItemShared, StoreState};

/// The exports one kind of instance is driven through.
pub(crate) trait GuestExports: Sized + Send + 'static {
    /// Looks the exports up in a fresh instance.
    fn load(
        component: &Component,
        store: &mut Store<StoreState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self>;
    /// Calls the instance's init export with the item's settings.
    fn init(
        &self,
        store: &mut Store<StoreState>,
        settings: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>>;
    /// Calls `on-start` (re-run in a replacement instance of a started item);
    /// hooks have none and succeed.
    fn start(&self, _store: &mut Store<StoreState>) -> wasmtime::Result<Result<(), String>> {
        Ok(Ok(()))
    }
}

impl GuestExports for item::Guest {
    fn load(
        component: &Component,
        store: &mut Store<StoreState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        match &component.exports {
            ExportIndices::Item(indices) => indices.load(store, instance),
            ExportIndices::Hook(_) => wasmtime::bail!("component exports hooks, not item"),
        }
    }

    fn init(
        &self,
        store: &mut Store<StoreState>,
        settings: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        self.call_on_init(store, settings)
    }

    fn start(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Result<(), String>> {
        self.call_on_start(store)
    }
}

impl GuestExports for hooks::Guest {
    fn load(
        component: &Component,
        store: &mut Store<StoreState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        match &component.exports {
            ExportIndices::Hook(indices) => indices.load(store, instance),
            ExportIndices::Item(_) => wasmtime::bail!("component exports item, not hooks"),
        }
    }

    fn init(
        &self,
        store: &mut Store<StoreState>,
        settings: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        self.call_init(store, settings)
    }
}

struct Live<G> {
    store: Store<StoreState>,
    guest: G,
}

/// Drives one logical instance: creates it lazily, arms limits per call, and throws
/// it away after a failed call so the next call gets a fresh one.
pub(crate) struct Runner<G> {
    component: Arc<Component>,
    shared: Arc<ItemShared>,
    live: Option<Live<G>>,
    /// `on-start` succeeded and `on-stop` has not been called: a replacement instance
    /// is started too.
    started: bool,
    replacements: u64,
}

impl<G: GuestExports> Runner<G> {
    fn new(component: Arc<Component>, shared: Arc<ItemShared>) -> Result<Self, PluginError> {
        let mut runner = Runner {
            component,
            shared,
            live: None,
            started: false,
            replacements: 0,
        };
        runner.live = Some(runner.instantiate()?);
        Ok(runner)
    }

    fn item(&self) -> &str {
        &self.shared.item
    }

    fn instantiate(&self) -> Result<Live<G>, PluginError> {
        let state = StoreState::new(self.shared.clone())
            .map_err(|reason| self.component.refuse(self.item(), reason))?;
        let host = self.component.host.inner();
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| &mut s.limiter);
        let tick = host.config.epoch_tick;
        store.epoch_deadline_callback(move |ctx| {
            let now = Instant::now();
            let deadline_at = ctx.data().call.deadline_at;
            if now >= deadline_at {
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
            Ok(UpdateDeadline::Continue(ticks(deadline_at - now, tick)))
        });
        self.arm(&mut store, None);
        let instance = self.component.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<MemoryLimitExceeded>().is_some() {
                classify(&e, &self.shared.limits, None)
            } else {
                self.component.refuse(self.item(), one_line(&e))
            }
        })?;
        let guest = G::load(&self.component, &mut store, &instance)
            .map_err(|e| self.component.refuse(self.item(), one_line(&e)))?;
        let init = guest
            .init(&mut store, &self.shared.settings_list())
            .map_err(|e| classify(&e, &self.shared.limits, store.data().stderr.tail()))?;
        init.map_err(|reason| {
            self.component
                .refuse(self.item(), format!("on-init refused: {reason}"))
        })?;
        Ok(Live { store, guest })
    }

    /// Resets the per-call state: deadline, fuel, output count, parent message.
    fn arm(&self, store: &mut Store<StoreState>, parent: Option<Parent>) {
        let limits = &self.shared.limits;
        let config = &self.component.host.config();
        store.set_epoch_deadline(ticks(limits.deadline, config.epoch_tick));
        if config.fuel_metering {
            // cannot fail: fuel metering is on
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        let data = store.data_mut();
        data.call = CallState {
            parent,
            emitted: 0,
            deadline_at: Instant::now() + limits.deadline,
        };
        data.stderr.clear_tail();
    }

    /// The live instance, or a fresh one (started, if the item is started) when the
    /// last call broke the previous one. The caller puts it back after a good call.
    fn take_live(&mut self) -> Result<Live<G>, PluginError> {
        if let Some(live) = self.live.take() {
            return Ok(live);
        }
        let mut live = self.instantiate()?;
        if self.started {
            self.arm(&mut live.store, None);
            let started = live
                .guest
                .start(&mut live.store)
                .map_err(|e| classify(&e, &self.shared.limits, live.store.data().stderr.tail()))?;
            started.map_err(|reason| {
                self.component
                    .refuse(self.item(), format!("on-start refused: {reason}"))
            })?;
        }
        Ok(live)
    }

    /// Runs one call under the item's limits. Any error fails this call only and
    /// drops the instance; the next call instantiates a fresh one.
    fn call<R>(
        &mut self,
        parent: Option<Parent>,
        f: impl FnOnce(&G, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut live = self.take_live()?;
        self.arm(&mut live.store, parent);
        match f(&live.guest, &mut live.store) {
            Ok(result) => {
                self.live = Some(live);
                Ok(result)
            }
            Err(err) => {
                let error = classify(&err, &self.shared.limits, live.store.data().stderr.tail());
                self.replacements += 1;
                tracing::warn!(item = self.item(), plugin = %self.component.hash(), code = error.code(), %error, "plugin call failed; replacing the instance");
                Err(error)
            }
        }
    }
}

/// Epoch ticks covering `d` (at least one).
fn ticks(d: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (d.as_nanos().div_ceil(tick)).clamp(1, u64::MAX as u128) as u64
}

/// Checks a returned outcome against the output cap (what was sent during the call
/// counts too), then converts it for the engine.
fn finish_outcome(
    store: &mut Store<StoreState>,
    returned: Result<wit::Outcome, wit::Failure>,
) -> wasmtime::Result<Result<Outcome, PluginError>> {
    let outcome = match returned {
        Ok(outcome) => outcome,
        Err(failure) => return Ok(Err(PluginError::Failed(convert::failure_from_wit(failure)))),
    };
    store.data_mut().charge_output(convert::outcome_size(&outcome))?;
    let data = store.data();
    Ok(convert::outcome_from_wit(outcome, &data.shared.item, data.call.parent).map_err(PluginError::Failed))
}

/// One instance of an item's plugin, as the engine drives it through [`Plugin`].
///
/// Calls run synchronously on the caller's thread under the item's [`crate::Limits`].
/// After a trap or a limit hit the instance is dropped and the next call runs in a
/// fresh one (re-initialised with the settings, and started if the item is started).
pub struct WasmPlugin {
    runner: Runner<item::Guest>,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("item", &self.runner.item())
            .field("plugin", &self.version())
            .finish_non_exhaustive()
    }
}

impl WasmPlugin {
    pub(crate) fn new(component: Arc<Component>, shared: Arc<ItemShared>) -> Result<Self, PluginError> {
        if !component.world().is_item() {
            return Err(component.refuse(&shared.item, format!("is a {}, not an item", component.world())));
        }
        Ok(WasmPlugin {
            runner: Runner::new(component, shared)?,
        })
    }

    /// The plugin version: SHA-256 of its `.wasm`.
    pub fn version(&self) -> &str {
        self.runner.component.hash()
    }

    /// The component this instance was made from.
    pub fn component(&self) -> &Arc<Component> {
        &self.runner.component
    }

    /// How many times a failed call has replaced the instance.
    pub fn replacements(&self) -> u64 {
        self.runner.replacements
    }

    /// Calls `on-start`; a refusal is a permanent `start-refused` failure.
    pub fn start(&mut self) -> Result<(), PluginError> {
        let started = self.runner.call(None, |g, s| g.call_on_start(s))?;
        started.map_err(|reason| PluginError::Failed(Failure::permanent("start-refused", reason)))?;
        self.runner.started = true;
        Ok(())
    }

    /// Calls `on-stop`.
    pub fn stop(&mut self) -> Result<(), PluginError> {
        self.runner.started = false;
        self.runner.call(None, |g, s| g.call_on_stop(s))
    }

    /// Calls `on-teardown` (if the instance is alive) and drops the instance.
    pub fn teardown(mut self) -> Result<(), PluginError> {
        if self.runner.live.is_none() {
            return Ok(());
        }
        self.runner.call(None, |g, s| g.call_on_teardown(s))
    }
}

impl Plugin for WasmPlugin {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        let parent = Parent::of(&msg);
        let input = convert::message_to_wit(&msg);
        drop(msg);
        self.runner.call(Some(parent), |g, s| {
            let returned = g.call_on_message(&mut *s, &input)?;
            finish_outcome(s, returned)
        })?
    }

    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Envelope, Failure>,
    ) -> Result<Outcome, PluginError> {
        let parent = reply.as_ref().ok().map(Parent::of);
        let reply = reply
            .map(|m| convert::message_to_wit(&m))
            .map_err(|f| convert::failure_to_wit(&f));
        self.runner.call(parent, |g, s| {
            let returned = g.call_on_reply(&mut *s, correlation_id, reply.as_ref())?;
            finish_outcome(s, returned)
        })?
    }
}

pub use hie_core::{BeforeAction, ErrorAction};

/// One instance of a message hook. Same limits and replacement rules as [`WasmPlugin`].
pub struct WasmHook {
    runner: Runner<hooks::Guest>,
}

impl std::fmt::Debug for WasmHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHook")
            .field("hook", &self.runner.item())
            .field("plugin", &self.version())
            .finish_non_exhaustive()
    }
}

impl WasmHook {
    pub(crate) fn new(component: Arc<Component>, shared: Arc<ItemShared>) -> Result<Self, PluginError> {
        if component.world().is_item() {
            return Err(component.refuse(
                &shared.item,
                format!("is a {}, not a message-hook", component.world()),
            ));
        }
        Ok(WasmHook {
            runner: Runner::new(component, shared)?,
        })
    }

    /// The hook version: SHA-256 of its `.wasm`.
    pub fn version(&self) -> &str {
        self.runner.component.hash()
    }

    /// Before `item` processes `msg`.
    pub fn before_process(&mut self, item: &str, msg: &Envelope) -> Result<BeforeAction, PluginError> {
        let input = convert::message_to_wit(msg);
        let action = self.runner.call(Some(Parent::of(msg)), |g, s| {
            g.call_on_before_process(s, item, &input)
        })?;
        before_action(msg, action)
    }

    /// After `item` processed `msg` into `outcome`; returns the outcome to go on with.
    pub fn after_process(
        &mut self,
        item: &str,
        msg: &Envelope,
        outcome: &Outcome,
    ) -> Result<Outcome, PluginError> {
        let input = convert::message_to_wit(msg);
        let outcome = convert::outcome_to_wit(outcome);
        self.runner.call(Some(Parent::of(msg)), |g, s| {
            let returned = g.call_on_after_process(&mut *s, item, &input, &outcome)?;
            finish_outcome(s, Ok(returned))
        })?
    }

    /// After `item` failed to process `msg` with `failure`.
    pub fn process_error(
        &mut self,
        item: &str,
        msg: &Envelope,
        failure: &Failure,
    ) -> Result<ErrorAction, PluginError> {
        let input = convert::message_to_wit(msg);
        let failure = convert::failure_to_wit(failure);
        let action = self.runner.call(Some(Parent::of(msg)), |g, s| {
            g.call_on_process_error(s, item, &input, &failure)
        })?;
        Ok(match action {
            hooks::ErrorAction::Default => ErrorAction::Default,
            hooks::ErrorAction::Retry => ErrorAction::Retry,
            hooks::ErrorAction::DeadLetter => ErrorAction::DeadLetter,
            hooks::ErrorAction::Suppress => ErrorAction::Suppress,
        })
    }

    /// Before `item` sends `msg` to `target`.
    pub fn before_send(
        &mut self,
        item: &str,
        target: &str,
        msg: &Envelope,
    ) -> Result<BeforeAction, PluginError> {
        let input = convert::message_to_wit(msg);
        let action = self.runner.call(Some(Parent::of(msg)), |g, s| {
            g.call_on_before_send(s, item, target, &input)
        })?;
        before_action(msg, action)
    }

    /// After `item` sent `msg` to `target`, with how the delivery went.
    pub fn after_send(
        &mut self,
        item: &str,
        target: &str,
        msg: &Envelope,
        delivery: Result<(), &Failure>,
    ) -> Result<(), PluginError> {
        let input = convert::message_to_wit(msg);
        let delivery = delivery.map_err(convert::failure_to_wit);
        self.runner.call(Some(Parent::of(msg)), |g, s| {
            g.call_on_after_send(s, item, target, &input, delivery.as_ref().map(|_| ()))
        })
    }
}

fn before_action(original: &Envelope, action: hooks::BeforeAction) -> Result<BeforeAction, PluginError> {
    Ok(match action {
        hooks::BeforeAction::Continue(m) => {
            BeforeAction::Continue(convert::apply_changes(original, m).map_err(PluginError::Failed)?)
        }
        hooks::BeforeAction::Skip(reason) => BeforeAction::Skip(reason),
        hooks::BeforeAction::Reject(f) => BeforeAction::Reject(convert::failure_from_wit(f)),
    })
}
