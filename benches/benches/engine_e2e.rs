//! End-to-end load bench of the `adt-demo` production (no persistence): the real
//! `hie run`, three `hie listen` sinks and `hie send`, all on this machine.
//! Prints one JSON object:
//!
//! - `throughput`: `hie send --generate N --connections 8 --window 32` against the
//!   inbound port (ADT^A01, each routed to two sinks), with its report;
//! - `latency_at_rate`: a paced sender (8 connections, one frame in flight each)
//!   at `HIE_BENCH_RATE` msg/s (default 5000), ACK latency percentiles in µs;
//! - `rss_kib`: the engine's resident set at idle, the peak under load, and after.
//!
//! `cargo bench -p hie-benches --bench engine_e2e` builds `hie` in release mode
//! (or set `HIE_BIN`) and the router and mapper plugins (or set `HIE_PLUGIN_PATH`).
//! `HIE_BENCH_MESSAGES` sets N (default 100000).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Kills the child when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hie_bin() -> PathBuf {
    match std::env::var("HIE_BIN") {
        Ok(bin) => PathBuf::from(bin),
        Err(_) => hie_tests::hie_binary().to_path_buf(),
    }
}

fn plugin_path() -> PathBuf {
    if let Ok(p) = std::env::var("HIE_PLUGIN_PATH") {
        return PathBuf::from(p);
    }
    let router = hie_tests::build_plugin("hl7-router");
    hie_tests::build_plugin("hl7-mapper");
    router.parent().unwrap().to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Guard {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Guard(cmd.spawn().unwrap())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One MLLP request/reply on an open stream.
fn call(stream: &mut TcpStream, payload: &[u8], buf: &mut Vec<u8>) {
    let mut frame = Vec::with_capacity(payload.len() + 3);
    frame.push(0x0b);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    stream.write_all(&frame).unwrap();
    buf.clear();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(&[0x1c, 0x0d]) {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Paced sending at `rate` msg/s over `connections` for `duration`; ACK latency histogram.
fn paced(port: u16, rate: u64, connections: u64, duration: Duration) -> (Histogram<u64>, u64) {
    let per_conn_interval = Duration::from_nanos(1_000_000_000 * connections / rate);
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || {
                let mut h = Histogram::<u64>::new(3).unwrap();
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::new();
                let start = Instant::now();
                let mut next = start;
                let mut i = 0u64;
                while start.elapsed() < duration {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                    }
                    let msg = format!(
                        "MSH|^~\\&|BENCH|HOSP|PAS|HOSP|20260101120000||ADT^A01^ADT_A01|L{c}-{i}|P|2.5\rEVN|A01|20260101120000\rPID|1||{i}^^^HOSP^MR||DOE^JANE||19800101|F\rPV1|1|I|WARD1\r"
                    );
                    // latency from the scheduled send time, so queueing behind a slow reply counts
                    let sent_at = next.max(now);
                    call(&mut s, msg.as_bytes(), &mut buf);
                    h.record(sent_at.elapsed().as_micros() as u64).unwrap();
                    next += per_conn_interval;
                    i += 1;
                }
                (h, i)
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3).unwrap();
    let mut sent = 0;
    for h in handles {
        let (hist, n) = h.join().unwrap();
        total.add(hist).unwrap();
        sent += n;
    }
    (total, sent)
}

fn main() {
    // `cargo bench` passes --bench; nothing to filter here
    let bin = hie_bin();
    let plugins = plugin_path();
    let messages: u64 = env_or("HIE_BENCH_MESSAGES", 100_000);
    let rate: u64 = env_or("HIE_BENCH_RATE", 5_000);

    let sinks: Vec<(u16, Guard)> = (0..3)
        .map(|_| {
            let port = free_port();
            let g = spawn(&bin, &["listen", &port.to_string(), "--every", "0s"], &[]);
            (port, g)
        })
        .collect();
    for (p, _) in &sinks {
        wait_for_port(*p);
    }
    let inbound = free_port();
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../productions/adt-demo/production.toml");
    let toml = std::fs::read_to_string(demo)
        .unwrap()
        .replace("port = 2575", &format!("port = {inbound}"))
        .replace("port = 2576", &format!("port = {}", sinks[0].0))
        .replace("port = 2577", &format!("port = {}", sinks[1].0))
        .replace("port = 2578", &format!("port = {}", sinks[2].0));
    std::fs::write(dir.path().join("production.toml"), toml).unwrap();
    let engine = spawn(
        &bin,
        &["run", dir.path().to_str().unwrap()],
        &[("HIE_PLUGIN_PATH", &plugins)],
    );
    wait_for_port(inbound);
    let pid = engine.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(pid);

    // peak RSS sampler
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while stop_rx.recv_timeout(Duration::from_millis(100)).is_err() {
            peak = peak.max(rss_kib(pid));
        }
        peak
    });

    let started = Instant::now();
    let out = Command::new(&bin)
        .args([
            "send",
            &format!("127.0.0.1:{inbound}"),
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
    let wall = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&out.stdout) }));

    let (hist, sent) = paced(inbound, rate, 8, Duration::from_secs(10));
    let _ = stop_tx.send(());
    let rss_peak = sampler.join().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss_kib(pid);

    let result = json!({
        "bench": "engine_e2e",
        "production": "adt-demo",
        "persistence": false,
        "machine_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "throughput": {
            "messages": messages,
            "connections": 8,
            "window": 32,
            "wall_s": wall.as_secs_f64(),
            "msg_per_s_wall": messages as f64 / wall.as_secs_f64(),
            "hie_send_report": report,
            "goal_msg_per_s": 20000,
        },
        "latency_at_rate": {
            "target_rate": rate,
            "sent": sent,
            "achieved_rate": sent as f64 / 10.0,
            "p50_us": hist.value_at_quantile(0.50),
            "p90_us": hist.value_at_quantile(0.90),
            "p99_us": hist.value_at_quantile(0.99),
            "p999_us": hist.value_at_quantile(0.999),
            "max_us": hist.max(),
            "goal_p99_us": 5000,
        },
        "rss_kib": { "idle": rss_idle, "peak_under_load": rss_peak, "after_load": rss_after },
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    drop(engine);
    drop(sinks);
}
