//! The production's Prometheus metrics: one [`prometheus::Registry`] owned by the
//! engine, rendered as text for `/metrics`.
//!
//! Counters and histograms are bumped where things happen (workers, adapters,
//! the restart policy) through [`ItemMetrics`] handles made once per item, so
//! the hot path does no label lookups. Gauges (queue depth, age of the oldest
//! entry, in flight) and the MLLP listener counters are read when the metrics
//! are rendered. Labels are item names and fixed words only: never anything
//! taken from a message.

use std::sync::Arc;
use std::time::Duration;

use hie_core::{MessageId, PluginError};
use hie_mllp::metrics::{ListenerMetrics, ListenerStats};
use parking_lot::Mutex;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::engine::{ItemState, ItemStatus};

/// Bucket bounds (seconds) of the processing-latency histogram: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Bucket bounds (seconds) of the store commit histogram: 50 µs to 5 s.
const COMMIT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `limit` label values of `hie_plugin_limit_hits_total`.
const LIMITS: [&str; 4] = ["deadline", "fuel", "memory", "output"];

/// Every metric of a production.
pub struct EngineMetrics {
    registry: Registry,
    messages_in: IntCounterVec,
    messages_out: IntCounterVec,
    messages_failed: IntCounterVec,
    processing: HistogramVec,
    restarts: IntCounterVec,
    traps: IntCounterVec,
    limit_hits: IntCounterVec,
    queue_depth: IntGaugeVec,
    queue_oldest: GaugeVec,
    in_flight: IntGaugeVec,
    item_state: IntGaugeVec,
    store_commit: Histogram,
    listeners: Mutex<Vec<WatchedListener>>,
    mllp_open: IntGaugeVec,
    mllp_total: IntCounterVec,
    mllp_rejected: IntCounterVec,
    mllp_frames: IntCounterVec,
    mllp_frame_errors: IntCounterVec,
    mllp_timeouts: IntCounterVec,
    mllp_tls_failures: IntCounterVec,
    mllp_out_open: IntGaugeVec,
    mllp_out_opened: IntCounterVec,
    mllp_out_errors: IntCounterVec,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineMetrics")
    }
}

struct WatchedListener {
    item: String,
    metrics: Arc<ListenerMetrics>,
    /// What was last copied into the counters.
    seen: ListenerStats,
}

/// The outbound MLLP series of one `mllp-out` operation, bumped by its workers'
/// clients ([`crate::adapters::outbound`]).
#[derive(Clone)]
pub struct MllpOutMetrics {
    item: String,
    /// Connections open now (one per worker at most).
    pub open: prometheus::IntGauge,
    /// Connections opened so far.
    pub opened: IntCounter,
    errors: IntCounterVec,
}

impl MllpOutMetrics {
    /// A call that ended in `kind` of error.
    pub fn error(&self, kind: hie_mllp::ErrorKind) {
        self.errors.with_label_values(&[&self.item, kind.as_str()]).inc();
    }
}

impl std::fmt::Debug for MllpOutMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MllpOutMetrics({})", self.item)
    }
}

/// The counters of one item, bumped by its workers.
#[derive(Clone)]
pub struct ItemMetrics {
    item: String,
    messages_in: IntCounter,
    messages_out: IntCounter,
    messages_failed: IntCounter,
    processing: Histogram,
    restarts: IntCounter,
    traps: IntCounter,
    limit_hits: IntCounterVec,
}

impl std::fmt::Debug for ItemMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemMetrics").field("item", &self.item).finish()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineMetrics {
    /// A registry with every HIE metric and the process collector (CPU, RSS, open fds).
    pub fn new() -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            r.register(Box::new(process))
                .expect("process collector registered once");
        }
        let item = &["item"];
        let processing = HistogramVec::new(
            HistogramOpts::new(
                "hie_processing_seconds",
                "Time of one plugin or adapter call on a message, per item",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            item,
        )
        .expect("valid metric definition");
        r.register(Box::new(processing.clone()))
            .expect("metric registered once");
        let queue_oldest = GaugeVec::new(
            Opts::new(
                "hie_queue_oldest_age_seconds",
                "How long the oldest message waiting in the item's queue has waited (0 when empty)",
            ),
            item,
        )
        .expect("valid metric definition");
        r.register(Box::new(queue_oldest.clone()))
            .expect("metric registered once");
        let store_commit = Histogram::with_opts(
            HistogramOpts::new(
                "hie_store_commit_seconds",
                "Time an inbound message waited for its store commit (group commit with fsync) before its ACK",
            )
            .buckets(COMMIT_BUCKETS.to_vec()),
        )
        .expect("valid metric definition");
        r.register(Box::new(store_commit.clone()))
            .expect("metric registered once");
        EngineMetrics {
            messages_in: counter(
                &r,
                "hie_messages_in_total",
                "Messages an item's workers took",
                item,
            ),
            messages_out: counter(
                &r,
                "hie_messages_out_total",
                "Messages an item finished: passed on, delivered, replied, done or skipped",
                item,
            ),
            messages_failed: counter(
                &r,
                "hie_messages_failed_total",
                "Messages an item failed after its retries (dead-lettered, rejected or suppressed)",
                item,
            ),
            processing,
            restarts: counter(
                &r,
                "hie_worker_restarts_total",
                "Worker restarts by the restart policy",
                item,
            ),
            traps: counter(&r, "hie_plugin_traps_total", "Plugin calls that trapped", item),
            limit_hits: counter(
                &r,
                "hie_plugin_limit_hits_total",
                "Plugin calls stopped by a limit (deadline, fuel, memory, output)",
                &["item", "limit"],
            ),
            queue_depth: gauge(
                &r,
                "hie_queue_depth",
                "Messages waiting in the item's queue",
                item,
            ),
            queue_oldest,
            in_flight: gauge(
                &r,
                "hie_in_flight",
                "Messages the item's workers are processing",
                item,
            ),
            item_state: gauge(
                &r,
                "hie_item_state",
                "1 for the item's current state, 0 for the others",
                &["item", "state"],
            ),
            store_commit,
            listeners: Mutex::new(Vec::new()),
            mllp_open: gauge(
                &r,
                "hie_mllp_connections_open",
                "Inbound MLLP connections open",
                item,
            ),
            mllp_total: counter(
                &r,
                "hie_mllp_connections_total",
                "Inbound MLLP connections accepted",
                item,
            ),
            mllp_rejected: counter(
                &r,
                "hie_mllp_connections_rejected_total",
                "Inbound MLLP connections closed at once because max_connections were open",
                item,
            ),
            mllp_frames: counter(&r, "hie_mllp_frames_total", "Inbound MLLP frames decoded", item),
            mllp_frame_errors: counter(
                &r,
                "hie_mllp_frame_errors_total",
                "Inbound MLLP frames that were empty, too large, badly framed or unfinished",
                item,
            ),
            mllp_timeouts: counter(
                &r,
                "hie_mllp_timeouts_total",
                "Inbound MLLP connections closed by a timeout",
                item,
            ),
            mllp_tls_failures: counter(
                &r,
                "hie_mllp_tls_handshake_failures_total",
                "Inbound TLS handshakes that failed",
                item,
            ),
            mllp_out_open: gauge(
                &r,
                "hie_mllp_out_connections_open",
                "Outbound (mllp-out) MLLP connections open",
                item,
            ),
            mllp_out_opened: counter(
                &r,
                "hie_mllp_out_connections_total",
                "Outbound (mllp-out) MLLP connections opened, reconnects included",
                item,
            ),
            mllp_out_errors: counter(
                &r,
                "hie_mllp_out_errors_total",
                "Outbound (mllp-out) MLLP calls that got no usable reply, by kind (connection_refused, \
                 connect_timeout, timeout, reset_by_peer, framing, frame_too_large, tls_handshake, io, ...)",
                &["item", "kind"],
            ),
            registry: r,
        }
    }

    /// The handles of `item`'s counters (made once, when the item is built).
    pub fn item(&self, item: &str) -> ItemMetrics {
        let l = &[item];
        // every limit's series exists at 0 from the start, so a scrape shows the
        // metric (and rate() works) before the first hit
        for limit in LIMITS {
            self.limit_hits.with_label_values(&[item, limit]);
        }
        ItemMetrics {
            item: item.to_string(),
            messages_in: self.messages_in.with_label_values(l),
            messages_out: self.messages_out.with_label_values(l),
            messages_failed: self.messages_failed.with_label_values(l),
            processing: self.processing.with_label_values(l),
            restarts: self.restarts.with_label_values(l),
            traps: self.traps.with_label_values(l),
            limit_hits: self.limit_hits.clone(),
        }
    }

    /// The outbound MLLP series of `item` (an `mllp-out` operation), made at 0.
    pub fn mllp_out(&self, item: &str) -> MllpOutMetrics {
        let l = &[item];
        // the series exist at 0 from here on
        MllpOutMetrics {
            item: item.to_string(),
            open: self.mllp_out_open.with_label_values(l),
            opened: self.mllp_out_opened.with_label_values(l),
            errors: self.mllp_out_errors.clone(),
        }
    }

    /// Read `metrics` of `item`'s MLLP listener on every render.
    pub fn watch_listener(&self, item: &str, metrics: Arc<ListenerMetrics>) {
        let l = &[item];
        // make the series exist at 0 before the first connection
        self.mllp_open.with_label_values(l);
        for c in [
            &self.mllp_total,
            &self.mllp_rejected,
            &self.mllp_frames,
            &self.mllp_frame_errors,
            &self.mllp_timeouts,
            &self.mllp_tls_failures,
        ] {
            c.with_label_values(l);
        }
        let mut listeners = self.listeners.lock();
        // a reload that restarts the listener replaces the one watched before
        listeners.retain(|w| w.item != item);
        listeners.push(WatchedListener {
            item: item.to_string(),
            metrics,
            seen: ListenerStats::default(),
        });
    }

    /// A service without plugin or hooks passed a message straight to its
    /// targets (`ok`) or could not (`!ok`): counted as taken and finished.
    pub fn passed_on(&self, item: &str, ok: bool) {
        let l = &[item];
        self.messages_in.with_label_values(l).inc();
        if ok {
            self.messages_out.with_label_values(l).inc();
        } else {
            self.messages_failed.with_label_values(l).inc();
        }
    }

    /// Record one store group commit that took `d`.
    pub fn store_commit(&self, d: Duration) {
        self.store_commit.observe(d.as_secs_f64());
    }

    /// The registry, for collectors added by other parts of the host.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the Prometheus text format, gauges taken from `items` now.
    pub fn render(&self, items: &[ItemStatus]) -> String {
        for s in items {
            let l = &[s.name.as_str()];
            self.queue_depth.with_label_values(l).set(s.queue.depth as i64);
            self.in_flight.with_label_values(l).set(s.queue.in_flight as i64);
            let oldest = s.queue.oldest_age.map_or(0.0, |d| d.as_secs_f64());
            self.queue_oldest.with_label_values(l).set(oldest);
            for state in ItemState::ALL {
                let on = i64::from(s.state == state);
                self.item_state
                    .with_label_values(&[s.name.as_str(), state.as_str()])
                    .set(on);
            }
        }
        self.sync_listeners();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    fn sync_listeners(&self) {
        let mut listeners = self.listeners.lock();
        for w in listeners.iter_mut() {
            let now = w.metrics.snapshot();
            let l = &[w.item.as_str()];
            self.mllp_open
                .with_label_values(l)
                .set(now.connections_open as i64);
            let add = |c: &IntCounterVec, new: u64, old: u64| {
                c.with_label_values(l).inc_by(new.saturating_sub(old));
            };
            add(&self.mllp_total, now.connections_total, w.seen.connections_total);
            add(
                &self.mllp_rejected,
                now.connections_rejected,
                w.seen.connections_rejected,
            );
            add(&self.mllp_frames, now.frames_in, w.seen.frames_in);
            add(&self.mllp_frame_errors, now.frame_errors, w.seen.frame_errors);
            add(&self.mllp_timeouts, now.timeouts, w.seen.timeouts);
            add(
                &self.mllp_tls_failures,
                now.tls_handshake_failures,
                w.seen.tls_handshake_failures,
            );
            w.seen = now;
        }
    }
}

/// How one message ended at an item, for [`ItemMetrics::finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Passed on, delivered, replied, done, dropped or skipped.
    Out,
    /// Dead-lettered, rejected by a hook, or failed and suppressed.
    Failed,
}

impl ItemMetrics {
    /// A worker took `id`: counted, and its body logged at trace level only.
    pub fn taken(&self, id: MessageId, body: &[u8]) {
        self.messages_in.inc();
        tracing::trace!(item = %self.item, message_id = %id, body = %String::from_utf8_lossy(body), "message body");
    }

    /// One plugin (or adapter) call on `id` took `elapsed` and ended with `error`.
    pub fn called(&self, id: MessageId, elapsed: Duration, error: Option<&PluginError>) {
        self.processing.observe(elapsed.as_secs_f64());
        let limit = match error {
            None => {
                tracing::debug!(item = %self.item, message_id = %id, elapsed_us = elapsed.as_micros() as u64, "message processed");
                return;
            }
            Some(PluginError::Trap { .. }) => {
                self.traps.inc();
                return;
            }
            Some(PluginError::Deadline { .. }) => "deadline",
            Some(PluginError::OutOfFuel { .. }) => "fuel",
            Some(PluginError::MemoryLimit { .. }) => "memory",
            Some(PluginError::OutputTooLarge { .. }) => "output",
            Some(_) => return,
        };
        self.limit_hits
            .with_label_values(&[self.item.as_str(), limit])
            .inc();
    }

    /// A message left the item.
    pub fn finished(&self, how: Finish) {
        match how {
            Finish::Out => self.messages_out.inc(),
            Finish::Failed => self.messages_failed.inc(),
        }
    }

    /// The restart policy restarted a worker.
    pub fn restarted(&self) {
        self.restarts.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueStats;

    #[test]
    fn renders_item_counters_and_gauges_without_message_data() {
        let m = EngineMetrics::new();
        let item = m.item("to-lab");
        let id = uuid::Uuid::now_v7();
        item.taken(id, b"MSH|^~\\&|SECRET-PATIENT");
        item.called(id, Duration::from_millis(3), None);
        item.finished(Finish::Out);
        item.called(
            id,
            Duration::from_millis(1),
            Some(&PluginError::Deadline { deadline_ms: 5 }),
        );
        item.finished(Finish::Failed);
        let status = ItemStatus {
            name: "to-lab".into(),
            state: ItemState::Paused,
            queue: QueueStats {
                depth: 7,
                in_flight: 1,
                paused: true,
                oldest_age: Some(Duration::from_secs(2)),
            },
            restarts: 0,
            versions: Default::default(),
            workers: Vec::new(),
        };
        let text = m.render(&[status]);
        for line in [
            "hie_messages_in_total{item=\"to-lab\"} 1",
            "hie_messages_out_total{item=\"to-lab\"} 1",
            "hie_messages_failed_total{item=\"to-lab\"} 1",
            "hie_plugin_limit_hits_total{item=\"to-lab\",limit=\"deadline\"} 1",
            "hie_processing_seconds_count{item=\"to-lab\"} 2",
            "hie_queue_depth{item=\"to-lab\"} 7",
            "hie_queue_oldest_age_seconds{item=\"to-lab\"} 2",
            "hie_item_state{item=\"to-lab\",state=\"paused\"} 1",
            "hie_item_state{item=\"to-lab\",state=\"running\"} 0",
            "hie_plugin_limit_hits_total{item=\"to-lab\",limit=\"fuel\"} 0",
            "hie_plugin_limit_hits_total{item=\"to-lab\",limit=\"memory\"} 0",
            "hie_plugin_traps_total{item=\"to-lab\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("SECRET"));
    }

    #[test]
    fn listener_counters_follow_the_listener() {
        let m = EngineMetrics::new();
        let l = Arc::new(ListenerMetrics::default());
        m.watch_listener("in", Arc::clone(&l));
        l.frame_errors.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        l.connections_total
            .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        let _ = m.render(&[]);
        l.frame_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = m.render(&[]);
        assert!(
            text.contains("hie_mllp_frame_errors_total{item=\"in\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("hie_mllp_connections_total{item=\"in\"} 3"),
            "{text}"
        );
    }
}
