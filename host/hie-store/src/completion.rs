use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use crate::StoreError;

struct Slot<T> {
    state: Mutex<State<T>>,
    filled: Condvar,
}

struct State<T> {
    value: Option<Result<T, StoreError>>,
    waker: Option<Waker>,
}

/// The answer to a submitted write, delivered once its transaction committed or
/// failed. Block on it with [`Pending::wait`] from threads, or `.await` it from
/// async code (it does not need a particular runtime).
#[must_use = "a write is only durable once its completion says so"]
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
}

/// The writer's end of a [`Pending`]; dropping it unfilled reports [`StoreError::Closed`].
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A connected completer and pending pair.
pub(crate) fn pending<T>() -> (Completer<T>, Pending<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State {
            value: None,
            waker: None,
        }),
        filled: Condvar::new(),
    });
    (
        Completer {
            slot: Some(slot.clone()),
        },
        Pending { slot },
    )
}

impl<T> Pending<T> {
    /// A completion that is already decided.
    pub(crate) fn ready(value: Result<T, StoreError>) -> Self {
        let (completer, pending) = pending();
        completer.complete(value);
        pending
    }

    /// Block the calling thread until the write committed or failed.
    pub fn wait(self) -> Result<T, StoreError> {
        let mut state = self.slot.state.lock();
        loop {
            if let Some(value) = state.value.take() {
                return value;
            }
            self.slot.filled.wait(&mut state);
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.lock();
        match state.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Completer<T> {
    /// Deliver the outcome to the waiting caller.
    pub(crate) fn complete(mut self, value: Result<T, StoreError>) {
        if let Some(slot) = self.slot.take() {
            // a detached write (its `Pending` dropped) has nobody to tell but the log;
            // storage faults are logged by the writer already
            if Arc::strong_count(&slot) == 1
                && let Err(e) = &value
                && !matches!(e, StoreError::Unavailable { .. } | StoreError::Closed)
            {
                tracing::warn!(error = %e, "store refused a write nobody waited for");
            }
            fill(&slot, value);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, Err(StoreError::Closed));
        }
    }
}

fn fill<T>(slot: &Slot<T>, value: Result<T, StoreError>) {
    let waker = {
        let mut state = slot.state.lock();
        state.value = Some(value);
        state.waker.take()
    };
    slot.filled.notify_all();
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_completer_reports_closed() {
        let (completer, pending) = pending::<u32>();
        drop(completer);
        assert_eq!(pending.wait(), Err(StoreError::Closed));
    }

    #[test]
    fn wait_sees_value_from_another_thread() {
        let (completer, pending) = pending::<u32>();
        let t = std::thread::spawn(move || completer.complete(Ok(7)));
        assert_eq!(pending.wait(), Ok(7));
        t.join().unwrap();
    }

    #[tokio::test]
    async fn await_sees_value() {
        let (completer, pending) = pending::<u32>();
        std::thread::spawn(move || completer.complete(Ok(9)));
        assert_eq!(pending.await, Ok(9));
    }
}
