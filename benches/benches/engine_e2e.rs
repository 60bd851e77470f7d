//! End-to-end load bench of the `adt-demo` production (no persistence): the real
//! `hie run`, three `hie listen` sinks and `hie send`, all on this machine.
//! Prints one JSON line per scenario:
//!
//! - `throughput`: `hie send --generate N --connections 8 --window 32` against the
//!   inbound port (ADT^A01, each routed to two sinks): ACKs per second as `hie send`
//!   sees them, and delivered per second until every queue is empty again;
//! - `latency_at_rate`: a paced sender (8 connections, one frame in flight each)
//!   at `HIE_BENCH_RATE` msg/s (default 5000), ACK latency percentiles in µs;
//! - `execution_modes`: the router in `async`, `thread_pool` and `multi_process`;
//! - `commit_ack`: `commit` ACKs with the SQLite store and without it: ACKed and
//!   delivered msg/s for N messages (8 connections × window 32), then ACK latency
//!   paced at `HIE_BENCH_RATE`, and the store's bytes per message;
//!
//! Each scenario also reports the engine's resident set (KiB) at idle, its peak
//! under that load, and after.
//!
//! `cargo bench --workspace --bench engine_e2e` builds `hie` in release mode
//! (or set `HIE_BIN`) and the router and mapper plugins (or set `HIE_PLUGIN_PATH`).
//! `HIE_BENCH_MESSAGES` sets N (default 100000); `HIE_BENCH_SCENARIOS` (comma
//! separated) picks scenarios.
//!
//! A new scenario is a function from [`Bench`] to a JSON value, listed in `main`;
//! [`Bench::start_demo`] starts a fresh production (edited as the scenario needs).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hie_benches::engine::{Hie, Running};
use hie_benches::load;
use hie_benches::procs::{PeakRss, env_or, free_port, rss_kib};
use serde_json::{Value, json};

/// The paced sender's message `i` of connection `c`.
fn paced_adt(c: u64, i: u64) -> Vec<u8> {
    format!(
        "MSH|^~\\&|BENCH|HOSP|PAS|HOSP|20260101120000||ADT^A01^ADT_A01|L{c}-{i}|P|2.5\rEVN|A01|20260101120000\rPID|1||{i}^^^HOSP^MR||DOE^JANE||19800101|F\rPV1|1|I|WARD1\r"
    )
    .into_bytes()
}

/// Paced sending at `rate` msg/s over `connections` for `duration`; ACK latency histogram.
fn paced(port: u16, rate: u64, connections: u64, duration: Duration) -> (hdrhistogram::Histogram<u64>, u64) {
    let run = load::paced(port, rate, connections, duration, paced_adt);
    (run.latency_us, run.sent)
}

/// What every scenario shares: the binary and the plugin directory.
struct Bench {
    hie: Hie,
}

impl Bench {
    /// Start three sinks and the adt-demo, without persistence, with `edit`
    /// applied to its production file.
    fn start_demo(&self, edit: impl Fn(String) -> String) -> Running {
        let sinks = self.hie.start_sinks(3);
        let inbound = free_port();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../productions/adt-demo/production.toml");
        let mut toml = std::fs::read_to_string(demo)
            .unwrap()
            .replace("port = 2575", &format!("port = {inbound}"))
            .replace("port = 2576", &format!("port = {}", sinks[0].port))
            .replace("port = 2577", &format!("port = {}", sinks[1].port))
            .replace("port = 2578", &format!("port = {}", sinks[2].port));
        if !toml.contains("[store]") {
            toml = toml.replacen("[[items]]", "[store]\nbackend = \"none\"\n\n[[items]]", 1);
        }
        self.hie.start_production(&edit(toml), inbound, sinks)
    }
}

/// A progress line on stderr (stdout carries only the JSON lines).
fn progress(scenario: &str, what: &str) {
    eprintln!("[engine_e2e {scenario}] {what}");
}

fn line(scenario: &str, mut body: Value) {
    let obj = body.as_object_mut().unwrap();
    obj.insert("bench".into(), json!("engine_e2e"));
    obj.insert("scenario".into(), json!(scenario));
    obj.insert(
        "machine_cpus".into(),
        json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)),
    );
    println!("{}", serde_json::to_string(&body).unwrap());
}

/// `hie send` with 8 connections × window 32; ACK rate and delivery rate.
fn throughput(b: &Bench) -> Value {
    let messages: u64 = env_or("HIE_BENCH_MESSAGES", 100_000);
    let mut demo = b.start_demo(|t| t);
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(demo.pid());
    let peak = PeakRss::start(demo.pid());
    progress("throughput", &format!("sending {messages} messages"));
    let started = Instant::now();
    let out = Command::new(&b.hie.bin)
        .args([
            "send",
            &format!("127.0.0.1:{}", demo.inbound),
            "--generate",
            &messages.to_string(),
            "--connections",
            "8",
            "--window",
            "32",
            "--json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let acked = started.elapsed();
    progress(
        "throughput",
        &format!(
            "acked in {:.1} s; waiting for the queues to drain",
            acked.as_secs_f64()
        ),
    );
    let drained = demo.wait_drained(Duration::from_secs(300));
    let delivered_at = started.elapsed();
    progress("throughput", "stopping the sinks");
    let rss_peak = peak.finish();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&out.stdout) }));
    let rss_after = rss_kib(demo.pid());
    let delivered = demo.stop_sinks();
    json!({
        "production": "adt-demo",
        "persistence": false,
        "messages": messages,
        "connections": 8,
        "window": 32,
        "acked_s": acked.as_secs_f64(),
        "acked_msg_per_s": messages as f64 / acked.as_secs_f64(),
        "drained": drained,
        "delivered_s": delivered_at.as_secs_f64(),
        "delivered_to_sinks": delivered,
        "delivered_msg_per_s": messages as f64 / delivered_at.as_secs_f64(),
        "hie_send_report": report,
        "rss_kib": { "idle": rss_idle, "peak": rss_peak, "after": rss_after },
        "goal_msg_per_s": 20000,
    })
}

/// A paced sender at `HIE_BENCH_RATE` msg/s for 10 s; ACK latency.
fn latency_at_rate(b: &Bench) -> Value {
    let rate: u64 = env_or("HIE_BENCH_RATE", 5_000);
    let seconds: u64 = env_or("HIE_BENCH_SECONDS", 10);
    let mut demo = b.start_demo(|t| t);
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(demo.pid());
    let peak = PeakRss::start(demo.pid());
    progress("latency_at_rate", &format!("{rate} msg/s for {seconds} s"));
    let (hist, sent) = paced(demo.inbound, rate, 8, Duration::from_secs(seconds));
    let rss_peak = peak.finish();
    let drained = demo.wait_drained(Duration::from_secs(60));
    let delivered = demo.stop_sinks();
    json!({
        "production": "adt-demo",
        "persistence": false,
        "target_rate": rate,
        "connections": 8,
        "sent": sent,
        "achieved_rate": sent as f64 / seconds as f64,
        "drained": drained,
        "delivered_to_sinks": delivered,
        "p50_us": hist.value_at_quantile(0.50),
        "p90_us": hist.value_at_quantile(0.90),
        "p99_us": hist.value_at_quantile(0.99),
        "p999_us": hist.value_at_quantile(0.999),
        "max_us": hist.max(),
        "goal_p99_us": 5000,
        "rss_kib": { "idle": rss_idle, "peak": rss_peak },
    })
}

/// The router in each execution mode (`async`, `thread_pool` with 2 threads,
/// `multi_process` with 2 processes × 1 thread): `hie send` throughput
/// (`HIE_BENCH_MODE_MESSAGES`, default 20000; 8 connections × window 32) and
/// the ACK p99 of a paced sender at `HIE_BENCH_RATE` for 5 s, in one object.
fn execution_modes(b: &Bench) -> Value {
    let messages: u64 = env_or("HIE_BENCH_MODE_MESSAGES", 20_000);
    let rate: u64 = env_or("HIE_BENCH_RATE", 5_000);
    let modes = [
        ("async", r#"execution = { mode = "async" }"#),
        (
            "thread_pool",
            r#"execution = { mode = "thread_pool", threads = 2 }"#,
        ),
        (
            "multi_process",
            r#"execution = { mode = "multi_process", processes = 2, threads = 1 }"#,
        ),
    ];
    let mut results = serde_json::Map::new();
    for (mode, execution) in modes {
        progress(
            "execution_modes",
            &format!("{mode}: {messages} messages, then {rate} msg/s for 5 s"),
        );
        let mut demo =
            b.start_demo(|t| t.replace(r#"execution = { mode = "thread_pool", threads = 2 }"#, execution));
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let out = Command::new(&b.hie.bin)
            .args([
                "send",
                &format!("127.0.0.1:{}", demo.inbound),
                "--generate",
                &messages.to_string(),
                "--connections",
                "8",
                "--window",
                "32",
                "--json",
                "--quiet",
            ])
            .output()
            .unwrap();
        let acked = started.elapsed();
        let drained = demo.wait_drained(Duration::from_secs(300));
        let delivered_at = started.elapsed();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let (hist, sent) = paced(demo.inbound, rate, 8, Duration::from_secs(5));
        let delivered = demo.stop_sinks();
        results.insert(
            mode.into(),
            json!({
                "messages": messages,
                "acked_msg_per_s": messages as f64 / acked.as_secs_f64(),
                // until every copy reached its sink and every queue is empty
                "delivered_msg_per_s": messages as f64 / delivered_at.as_secs_f64(),
                "drained": drained,
                "delivered_to_sinks": delivered,
                "hie_send_report": report,
                "paced_rate": rate,
                "paced_sent": sent,
                "paced_p50_us": hist.value_at_quantile(0.50),
                "paced_p99_us": hist.value_at_quantile(0.99),
            }),
        );
    }
    json!({ "production": "adt-demo", "persistence": false, "router_modes": results })
}

/// adt-demo with `commit` ACKs (issue 8), run with the durable store and again with
/// `backend = "none"` for the ratio: `hie send` throughput (`HIE_BENCH_MESSAGES`,
/// 8 connections × window 32), the ACK p50/p99 of a paced sender at `HIE_BENCH_RATE`
/// for `HIE_BENCH_SECONDS`, and the store's bytes on disk per inbound message and per
/// KiB of inbound message (each ADT is stored once inbound and once per routed copy).
fn commit_ack(b: &Bench) -> Value {
    let messages: u64 = env_or("HIE_BENCH_MESSAGES", 100_000);
    let rate: u64 = env_or("HIE_BENCH_RATE", 5_000);
    let seconds: u64 = env_or("HIE_BENCH_SECONDS", 10);
    let sample = hie_mllp::tools::generate_adt_a01(1, "B");
    let message_bytes = sample.first().map_or(0, |m| m.payload.len()) as f64;
    let mut runs = serde_json::Map::new();
    for persistence in [true, false] {
        progress(
            "commit_ack",
            &format!("store {persistence}: {messages} messages, then {rate} msg/s for {seconds} s"),
        );
        let mut demo = b.start_demo(|t| {
            let t = t.replace(r#"ack_mode = "application""#, r#"ack_mode = "commit""#);
            if persistence {
                t.replace(r#"backend = "none""#, r#"backend = "sqlite""#)
            } else {
                t
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let out = Command::new(&b.hie.bin)
            .args([
                "send",
                &format!("127.0.0.1:{}", demo.inbound),
                "--generate",
                &messages.to_string(),
                "--connections",
                "8",
                "--window",
                "32",
                "--json",
                "--quiet",
            ])
            .output()
            .unwrap();
        let acked = started.elapsed();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let drained = demo.wait_drained(Duration::from_secs(300));
        let delivered_at = started.elapsed();
        let data = demo.dir().join("data");
        let size = |name: &str| std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
        let store_bytes = size("hie-store.sqlite") + size("hie-store.sqlite-wal");
        let (hist, sent) = paced(demo.inbound, rate, 8, Duration::from_secs(seconds));
        let delivered = demo.stop_sinks();
        let per_message = store_bytes as f64 / messages as f64;
        runs.insert(
            if persistence { "store" } else { "no_store" }.into(),
            json!({
                "messages": messages,
                "acked_msg_per_s": messages as f64 / acked.as_secs_f64(),
                // until every copy reached its sink and every queue is empty
                "delivered_msg_per_s": messages as f64 / delivered_at.as_secs_f64(),
                "drained": drained,
                "delivered_to_sinks": delivered,
                "hie_send_report": report,
                "paced_rate": rate,
                "paced_sent": sent,
                "ack_p50_us": hist.value_at_quantile(0.50),
                "ack_p99_us": hist.value_at_quantile(0.99),
                "store_bytes": store_bytes,
                "store_bytes_per_message": per_message,
                "store_bytes_per_kib_message": per_message * 1024.0 / message_bytes.max(1.0),
            }),
        );
    }
    json!({
        "production": "adt-demo",
        "ack_mode": "commit",
        "connections": 8,
        "message_bytes": message_bytes,
        "goal_msg_per_s": 10_000,
        "runs": runs,
    })
}

/// One end-to-end scenario: runs and returns its JSON line.
type Scenario = fn(&Bench) -> Value;

fn main() {
    // `cargo bench` passes --bench; nothing to filter on the command line
    let bench = Bench { hie: Hie::from_env() };
    let wanted = std::env::var("HIE_BENCH_SCENARIOS").unwrap_or_default();
    let scenarios: &[(&str, Scenario)] = &[
        ("throughput", throughput),
        ("latency_at_rate", latency_at_rate),
        ("execution_modes", execution_modes),
        ("commit_ack", commit_ack),
    ];
    for (name, run) in scenarios {
        if wanted.is_empty() || wanted.split(',').any(|w| w.trim() == *name) {
            line(name, run(&bench));
        }
    }
}
