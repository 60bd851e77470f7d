//! Message hooks: the engine's view of a `message-hook` component, and the order
//! in which a worker calls them.
//!
//! For one message on one item, with hooks `[h1, h2]` attached in that order:
//! `h1.on-before-process`, `h2.on-before-process` → the item's `on-message` →
//! on success `h1.on-after-process`, `h2.on-after-process`, or on failure
//! `h1.on-process-error`, `h2.on-process-error` (the first answer other than
//! `default` wins) → for every message sent: `h1.on-before-send`,
//! `h2.on-before-send`, the delivery, `h1.on-after-send`, `h2.on-after-send`.
//! A hook that skips or rejects stops the chain for that step.

use hie_core::{Envelope, Failure, Outcome};

pub use hie_core::{BeforeAction, ErrorAction};

/// One hook instance, owned by one worker. Hook failures are the hook's own
/// business: an implementation that cannot answer returns the neutral answer.
pub trait MessageHook: Send {
    /// Name of the hook (for logs).
    fn name(&self) -> &str;
    /// Before `item` processes `msg`.
    fn on_before_process(&mut self, item: &str, msg: Envelope) -> BeforeAction;
    /// After `item` processed `msg`; may change the outcome.
    fn on_after_process(&mut self, item: &str, msg: &Envelope, outcome: Outcome) -> Outcome;
    /// After `item` failed to process `msg`.
    fn on_process_error(&mut self, item: &str, msg: &Envelope, error: &Failure) -> ErrorAction;
    /// Before `item` sends `msg` to `target`.
    fn on_before_send(&mut self, item: &str, target: &str, msg: Envelope) -> BeforeAction;
    /// After `item` sent `msg` to `target`.
    fn on_after_send(&mut self, item: &str, target: &str, msg: &Envelope, delivery: &Result<(), Failure>);
}

/// The hooks of one worker, in calling order.
#[derive(Default)]
pub struct HookChain {
    hooks: Vec<Box<dyn MessageHook>>,
}

impl std::fmt::Debug for HookChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|h| h.name()))
            .finish()
    }
}

impl HookChain {
    /// A chain of `hooks`, called in this order.
    pub fn new(hooks: Vec<Box<dyn MessageHook>>) -> Self {
        HookChain { hooks }
    }

    /// Whether there are no hooks.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Every `on-before-process`, in order, until one does not continue.
    pub fn before_process(&mut self, item: &str, msg: Envelope) -> BeforeAction {
        let mut msg = msg;
        for h in &mut self.hooks {
            match h.on_before_process(item, msg) {
                BeforeAction::Continue(m) => msg = m,
                other => return other,
            }
        }
        BeforeAction::Continue(msg)
    }

    /// Every `on-after-process`, in order, each seeing the previous one's outcome.
    pub fn after_process(&mut self, item: &str, msg: &Envelope, outcome: Outcome) -> Outcome {
        self.hooks
            .iter_mut()
            .fold(outcome, |o, h| h.on_after_process(item, msg, o))
    }

    /// Every `on-process-error`, in order; the first answer other than `Default` wins
    /// (the rest are still called, so each hook sees every failure).
    pub fn process_error(&mut self, item: &str, msg: &Envelope, error: &Failure) -> ErrorAction {
        let mut decided = ErrorAction::Default;
        for h in &mut self.hooks {
            let action = h.on_process_error(item, msg, error);
            if decided == ErrorAction::Default {
                decided = action;
            }
        }
        decided
    }

    /// Every `on-before-send`, in order, until one does not continue.
    pub fn before_send(&mut self, item: &str, target: &str, msg: Envelope) -> BeforeAction {
        let mut msg = msg;
        for h in &mut self.hooks {
            match h.on_before_send(item, target, msg) {
                BeforeAction::Continue(m) => msg = m,
                other => return other,
            }
        }
        BeforeAction::Continue(msg)
    }

    /// Every `on-after-send`, in order.
    pub fn after_send(&mut self, item: &str, target: &str, msg: &Envelope, delivery: &Result<(), Failure>) {
        for h in &mut self.hooks {
            h.on_after_send(item, target, msg, delivery);
        }
    }
}
