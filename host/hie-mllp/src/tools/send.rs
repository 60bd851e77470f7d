//! Send messages over several pipelined connections and report ACKs and latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientConfig, Connection, FrameReceiver, FrameSender};
use crate::error::ErrorKind;
use crate::tools::Outgoing;

/// How to send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Where and how to connect (address, timeouts, TLS, backoff, connect attempts).
    pub client: ClientConfig,
    /// Connections used in parallel.
    pub connections: usize,
    /// Frames in flight per connection (1: strict request/ACK).
    pub window: usize,
}

/// Live progress, for a progress bar.
#[derive(Debug, Default)]
pub struct SendProgress {
    /// Messages finished (ACKed or failed).
    pub done: AtomicU64,
    /// Of those, messages without an ACK.
    pub failed: AtomicU64,
}

/// Latency from sending a frame to its complete reply, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// What a send run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SendReport {
    /// The target address.
    pub target: String,
    /// Messages to send.
    pub messages: u64,
    /// Messages written to a connection.
    pub sent: u64,
    /// Replies that are ACKs, counted by MSA-1 (`AA`, `AE`, …).
    pub ack_codes: BTreeMap<String, u64>,
    /// Replies that are not readable ACKs.
    pub invalid_acks: u64,
    /// ACKs whose MSA-2 is not the sent MSH-10.
    pub control_id_mismatches: u64,
    /// Messages without a reply, by error kind (`timeout`, `connection_refused`, …).
    pub errors: BTreeMap<String, u64>,
    /// Connections used.
    pub connections: usize,
    /// Frames in flight per connection.
    pub window: usize,
    /// Wall time of the run, in seconds.
    pub elapsed_s: f64,
    /// ACKs per second over the run.
    pub msgs_per_sec: f64,
    /// Latency of the replies.
    pub latency: LatencySummary,
}

impl SendReport {
    /// Replies that are ACKs.
    pub fn acked(&self) -> u64 {
        self.ack_codes.values().sum()
    }

    /// Messages that got no ACK (errors and unreadable replies).
    pub fn without_ack(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.invalid_acks
    }

    /// True if every message got an ACK.
    pub fn all_acked(&self) -> bool {
        self.acked() == self.messages
    }

    /// True if every message got an AA (or CA) with its own control id.
    pub fn all_accepted(&self) -> bool {
        let accepted =
            self.ack_codes.get("AA").copied().unwrap_or(0) + self.ack_codes.get("CA").copied().unwrap_or(0);
        accepted == self.messages && self.control_id_mismatches == 0
    }

    /// A few lines for a terminal.
    pub fn to_text(&self) -> String {
        let join = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut text = format!(
            "sent {} of {} to {} in {:.2} s ({:.0} msg/s, {} connections, window {})\n",
            self.sent,
            self.messages,
            self.target,
            self.elapsed_s,
            self.msgs_per_sec,
            self.connections,
            self.window
        );
        text += &format!(
            "acks: {} ({})  invalid acks: {}  control id mismatches: {}\n",
            self.acked(),
            join(&self.ack_codes),
            self.invalid_acks,
            self.control_id_mismatches
        );
        if !self.errors.is_empty() {
            text += &format!("no ack: {} ({})\n", self.without_ack(), join(&self.errors));
        }
        text += &format!(
            "latency ms: p50 {:.3}  p99 {:.3}  max {:.3}",
            self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
        );
        text
    }
}

/// Send every message in `messages` and wait for their replies.
///
/// Each of `opts.connections` connections takes the next unsent message while fewer than
/// `opts.window` are in flight on it. A connection that fails counts its in-flight
/// messages under the error's kind (they are not resent) and is reopened with backoff;
/// after `opts.client.connect_attempts` failed attempts in a row it gives up, and
/// messages nobody could send count under the last connect error.
pub async fn send(messages: Vec<Outgoing>, opts: &SendOptions, progress: Arc<SendProgress>) -> SendReport {
    let total = messages.len();
    let work = Arc::new(Work {
        messages,
        next: AtomicUsize::new(0),
        progress,
    });
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.connections.clamp(1, total.max(1)) {
        let work = Arc::clone(&work);
        let config = opts.client.clone();
        let window = opts.window.max(1);
        workers.spawn(async move { run_worker(&work, &config, window).await });
    }
    let mut tally = Tally::new();
    let mut last_connect_error = None;
    while let Some(joined) = workers.join_next().await {
        let (worker_tally, connect_error) = joined.expect("send worker does not panic");
        tally.merge(worker_tally);
        last_connect_error = connect_error.or(last_connect_error);
    }
    let unsent = total.saturating_sub(work.next.load(Ordering::Relaxed).min(total)) as u64;
    if unsent > 0 {
        let kind = last_connect_error.unwrap_or(ErrorKind::ConnectionRefused);
        *tally.errors.entry(kind).or_default() += unsent;
        work.progress.done.fetch_add(unsent, Ordering::Relaxed);
        work.progress.failed.fetch_add(unsent, Ordering::Relaxed);
    }
    tally.into_report(opts, total, started.elapsed())
}

struct Work {
    messages: Vec<Outgoing>,
    next: AtomicUsize,
    progress: Arc<SendProgress>,
}

impl Work {
    fn claim(&self) -> Option<usize> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.messages.len()).then_some(index)
    }

    fn has_more(&self) -> bool {
        self.next.load(Ordering::Relaxed) < self.messages.len()
    }
}

/// Counts kept by one connection, merged at the end.
struct Tally {
    sent: u64,
    ack_codes: BTreeMap<String, u64>,
    invalid_acks: u64,
    mismatches: u64,
    errors: BTreeMap<ErrorKind, u64>,
    latency_us: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            sent: 0,
            ack_codes: BTreeMap::new(),
            invalid_acks: 0,
            mismatches: 0,
            errors: BTreeMap::new(),
            // 1 µs to 1 h: an auto-resizing histogram would clamp `saturating_record` to its
            // initial range instead of growing.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        }
    }

    fn record_reply(&mut self, sent: &Outgoing, reply: &[u8], latency: Duration, work: &Work) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency_us.saturating_record(micros);
        work.progress.done.fetch_add(1, Ordering::Relaxed);
        match hie_hl7::ack::parse_ack(reply) {
            Ok(ack) => {
                *self.ack_codes.entry(ack.code.as_str().to_owned()).or_default() += 1;
                if sent.control_id.is_some() && ack.control_id != sent.control_id {
                    self.mismatches += 1;
                }
            }
            Err(_) => {
                self.invalid_acks += 1;
                work.progress.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn record_error(&mut self, kind: ErrorKind, work: &Work) {
        *self.errors.entry(kind).or_default() += 1;
        work.progress.done.fetch_add(1, Ordering::Relaxed);
        work.progress.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        for (code, n) in other.ack_codes {
            *self.ack_codes.entry(code).or_default() += n;
        }
        self.invalid_acks += other.invalid_acks;
        self.mismatches += other.mismatches;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms of the same bounds merge");
    }

    fn into_report(self, opts: &SendOptions, total: usize, elapsed: Duration) -> SendReport {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.latency_us;
        let latency = if h.is_empty() {
            LatencySummary::default()
        } else {
            LatencySummary {
                p50_ms: ms(h.value_at_quantile(0.5)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
                mean_ms: h.mean() / 1000.0,
            }
        };
        let acked: u64 = self.ack_codes.values().sum();
        let elapsed_s = elapsed.as_secs_f64();
        SendReport {
            target: opts.client.addr.clone(),
            messages: total as u64,
            sent: self.sent,
            ack_codes: self.ack_codes,
            invalid_acks: self.invalid_acks,
            control_id_mismatches: self.mismatches,
            errors: self
                .errors
                .into_iter()
                .map(|(kind, n)| (kind.as_str().to_owned(), n))
                .collect(),
            connections: opts.connections,
            window: opts.window,
            elapsed_s,
            msgs_per_sec: if elapsed_s > 0.0 {
                acked as f64 / elapsed_s
            } else {
                0.0
            },
            latency,
        }
    }
}

/// One connection's loop: connect (with backoff), run a session, repeat while work remains.
async fn run_worker(work: &Work, config: &ClientConfig, window: usize) -> (Tally, Option<ErrorKind>) {
    let mut tally = Tally::new();
    let mut delay = config.backoff.initial;
    let mut failures = 0;
    while work.has_more() {
        match Connection::open(config).await {
            Ok(connection) => {
                failures = 0;
                delay = config.backoff.initial;
                run_session(connection, work, config.ack_timeout, window, &mut tally).await;
            }
            Err(err) => {
                failures += 1;
                tracing::debug!(addr = %config.addr, error = %err, "send: connect failed");
                if failures >= config.connect_attempts.max(1) {
                    return (tally, Some(err.kind()));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(config.backoff.max);
            }
        }
    }
    (tally, None)
}

struct InFlight {
    index: usize,
    sent_at: Instant,
}

/// Pipeline frames on one connection until the work is done or the connection fails.
async fn run_session(
    connection: Connection,
    work: &Work,
    ack_timeout: Duration,
    window: usize,
    tally: &mut Tally,
) {
    let Connection {
        mut sender,
        mut receiver,
    } = connection;
    let (in_flight_tx, mut in_flight) = mpsc::unbounded_channel();
    let slots = Semaphore::new(window);
    let failed = CancellationToken::new();
    let sent = AtomicU64::new(0);
    let write = write_frames(&mut sender, work, &slots, &failed, &sent, in_flight_tx);
    let read = read_replies(
        &mut receiver,
        work,
        &slots,
        &failed,
        ack_timeout,
        &mut in_flight,
        tally,
    );
    let ((), failure) = tokio::join!(write, read);
    if let Some(kind) = failure {
        // Frames written (or claimed) after the failure got no reply either.
        while in_flight.try_recv().is_ok() {
            tally.record_error(kind, work);
        }
    }
    tally.sent += sent.load(Ordering::Relaxed);
}

async fn write_frames(
    sender: &mut FrameSender,
    work: &Work,
    slots: &Semaphore,
    failed: &CancellationToken,
    sent: &AtomicU64,
    in_flight: mpsc::UnboundedSender<InFlight>,
) {
    loop {
        let slot = match slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                // The window is full: put what is queued on the wire, then wait.
                let flushed = tokio::select! {
                    flushed = sender.flush() => flushed.is_ok(),
                    _ = failed.cancelled() => false,
                };
                if !flushed {
                    return;
                }
                tokio::select! {
                    slot = slots.acquire() => slot.expect("the window semaphore is never closed"),
                    _ = failed.cancelled() => return,
                }
            }
        };
        if failed.is_cancelled() {
            return;
        }
        let Some(index) = work.claim() else { break };
        slot.forget();
        if sender.queue(&work.messages[index].payload).is_err() {
            // Too large to send: nothing will come back for it.
            work.progress.done.fetch_add(1, Ordering::Relaxed);
            work.progress.failed.fetch_add(1, Ordering::Relaxed);
            slots.add_permits(1);
            continue;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        let sent_at = Instant::now();
        if in_flight.send(InFlight { index, sent_at }).is_err() {
            return;
        }
    }
    tokio::select! {
        _ = sender.flush() => {}
        _ = failed.cancelled() => {}
    }
}

async fn read_replies(
    receiver: &mut FrameReceiver,
    work: &Work,
    slots: &Semaphore,
    failed: &CancellationToken,
    ack_timeout: Duration,
    in_flight: &mut mpsc::UnboundedReceiver<InFlight>,
    tally: &mut Tally,
) -> Option<ErrorKind> {
    while let Some(next) = in_flight.recv().await {
        match receiver.next_frame_within(ack_timeout).await {
            Ok(reply) => {
                let outgoing = &work.messages[next.index];
                tally.record_reply(outgoing, &reply, next.sent_at.elapsed(), work);
                slots.add_permits(1);
            }
            Err(err) => {
                tally.record_error(err.kind(), work);
                tracing::debug!(error = %err, "send: connection failed");
                failed.cancel();
                return Some(err.kind());
            }
        }
    }
    None
}
