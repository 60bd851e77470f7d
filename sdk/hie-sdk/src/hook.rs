//! Message hooks: the [`Hook`] trait (world `message-hook`).

use std::marker::PhantomData;

use crate::message::{Failure, Message, Outcome, Settings};

/// What to do with a message before it is processed or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeAction {
    /// Go on with this (possibly changed) message.
    Continue(Message),
    /// Do not process or send it; the text is recorded. Not an error.
    Skip(String),
    /// Refuse it as an error (a NAK for an inbound message).
    Reject(Failure),
}

/// What to do after processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorAction {
    /// Let the host's normal error handling decide (retry policy, dead-letter).
    #[default]
    Default,
    /// Try the message again.
    Retry,
    /// Move it to the dead-letter queue now.
    DeadLetter,
    /// Treat it as done; the failure is recorded but not acted on.
    Suppress,
}

/// A message hook, attached to items in order and called around processing and
/// sending. Every method has a default that changes nothing, so a hook
/// implements only the points it cares about. Export it with
/// [`export_hook!`](crate::export_hook).
pub trait Hook: Default + 'static {
    /// Reads the hook's settings; an error refuses the hook instance.
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Before `item` processes `msg`.
    fn on_before_process(&mut self, item: &str, msg: Message) -> BeforeAction {
        let _ = item;
        BeforeAction::Continue(msg)
    }

    /// After `item` processed `msg`; may change the outcome.
    fn on_after_process(&mut self, item: &str, msg: &Message, outcome: Outcome) -> Outcome {
        let _ = (item, msg);
        outcome
    }

    /// After `item` failed to process `msg`.
    fn on_process_error(&mut self, item: &str, msg: &Message, error: &Failure) -> ErrorAction {
        let _ = (item, msg, error);
        ErrorAction::Default
    }

    /// Before `item` sends `msg` to `target`.
    fn on_before_send(&mut self, item: &str, target: &str, msg: Message) -> BeforeAction {
        let _ = (item, target);
        BeforeAction::Continue(msg)
    }

    /// After `item` sent `msg` to `target`, with how the delivery went.
    fn on_after_send(&mut self, item: &str, target: &str, msg: &Message, delivery: Result<(), Failure>) {
        let _ = (item, target, msg, delivery);
    }
}

/// The hooks export of the component for hook type `H` (see [`export_hook!`](crate::export_hook)).
#[doc(hidden)]
pub struct HookExport<H>(PhantomData<H>);
