//! The [`Plugin`] trait an item implements, and the per-instance state behind
//! the export macros.

use std::marker::PhantomData;

use crate::hook::Hook;
use crate::message::{Failure, Message, Outcome, Settings};

/// The business logic of an item. Only [`on_message`](Plugin::on_message) is
/// required; the lifecycle methods default to doing nothing.
///
/// The host makes one value per instance with [`Default`], calls `on_init` once
/// with the item's settings, `on_start`, then `on_message` for each message.
/// Panicking traps the instance (the message fails and the host starts a fresh
/// instance): return a [`Failure`] instead.
pub trait Plugin: Default + 'static {
    /// Reads the item's settings; an error refuses the instance (and rolls back a reload).
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// The item is starting to take messages.
    fn on_start(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Processes one message.
    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure>;

    /// The reply to an earlier [`host::send_request_async`](crate::host::send_request_async).
    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Message, Failure>,
    ) -> Result<Outcome, Failure> {
        let _ = (correlation_id, reply);
        Ok(Outcome::Done)
    }

    /// The item is stopping; no messages arrive until a new start.
    fn on_stop(&mut self) {}

    /// The instance is about to be dropped.
    fn on_teardown(&mut self) {}
}

/// The item export of the component for plugin type `P` (see [`export!`](crate::export)).
#[doc(hidden)]
pub struct ItemExport<P>(PhantomData<P>);

/// Compile-time check used by the native [`export!`](crate::export).
#[doc(hidden)]
pub fn assert_plugin<P: Plugin>() {}

/// Compile-time check used by the native [`export_hook!`](crate::export_hook).
#[doc(hidden)]
pub fn assert_hook<H: Hook>() {}

/// The one live plugin (or hook) value of this component instance.
///
/// A component instance runs one call at a time and the host never calls back
/// into it during a host import, so the `RefCell` is never borrowed twice.
#[cfg(target_arch = "wasm32")]
pub(crate) mod instance {
    use std::any::Any;
    use std::cell::RefCell;

    thread_local! {
        static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Runs `f` on the instance value, making it with `Default` on first use.
    pub(crate) fn with<T: Default + 'static, R>(f: impl FnOnce(&mut T) -> R) -> R {
        INSTANCE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let value = slot.get_or_insert_with(|| Box::new(T::default()));
            let value = value.downcast_mut::<T>().expect("one plugin type per component");
            f(value)
        })
    }

    /// Drops the instance value (after `on-teardown`).
    pub(crate) fn clear() {
        INSTANCE.with(|cell| cell.borrow_mut().take());
    }
}
