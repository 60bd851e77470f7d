//! The input queue of an item: `fifo`, `priority`, `lifo` or `keyed`, bounded.
//!
//! Workers take entries with a blocking [`ItemQueue::pop`] (they run on their own
//! threads, because plugin calls block) and hand them back with
//! [`ItemQueue::complete`]. Senders put entries in from threads
//! ([`ItemQueue::push_blocking`]) or from async tasks ([`ItemQueue::push_async`],
//! used by the MLLP listener so a full queue stops reading the socket).
//!
//! A keyed queue hands out at most one entry per key at a time: the next entry of
//! a key becomes available only after the previous one is completed, so order is
//! kept per key while different keys are processed in parallel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hie_config::QueueKind;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::delivery::{Delivery, Work};

/// Why a push did not put the entry in the queue; the entry comes back.
#[derive(Debug)]
pub enum PushError {
    /// The queue is at capacity.
    Full(Box<Delivery>),
    /// The queue is closed (the item is stopping or disabled).
    Closed(Box<Delivery>),
}

/// One entry handed to a worker.
#[derive(Debug)]
pub struct Lease {
    /// The work.
    pub delivery: Delivery,
    /// Give this back with [`ItemQueue::complete`] when the work is done.
    pub ticket: Ticket,
}

/// Proof that an entry is in flight; frees its key when completed.
#[derive(Debug)]
pub struct Ticket {
    key: Option<String>,
}

/// A snapshot of a queue's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Entries waiting.
    pub depth: usize,
    /// Entries taken by workers and not completed.
    pub in_flight: usize,
    /// Whether workers are held back.
    pub paused: bool,
    /// How long the oldest waiting entry has waited; `None` when none waits.
    pub oldest_age: Option<Duration>,
}

/// A bounded queue in front of an item's workers.
#[derive(Debug)]
pub struct ItemQueue {
    capacity: usize,
    state: Mutex<State>,
    /// Workers wait here for entries.
    not_empty: Condvar,
    /// Thread senders wait here for space.
    not_full: Condvar,
    /// Async senders wait here for space.
    space: Notify,
    async_waiters: AtomicUsize,
}

#[derive(Debug)]
struct State {
    store: Store,
    depth: usize,
    in_flight: usize,
    paused: bool,
    closed: bool,
    /// Workers started under an older epoch stop taking entries.
    epoch: u64,
}

#[derive(Debug)]
enum Store {
    Fifo(VecDeque<Entry>),
    Lifo(Vec<Entry>),
    Priority(Box<[VecDeque<Entry>; 10]>),
    Keyed {
        by_key: HashMap<String, VecDeque<Entry>>,
        /// Keys with waiting entries and none in flight, in arrival order.
        ready: VecDeque<String>,
        /// Keys with an entry in flight.
        busy: HashSet<String>,
    },
}

#[derive(Debug)]
struct Entry {
    delivery: Delivery,
    key: Option<String>,
    /// When it was put in (for the age-of-oldest metric).
    queued_at: Instant,
}

impl Entry {
    fn new(delivery: Delivery, key: Option<String>) -> Self {
        Entry {
            delivery,
            key,
            queued_at: Instant::now(),
        }
    }
}

impl ItemQueue {
    /// An empty queue of `kind` holding at most `capacity` waiting entries.
    pub fn new(kind: &QueueKind, capacity: usize) -> Self {
        let store = match kind {
            QueueKind::Fifo => Store::Fifo(VecDeque::new()),
            QueueKind::Lifo => Store::Lifo(Vec::new()),
            QueueKind::Priority => Store::Priority(Box::default()),
            QueueKind::Keyed { .. } => Store::Keyed {
                by_key: HashMap::new(),
                ready: VecDeque::new(),
                busy: HashSet::new(),
            },
        };
        ItemQueue {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                store,
                depth: 0,
                in_flight: 0,
                paused: false,
                closed: false,
                epoch: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            space: Notify::new(),
            async_waiters: AtomicUsize::new(0),
        }
    }

    /// Put an entry in if there is room; `key` is its key in a keyed queue.
    pub fn try_push(&self, delivery: Delivery, key: Option<String>) -> Result<(), PushError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PushError::Closed(Box::new(delivery)));
        }
        if st.depth >= self.capacity {
            return Err(PushError::Full(Box::new(delivery)));
        }
        self.insert(&mut st, Entry::new(delivery, key));
        Ok(())
    }

    /// Put an entry in regardless of capacity (replies and redeliveries, which
    /// must not wait behind the messages they unblock).
    pub fn push_force(&self, delivery: Delivery, key: Option<String>) -> Result<(), PushError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PushError::Closed(Box::new(delivery)));
        }
        self.insert(&mut st, Entry::new(delivery, key));
        Ok(())
    }

    /// Put an entry in, waiting for room up to `timeout` (`None`: as long as it takes).
    pub fn push_blocking(
        &self,
        delivery: Delivery,
        key: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<(), PushError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return Err(PushError::Closed(Box::new(delivery)));
            }
            if st.depth < self.capacity {
                self.insert(&mut st, Entry::new(delivery, key));
                return Ok(());
            }
            match deadline {
                Some(d) => {
                    if self.not_full.wait_until(&mut st, d).timed_out() && st.depth >= self.capacity {
                        return Err(PushError::Full(Box::new(delivery)));
                    }
                }
                None => self.not_full.wait(&mut st),
            }
        }
    }

    /// Put an entry in, waiting asynchronously for room.
    pub async fn push_async(&self, delivery: Delivery, key: Option<String>) -> Result<(), PushError> {
        let mut delivery = delivery;
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.async_waiters.fetch_add(1, Ordering::SeqCst);
            // counted until this round ends, also when the caller drops the future
            let _counted = DecrementOnDrop(&self.async_waiters);
            match self.try_push(delivery, key.clone()) {
                Err(PushError::Full(d)) => {
                    delivery = *d;
                    notified.await;
                }
                other => return other,
            }
        }
    }

    /// Wait asynchronously until the queue has room (or is closed). Room can be gone
    /// again by the time the caller pushes: this is for callers that then push with
    /// [`ItemQueue::push_force`] and may overshoot by the few that raced them.
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.state.lock();
                if st.closed || st.depth < self.capacity {
                    return;
                }
            }
            self.async_waiters.fetch_add(1, Ordering::SeqCst);
            let _counted = DecrementOnDrop(&self.async_waiters);
            notified.await;
        }
    }

    fn insert(&self, st: &mut State, entry: Entry) {
        st.depth += 1;
        match &mut st.store {
            Store::Fifo(q) => q.push_back(entry),
            Store::Lifo(q) => q.push(entry),
            Store::Priority(levels) => {
                let p = usize::from(entry.delivery.priority().min(9));
                levels[p].push_back(entry);
            }
            Store::Keyed { by_key, ready, busy } => {
                let key = entry.key.clone().unwrap_or_default();
                let waiting = by_key.entry(key.clone()).or_default();
                if waiting.is_empty() && !busy.contains(&key) {
                    ready.push_back(key);
                }
                waiting.push_back(entry);
            }
        }
        self.not_empty.notify_one();
    }

    /// Take the next entry, waiting while the queue is empty or paused.
    /// `None` once the queue is closed or moved past the worker's `epoch`.
    pub fn pop(&self, epoch: u64) -> Option<Lease> {
        let mut st = self.state.lock();
        loop {
            if st.closed || st.epoch != epoch {
                return None;
            }
            if !st.paused
                && let Some(entry) = take(&mut st.store)
            {
                st.depth -= 1;
                st.in_flight += 1;
                drop(st);
                self.wake_senders(1);
                return Some(Lease {
                    delivery: entry.delivery,
                    ticket: Ticket { key: entry.key },
                });
            }
            self.not_empty.wait(&mut st);
        }
    }

    /// After a [`ItemQueue::pop`]: take up to `max` more entries that are ready now,
    /// without waiting, while their bodies add up to less than `max_bytes`; each
    /// is a lease of its own, completed on its own.
    pub fn pop_ready(&self, epoch: u64, max: usize, max_bytes: usize, out: &mut Vec<Lease>) {
        let mut st = self.state.lock();
        let mut taken = 0;
        let mut bytes = 0;
        while taken < max && bytes < max_bytes && !st.paused && !st.closed && st.epoch == epoch {
            let Some(entry) = take(&mut st.store) else {
                break;
            };
            st.depth -= 1;
            st.in_flight += 1;
            taken += 1;
            if let Work::Message(m) = &entry.delivery.work {
                bytes += m.body.len();
            }
            out.push(Lease {
                delivery: entry.delivery,
                ticket: Ticket { key: entry.key },
            });
        }
        drop(st);
        if taken > 0 {
            self.wake_senders(taken);
        }
    }

    /// `freed` entries left the queue: wake as many blocked senders.
    fn wake_senders(&self, freed: usize) {
        if freed > 1 {
            self.not_full.notify_all();
        } else {
            self.not_full.notify_one();
        }
        if self.async_waiters.load(Ordering::SeqCst) > 0 {
            self.space.notify_waiters();
        }
    }

    /// Hand a lease back after processing; frees its key in a keyed queue.
    pub fn complete(&self, ticket: Ticket) {
        let mut st = self.state.lock();
        st.in_flight -= 1;
        if let Store::Keyed { by_key, ready, busy } = &mut st.store {
            let key = ticket.key.unwrap_or_default();
            busy.remove(&key);
            match by_key.get(&key) {
                Some(waiting) if !waiting.is_empty() => {
                    ready.push_back(key);
                    self.not_empty.notify_one();
                }
                Some(_) => {
                    by_key.remove(&key);
                }
                None => {}
            }
        }
    }

    /// Hold workers back; senders go on until the queue is full.
    pub fn pause(&self) {
        self.state.lock().paused = true;
    }

    /// Let workers take entries again.
    pub fn resume(&self) {
        self.state.lock().paused = false;
        self.not_empty.notify_all();
    }

    /// Refuse new entries and release every waiting worker and sender.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.space.notify_waiters();
    }

    /// The current worker epoch.
    pub fn epoch(&self) -> u64 {
        self.state.lock().epoch
    }

    /// Tell every worker of the current epoch to stop after its current entry;
    /// returns the new epoch for the workers that replace them.
    pub fn next_epoch(&self) -> u64 {
        let mut st = self.state.lock();
        st.epoch += 1;
        let epoch = st.epoch;
        drop(st);
        self.not_empty.notify_all();
        epoch
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Accept entries again after [`ItemQueue::close`] (an item being enabled or restarted).
    pub fn reopen(&self) {
        self.state.lock().closed = false;
    }

    /// Take every waiting entry out (for dead-lettering when an item is stopped for good).
    pub fn drain_waiting(&self) -> Vec<Delivery> {
        let mut st = self.state.lock();
        let mut out = Vec::with_capacity(st.depth);
        while let Some(e) = take_any(&mut st.store) {
            out.push(e.delivery);
        }
        st.depth = 0;
        drop(st);
        self.not_full.notify_all();
        self.space.notify_waiters();
        out
    }

    /// Depth, in-flight count and pause state.
    pub fn stats(&self) -> QueueStats {
        let st = self.state.lock();
        QueueStats {
            depth: st.depth,
            in_flight: st.in_flight,
            paused: st.paused,
            oldest_age: oldest(&st.store).map(|t| t.elapsed()),
        }
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

fn take(store: &mut Store) -> Option<Entry> {
    match store {
        Store::Fifo(q) => q.pop_front(),
        Store::Lifo(q) => q.pop(),
        Store::Priority(levels) => levels.iter_mut().rev().find_map(|q| q.pop_front()),
        Store::Keyed { by_key, ready, busy } => {
            let key = ready.pop_front()?;
            let entry = by_key.get_mut(&key).and_then(|q| q.pop_front())?;
            busy.insert(key);
            Some(entry)
        }
    }
}

/// When the oldest waiting entry was put in. Each FIFO run holds its oldest in
/// front; a LIFO stack at the bottom.
fn oldest(store: &Store) -> Option<Instant> {
    match store {
        Store::Fifo(q) => q.front().map(|e| e.queued_at),
        Store::Lifo(q) => q.first().map(|e| e.queued_at),
        Store::Priority(levels) => levels.iter().filter_map(|q| q.front()).map(|e| e.queued_at).min(),
        Store::Keyed { by_key, .. } => by_key
            .values()
            .filter_map(|q| q.front())
            .map(|e| e.queued_at)
            .min(),
    }
}

fn take_any(store: &mut Store) -> Option<Entry> {
    match store {
        Store::Keyed { by_key, ready, .. } => {
            ready.clear();
            let key = by_key.keys().next()?.clone();
            let q = by_key.get_mut(&key)?;
            let e = q.pop_front();
            if q.is_empty() {
                by_key.remove(&key);
            }
            e
        }
        other => take(other),
    }
}

/// Takes one off a waiter count when dropped.
struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hie_core::Envelope;

    use super::*;

    fn msg(body: &str, priority: u8) -> Delivery {
        let mut e = Envelope::hl7("t", body.to_string());
        e.priority = priority;
        Delivery::message(e)
    }

    fn body(l: &Lease) -> String {
        l.delivery.envelope().unwrap().body_str().unwrap().to_string()
    }

    #[test]
    fn fifo_lifo_and_priority_orders() {
        let q = ItemQueue::new(&QueueKind::Fifo, 10);
        for b in ["a", "b", "c"] {
            q.try_push(msg(b, 4), None).unwrap();
        }
        let got: Vec<String> = (0..3).map(|_| q.pop(0).unwrap()).map(|l| body(&l)).collect();
        assert_eq!(got, ["a", "b", "c"]);

        let q = ItemQueue::new(&QueueKind::Lifo, 10);
        for b in ["a", "b", "c"] {
            q.try_push(msg(b, 4), None).unwrap();
        }
        let got: Vec<String> = (0..3).map(|_| q.pop(0).unwrap()).map(|l| body(&l)).collect();
        assert_eq!(got, ["c", "b", "a"]);

        let q = ItemQueue::new(&QueueKind::Priority, 10);
        for (b, p) in [("l1", 1), ("h1", 9), ("m1", 5), ("h2", 9), ("l2", 1)] {
            q.try_push(msg(b, p), None).unwrap();
        }
        let got: Vec<String> = (0..5).map(|_| q.pop(0).unwrap()).map(|l| body(&l)).collect();
        assert_eq!(got, ["h1", "h2", "m1", "l1", "l2"]);
    }

    #[test]
    fn keyed_hands_out_one_entry_per_key() {
        let q = ItemQueue::new(&QueueKind::Keyed { key: "PID-3".into() }, 10);
        for (b, k) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            q.try_push(msg(b, 4), Some(k.into())).unwrap();
        }
        let first = q.pop(0).unwrap();
        let second = q.pop(0).unwrap();
        assert_eq!((body(&first), body(&second)), ("a1".into(), "b1".into()));
        // a2 waits until a1 is complete
        q.complete(second.ticket);
        q.complete(first.ticket);
        let third = q.pop(0).unwrap();
        assert_eq!(body(&third), "a2");
        assert_eq!(q.stats().in_flight, 1);
    }

    #[test]
    fn pop_ready_takes_what_is_ready_in_order_up_to_its_limits() {
        let q = ItemQueue::new(&QueueKind::Fifo, 10);
        for b in ["a", "b", "c", "d", "e"] {
            q.try_push(msg(b, 4), None).unwrap();
        }
        let mut batch = vec![q.pop(0).unwrap()];
        q.pop_ready(0, 2, usize::MAX, &mut batch);
        assert_eq!(batch.iter().map(body).collect::<Vec<_>>(), ["a", "b", "c"]);
        // the byte limit stops after the entry that reaches it
        let mut more = Vec::new();
        q.pop_ready(0, 10, 1, &mut more);
        assert_eq!(more.iter().map(body).collect::<Vec<_>>(), ["d"]);
        assert_eq!(q.stats().in_flight, 4);
        // a paused queue hands out nothing more; a keyed one no busy key
        q.pause();
        q.pop_ready(0, 10, usize::MAX, &mut more);
        assert_eq!(more.len(), 1);
        let keyed = ItemQueue::new(&QueueKind::Keyed { key: "PID-3".into() }, 10);
        for (b, k) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            keyed.try_push(msg(b, 4), Some(k.into())).unwrap();
        }
        let mut batch = vec![keyed.pop(0).unwrap()];
        keyed.pop_ready(0, 10, usize::MAX, &mut batch);
        assert_eq!(batch.iter().map(body).collect::<Vec<_>>(), ["a1", "b1"]);
    }

    #[test]
    fn full_queue_rejects_then_blocks_until_space() {
        let q = Arc::new(ItemQueue::new(&QueueKind::Fifo, 1));
        q.try_push(msg("a", 4), None).unwrap();
        assert!(matches!(q.try_push(msg("b", 4), None), Err(PushError::Full(_))));
        assert!(matches!(
            q.push_blocking(msg("b", 4), None, Some(Duration::from_millis(10))),
            Err(PushError::Full(_))
        ));
        let q2 = Arc::clone(&q);
        let sender = std::thread::spawn(move || q2.push_blocking(msg("c", 4), None, None));
        let lease = q.pop(0).unwrap();
        q.complete(lease.ticket);
        sender.join().unwrap().unwrap();
        assert_eq!(body(&q.pop(0).unwrap()), "c");
    }

    #[test]
    fn paused_queue_accepts_but_does_not_hand_out() {
        let q = Arc::new(ItemQueue::new(&QueueKind::Fifo, 10));
        q.pause();
        q.try_push(msg("a", 4), None).unwrap();
        let q2 = Arc::clone(&q);
        let worker = std::thread::spawn(move || q2.pop(0).map(|l| body(&l)));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(q.stats().depth, 1, "a paused queue must keep its entry");
        assert!(
            q.stats()
                .oldest_age
                .is_some_and(|a| a >= Duration::from_millis(20))
        );
        q.resume();
        assert_eq!(worker.join().unwrap().as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn async_push_waits_for_space() {
        let q = Arc::new(ItemQueue::new(&QueueKind::Fifo, 1));
        q.try_push(msg("a", 4), None).unwrap();
        let q2 = Arc::clone(&q);
        let pushed = tokio::spawn(async move { q2.push_async(msg("b", 4), None).await });
        tokio::task::yield_now().await;
        assert!(!pushed.is_finished());
        let q3 = Arc::clone(&q);
        let lease = tokio::task::spawn_blocking(move || q3.pop(0))
            .await
            .unwrap()
            .unwrap();
        q.complete(lease.ticket);
        pushed.await.unwrap().unwrap();
        q.close();
        assert!(q.pop(0).is_none());
    }
}
