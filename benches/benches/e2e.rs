//! End-to-end suite (issue 11): the real `hie run` with a production written for each
//! scenario, driven over loopback by `hie send`'s engine, delivering to `hie listen`
//! sinks; and the same load through a Python asyncio pass-through (`benches/peer/`).
//! One JSON line per scenario on stdout, then `benches/REPORT.md` and its plot.
//!
//! ```sh
//! cargo bench -p hie-benches --bench e2e                 # full run
//! cargo bench -p hie-benches --bench e2e -- --quick      # < 2 minutes (or HIE_BENCH_QUICK=1)
//! cargo bench -p hie-benches --bench e2e -- --profile    # also perf-profile the hot path
//! ```
//!
//! Scenarios: a base (router, thread_pool, no store, 1 KB, 8 connections, window 1)
//! and one axis varied at a time: route (passthrough, router, router + mapper) each
//! with and without persistence (`commit` ACK after the SQLite commit); execution
//! (`async`, `thread_pool`, `multi_process`); size (1 KB, 64 KB, 1 MB); connections
//! (1, 8, 64); window (1, 32); a paced load at half of the peak measured; and the
//! Python peer at 1, 8 and 64 connections.
//!
//! Each line: `msgs_per_s` (messages over the time until every sink has them and the
//! engine is idle), the ACK rate, ACK p50/p99/max, engine CPU seconds per 1,000 messages
//! (`/proc/PID/stat` of the engine and its worker processes), peak RSS (`VmHWM` summed
//! over the same processes), store bytes per message.
//!
//! Environment: `HIE_BENCH_MESSAGES` (1 KB messages per scenario; 20,000, quick 2,000),
//! `HIE_BENCH_SECONDS` (paced run; 10, quick 3), `HIE_BENCH_SCENARIOS` (comma
//! separated names), `HIE_BENCH_NOTE` (a sentence for the report, e.g. that the machine
//! was shared), `HIE_BENCH_REPORT=0` (no REPORT.md), `HIE_BIN`, `HIE_PLUGIN_PATH`.

use std::path::Path;
use std::time::{Duration, Instant};

use hie_benches::engine::{Hie, Running};
use hie_benches::load::{self, adt_of_size};
use hie_benches::peer::Peer;
use hie_benches::procs::{env_or, tree_cpu_seconds, tree_hwm_kib};
use hie_benches::report::{self, thousands};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Passthrough,
    Router,
    RouterMapper,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Passthrough => "passthrough",
            Route::Router => "router",
            Route::RouterMapper => "router+mapper",
        }
    }

    /// Deliveries per inbound message (the router fans ADT out to two operations).
    fn fanout(self) -> u64 {
        match self {
            Route::Passthrough => 1,
            Route::Router | Route::RouterMapper => 2,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exec {
    Async,
    ThreadPool,
    MultiProcess,
}

impl Exec {
    fn name(self) -> &'static str {
        match self {
            Exec::Async => "async",
            Exec::ThreadPool => "thread_pool",
            Exec::MultiProcess => "multi_process",
        }
    }

    fn toml(self) -> &'static str {
        match self {
            Exec::Async => r#"{ mode = "async" }"#,
            Exec::ThreadPool => r#"{ mode = "thread_pool", threads = 2 }"#,
            Exec::MultiProcess => r#"{ mode = "multi_process", processes = 2, threads = 1 }"#,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    /// `hie send`'s engine, all out.
    Send,
    /// A paced sender at half of the peak of the same route and store, 32 connections.
    HalfPeak,
}

#[derive(Clone, Copy, Debug)]
enum System {
    Hie { route: Route, store: bool, exec: Exec },
    Peer,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    system: System,
    size: usize,
    connections: usize,
    window: usize,
    load: Load,
}

const KB: usize = 1024;
const MB: usize = 1024 * 1024;

/// The base and every axis varied from it (see the module docs).
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let hie = |name, route, store, exec, size, connections, window, load| Case {
        name,
        system: System::Hie { route, store, exec },
        size,
        connections,
        window,
        load,
    };
    use Exec::*;
    use Load::*;
    use Route::*;
    let peer = |name, connections| Case {
        name,
        system: System::Peer,
        size: KB,
        connections,
        window: 1,
        load: Send,
    };
    vec![
        //   name                      route         store  execution     size      conns window load
        hie("router",                 Router,       false, ThreadPool,   KB,       8,  1,  Send),
        hie("router_store",           Router,       true,  ThreadPool,   KB,       8,  1,  Send),
        hie("passthrough",            Passthrough,  false, ThreadPool,   KB,       8,  1,  Send),
        hie("passthrough_store",      Passthrough,  true,  ThreadPool,   KB,       8,  1,  Send),
        hie("router_mapper",          RouterMapper, false, ThreadPool,   KB,       8,  1,  Send),
        hie("router_mapper_store",    RouterMapper, true,  ThreadPool,   KB,       8,  1,  Send),
        hie("router_async",           Router,       false, Async,        KB,       8,  1,  Send),
        hie("router_multi_process",   Router,       false, MultiProcess, KB,       8,  1,  Send),
        hie("router_64k",             Router,       false, ThreadPool,   64 * KB,  8,  1,  Send),
        hie("router_1m",              Router,       false, ThreadPool,   MB,       8,  1,  Send),
        hie("router_c1",              Router,       false, ThreadPool,   KB,       1,  1,  Send),
        hie("router_c64",             Router,       false, ThreadPool,   KB,       64, 1,  Send),
        hie("router_store_c1",        Router,       true,  ThreadPool,   KB,       1,  1,  Send),
        hie("router_store_c64",       Router,       true,  ThreadPool,   KB,       64, 1,  Send),
        hie("router_w32",             Router,       false, ThreadPool,   KB,       8,  32, Send),
        hie("router_store_w32",       Router,       true,  ThreadPool,   KB,       8,  32, Send),
        hie("router_half_peak",       Router,       false, ThreadPool,   KB,       32, 1,  HalfPeak),
        hie("router_store_half_peak", Router,       true,  ThreadPool,   KB,       32, 1,  HalfPeak),
        peer("peer_c1", 1),
        peer("peer", 8),
        peer("peer_c64", 64),
    ]
}

/// The production of a case: `mllp-in` (commit ACK) → route → `mllp-out` to the sinks.
fn production(route: Route, store: bool, exec: Exec, inbound: u16, sinks: &[u16]) -> String {
    let process = |name: &str, plugin: &str, targets: &str, settings: &str| {
        format!(
            r#"
[[items]]
name = "{name}"
kind = "process"
plugin = "{plugin}"
targets = [{targets}]
pool_size = 2
execution = {exec}
queue = {{ kind = "fifo", capacity = 10000, overflow = "block" }}
limits = {{ memory = "128MiB", deadline = "10s" }}
{settings}
"#,
            exec = exec.toml()
        )
    };
    let mut toml = format!(
        r#"# written by the e2e bench (benches/benches/e2e.rs)
[production]
name = "bench-{route}"
data_dir = "data"
drain_timeout = "10s"

[store]
backend = "{backend}"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", host = "127.0.0.1", port = {inbound}, ack_mode = "commit", ack_timeout = "60s" }}
targets = ["route"]
"#,
        route = route.name().replace('+', "-"),
        backend = if store { "sqlite" } else { "none" },
    );
    toml += &match route {
        Route::Passthrough => process("route", "passthrough", r#""a""#, ""),
        Route::Router => process(
            "route",
            "hl7-router",
            "",
            "[items.settings]\n\"rule.1\" = \"MSH-9.1 = ADT -> a, b\"\n",
        ),
        Route::RouterMapper => {
            process(
                "route",
                "hl7-router",
                "",
                "[items.settings]\n\"rule.1\" = \"MSH-9.1 = ADT -> map, b\"\n",
            ) + &process(
                "map",
                "hl7-mapper",
                r#""a""#,
                "[items.settings]\n\"map.1\" = \"set MSH-5 = PAS\"\n",
            )
        }
    };
    for (name, port) in ["a", "b"].iter().zip(sinks) {
        toml += &format!(
            r#"
[[items]]
name = "{name}"
kind = "operation"
adapter = {{ type = "mllp-out", host = "127.0.0.1", port = {port}, ack_timeout = "60s", max_in_flight = 16 }}
retry = {{ max_attempts = 5, backoff = "200ms", max_backoff = "5s" }}
"#
        );
    }
    toml
}

struct Settings {
    quick: bool,
    /// 1 KB messages per all-out scenario.
    messages: usize,
    /// Seconds of a paced scenario.
    seconds: u64,
}

impl Settings {
    /// Messages of `size` bytes for one scenario: the same bytes as the 1 KB count,
    /// at least 20 (quick) or 100.
    fn messages_of(&self, size: usize) -> usize {
        let floor = if self.quick { 20 } else { 100 };
        (self.messages * KB / size).max(floor)
    }
}

fn progress(scenario: &str, what: &str) {
    eprintln!("[e2e {scenario}] {what}");
}

/// The fields every row has.
fn base_row(case: &Case, messages: usize) -> serde_json::Map<String, Value> {
    let mut row = serde_json::Map::new();
    row.insert("bench".into(), json!("e2e"));
    row.insert("scenario".into(), json!(case.name));
    match case.system {
        System::Hie { route, store, exec } => {
            row.insert("system".into(), json!("hie"));
            row.insert("production".into(), json!(route.name()));
            row.insert("persistence".into(), json!(store));
            row.insert("ack_mode".into(), json!("commit"));
            row.insert("execution".into(), json!(exec.name()));
        }
        System::Peer => {
            row.insert("system".into(), json!("python-hl7"));
            row.insert("production".into(), json!("passthrough+msh5"));
            row.insert("persistence".into(), json!(false));
            row.insert("ack_mode".into(), json!("after downstream ACK"));
            row.insert("execution".into(), json!("asyncio"));
        }
    }
    row.insert("message_bytes".into(), json!(case.size));
    row.insert("connections".into(), json!(case.connections));
    row.insert("window".into(), json!(case.window));
    row.insert("messages".into(), json!(messages));
    row.insert(
        "load".into(),
        json!(match case.load {
            Load::Send => "send",
            Load::HalfPeak => "paced",
        }),
    );
    row
}

/// The highest `msgs_per_s` measured so far for the same route and store, 1 KB.
fn peak_of(rows: &[Value], route: Route, store: bool) -> Option<f64> {
    rows.iter()
        .filter(|r| {
            r["system"] == "hie"
                && r["production"] == route.name()
                && r["persistence"] == store
                && r["message_bytes"] == KB
                && r["load"] == "send"
                && r["complete"] == true
        })
        .filter_map(|r| r["msgs_per_s"].as_f64())
        .reduce(f64::max)
}

fn paced_message(c: u64, i: u64) -> Vec<u8> {
    adt_of_size(1, &format!("P{c}-{i}-"), KB)
        .pop()
        .map(|m| m.payload.to_vec())
        .unwrap_or_default()
}

/// Run one HIE case against a fresh production.
fn run_hie(hie: &Hie, case: &Case, settings: &Settings, rows: &[Value]) -> Value {
    let System::Hie { route, store, exec } = case.system else {
        unreachable!("run_hie runs HIE cases")
    };
    let mut paced_rate = None;
    if case.load == Load::HalfPeak {
        match peak_of(rows, route, store) {
            Some(peak) => paced_rate = Some((peak / 2.0).max(1.0) as u64),
            None => {
                let mut row = base_row(case, 0);
                row.insert(
                    "skipped".into(),
                    json!("no complete all-out run of this route and store to take the peak from"),
                );
                return Value::Object(row);
            }
        }
    }
    let messages = if case.load == Load::Send {
        settings.messages_of(case.size)
    } else {
        0
    };
    let sinks = hie.start_sinks(route.fanout() as usize);
    let sink_ports: Vec<u16> = sinks.iter().map(|s| s.port).collect();
    let inbound = hie_benches::procs::free_port();
    let toml = production(route, store, exec, inbound, &sink_ports);
    let running: Running = hie.start_production(&toml, inbound, sinks);
    std::thread::sleep(Duration::from_millis(300));
    let pid = running.pid();
    let cpu_before = tree_cpu_seconds(pid);
    let mut row = base_row(case, messages);
    let started = Instant::now();
    let sent;
    match paced_rate {
        None => {
            let batch = adt_of_size(messages, "B", case.size);
            progress(
                case.name,
                &format!(
                    "{messages} messages of {} bytes, {} connections, window {}",
                    case.size, case.connections, case.window
                ),
            );
            let started = Instant::now();
            let report = load::send(inbound, batch, case.connections, case.window);
            let acked = started.elapsed().as_secs_f64();
            sent = messages as u64;
            row.insert("ack_msgs_per_s".into(), json!(messages as f64 / acked));
            row.insert("ack_p50_ms".into(), json!(report.latency.p50_ms));
            row.insert("ack_p99_ms".into(), json!(report.latency.p99_ms));
            row.insert("ack_max_ms".into(), json!(report.latency.max_ms));
            row.insert("ack_codes".into(), json!(report.ack_codes));
            row.insert("send_errors".into(), json!(report.errors));
            row.insert("all_accepted".into(), json!(report.all_accepted()));
        }
        Some(rate) => {
            let seconds = Duration::from_secs(settings.seconds);
            progress(
                case.name,
                &format!(
                    "{rate} msg/s (half of the peak) over {} connections for {} s",
                    case.connections, settings.seconds
                ),
            );
            let paced = load::paced(inbound, rate, case.connections as u64, seconds, paced_message);
            let h = &paced.latency_us;
            sent = paced.sent;
            row.insert("messages".into(), json!(paced.sent));
            row.insert("target_msgs_per_s".into(), json!(rate));
            row.insert(
                "ack_msgs_per_s".into(),
                json!(paced.sent as f64 / settings.seconds as f64),
            );
            row.insert(
                "ack_p50_ms".into(),
                json!(h.value_at_quantile(0.5) as f64 / 1000.0),
            );
            row.insert(
                "ack_p99_ms".into(),
                json!(h.value_at_quantile(0.99) as f64 / 1000.0),
            );
            row.insert("ack_max_ms".into(), json!(h.max() as f64 / 1000.0));
            row.insert("all_accepted".into(), json!(paced.not_aa == 0));
        }
    }
    let drained = running.wait_drained(Duration::from_secs(600));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = tree_cpu_seconds(pid) - cpu_before;
    let hwm = tree_hwm_kib(pid);
    let stopped = running.stop();
    let (store_bytes, delivered) = (stopped.store_bytes, stopped.delivered);
    let expected = sent * route.fanout();
    row.insert("msgs_per_s".into(), json!(sent as f64 / elapsed));
    row.insert("elapsed_s".into(), json!(elapsed));
    row.insert("drained".into(), json!(drained));
    row.insert("delivered_to_sinks".into(), json!(delivered));
    row.insert("expected_deliveries".into(), json!(expected));
    row.insert(
        "complete".into(),
        json!(drained && delivered == expected && row["all_accepted"] == true),
    );
    row.insert("cpu_s".into(), json!(cpu));
    row.insert(
        "cpu_s_per_1000_msgs".into(),
        json!(cpu * 1000.0 / sent.max(1) as f64),
    );
    row.insert("peak_rss_kib".into(), json!(hwm));
    row.insert("store_bytes".into(), json!(store_bytes));
    row.insert(
        "store_bytes_while_running".into(),
        json!(stopped.store_bytes_running),
    );
    row.insert(
        "store_bytes_per_msg".into(),
        json!(store_bytes as f64 / sent.max(1) as f64),
    );
    Value::Object(row)
}

/// Run one case of the Python peer in front of one sink.
fn run_peer(hie: &Hie, python: Result<&Path, String>, case: &Case, settings: &Settings) -> Value {
    let messages = settings.messages_of(case.size);
    let mut row = base_row(case, messages);
    let python = match python {
        Ok(p) => p,
        Err(why) => {
            progress(case.name, &format!("skipped: {why}"));
            row.insert("skipped".into(), json!(why));
            return Value::Object(row);
        }
    };
    let mut sinks = hie.start_sinks(1);
    let sink = sinks.pop().expect("one sink");
    let peer = Peer::start(python, sink.port);
    std::thread::sleep(Duration::from_millis(300));
    let pid = peer.pid();
    let cpu_before = tree_cpu_seconds(pid);
    let batch = adt_of_size(messages, "Y", case.size);
    progress(
        case.name,
        &format!(
            "python peer: {messages} messages, {} connections, window {}",
            case.connections, case.window
        ),
    );
    let started = Instant::now();
    let report = load::send(peer.port, batch, case.connections, case.window);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = tree_cpu_seconds(pid) - cpu_before;
    let hwm = tree_hwm_kib(pid);
    peer.stop();
    let delivered = sink.stop();
    row.insert("msgs_per_s".into(), json!(messages as f64 / elapsed));
    row.insert("ack_msgs_per_s".into(), json!(messages as f64 / elapsed));
    row.insert("elapsed_s".into(), json!(elapsed));
    row.insert("ack_p50_ms".into(), json!(report.latency.p50_ms));
    row.insert("ack_p99_ms".into(), json!(report.latency.p99_ms));
    row.insert("ack_max_ms".into(), json!(report.latency.max_ms));
    row.insert("ack_codes".into(), json!(report.ack_codes));
    row.insert("send_errors".into(), json!(report.errors));
    row.insert("all_accepted".into(), json!(report.all_accepted()));
    row.insert("delivered_to_sinks".into(), json!(delivered));
    row.insert("expected_deliveries".into(), json!(messages));
    row.insert(
        "complete".into(),
        json!(report.all_accepted() && delivered == messages as u64),
    );
    row.insert("cpu_s".into(), json!(cpu));
    row.insert(
        "cpu_s_per_1000_msgs".into(),
        json!(cpu * 1000.0 / messages as f64),
    );
    row.insert("peak_rss_kib".into(), json!(hwm));
    Value::Object(row)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick") || env_or("HIE_BENCH_QUICK", 0u8) == 1;
    let profile = args.iter().any(|a| a == "--profile") || env_or("HIE_BENCH_PROFILE", 0u8) == 1;
    let settings = Settings {
        quick,
        messages: env_or("HIE_BENCH_MESSAGES", if quick { 2_000 } else { 20_000 }),
        seconds: env_or("HIE_BENCH_SECONDS", if quick { 3 } else { 10 }),
    };
    let wanted = std::env::var("HIE_BENCH_SCENARIOS").unwrap_or_default();
    let selected: Vec<Case> = cases()
        .into_iter()
        .filter(|c| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == c.name))
        .collect();

    let began = Instant::now();
    let date = report::now_utc();
    let load_before = report::loadavg();
    let hie = Hie::from_env();
    let python = if selected.iter().any(|c| matches!(c.system, System::Peer)) {
        Some(Peer::python())
    } else {
        None
    };
    let mut rows: Vec<Value> = Vec::new();
    for case in &selected {
        let row = match case.system {
            System::Hie { .. } => run_hie(&hie, case, &settings, &rows),
            System::Peer => run_peer(
                &hie,
                python
                    .clone()
                    .expect("python looked up when a peer case is selected"),
                case,
                &settings,
            ),
        };
        println!("{}", serde_json::to_string(&row).expect("rows serialise"));
        rows.push(row);
    }
    let profile_section = profile.then(|| profile_hot_path(&hie, &settings));
    if env_or("HIE_BENCH_REPORT", 1u8) == 1 {
        let run = RunInfo {
            quick,
            date,
            load_before,
            load_after: report::loadavg(),
            seconds: began.elapsed().as_secs_f64(),
            messages: settings.messages,
            paced_seconds: settings.seconds,
        };
        write_report(&rows, &run, profile_section);
    }
}

/// What the report says about the run itself.
struct RunInfo {
    quick: bool,
    date: String,
    load_before: String,
    load_after: String,
    seconds: f64,
    messages: usize,
    paced_seconds: u64,
}

/// `perf record --call-graph dwarf` on the engine of the persisted router (8 connections,
/// window 32) while it takes a batch; the time per message by component, as Markdown.
fn profile_hot_path(hie: &Hie, settings: &Settings) -> String {
    let perf = "/usr/bin/perf";
    if !Path::new(perf).exists() {
        return format!("Not profiled: {perf} is missing (Debian: apt-get install linux-perf).\n");
    }
    let messages = settings.messages.max(10_000);
    let sinks = hie.start_sinks(2);
    let ports: Vec<u16> = sinks.iter().map(|s| s.port).collect();
    let inbound = hie_benches::procs::free_port();
    let toml = production(Route::Router, true, Exec::ThreadPool, inbound, &ports);
    let running = hie.start_production(&toml, inbound, sinks);
    std::thread::sleep(Duration::from_millis(300));
    let pid = running.pid();
    let data = tempfile::tempdir().expect("a directory for perf.data");
    let perf_data = data.path().join("perf.data");
    progress(
        "profile",
        &format!("perf record on pid {pid}, {messages} messages, 8 connections, window 32"),
    );
    let recorder = std::process::Command::new(perf)
        .args(["record", "-q", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
        .arg(&perf_data)
        .args(["-p", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn();
    let recorder = match recorder {
        Ok(r) => hie_benches::procs::Guard(r),
        Err(e) => return format!("Not profiled: cannot start {perf}: {e}\n"),
    };
    std::thread::sleep(Duration::from_millis(500));
    let cpu_before = tree_cpu_seconds(pid);
    let started = Instant::now();
    let report = load::send(inbound, adt_of_size(messages, "F", KB), 8, 32);
    let drained = running.wait_drained(Duration::from_secs(600));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = tree_cpu_seconds(pid) - cpu_before;
    // SIGINT makes perf write its file and exit
    let _ = std::process::Command::new("kill")
        .args(["-INT", &recorder.pid().to_string()])
        .status();
    let mut recorder = recorder;
    let _ = recorder.0.wait();
    running.stop();
    progress("profile", "perf report");
    let flat = perf_report(
        perf,
        &perf_data,
        &["--no-children", "--sort", "dso,sym", "--percent-limit", "0"],
    );
    let inclusive = perf_report(
        perf,
        &perf_data,
        &["--children", "--sort", "sym", "--percent-limit", "0.3"],
    );
    let (flat, inclusive) = match (flat, inclusive) {
        (Ok(f), Ok(i)) => (f, i),
        (Err(e), _) | (_, Err(e)) => return format!("Not profiled: {e}\n"),
    };
    let us_per_msg = cpu * 1e6 / messages as f64;
    let mut out = format!(
        "Profiled run: router with the SQLite store (`commit` ACK), thread_pool, {messages} 1 KB messages, \
         8 connections × window 32: {:.0} msg/s end to end, all ACKed AA: {}, drained: {drained}; \
         engine CPU {cpu:.2} s = **{us_per_msg:.0} µs of CPU per message** (engine only; the sender and \
         sinks are other processes).\n\n\
         Method: `perf record -F 499 --call-graph dwarf,16384 -p ENGINE_PID` over the batch (CPU-clock \
         samples of every engine thread), then `perf report --no-inline --children --sort sym` \
         (inclusive: a function with everything it calls) and `--no-children --sort dso,sym` (self). \
         µs per message = share of the engine's samples × its CPU per message.\n\n\
         **By component** (inclusive; rows overlap where one calls the other, e.g. the syscall rows \
         include the store's fsync and the MLLP writes):\n\n\
         | component | entry point (inclusive) | share | µs per message |\n|---|---|--:|--:|\n",
        messages as f64 / elapsed,
        report.all_accepted(),
    );
    // (label, symbols whose inclusive shares add up: they never call each other)
    let components: [(&str, &[&str]); 13] = [
        (
            "store writer thread (SQLite inserts, WAL, fsync)",
            &["hie_store::writer::Writer::run"],
        ),
        ("… of which fsync", &["[k] do_fsync"]),
        ("… of which WAL writes (pwrite)", &["__libc_pwrite"]),
        (
            "engine enqueueing for the store (callers' side)",
            &["hie_store::batch::WriteBatch::enqueue"],
        ),
        ("HL7 parse", &["hie_hl7::message::Message::parse"]),
        ("ACK building", &["hie_hl7::ack::build_ack"]),
        (
            "plugin call (hl7-router in wasmtime)",
            &["<hie_wasm::instance::WasmPlugin as hie_core::plugin::Plugin>::call"],
        ),
        (
            "routing a plugin's result to the next queues",
            &["hie_engine::worker::Worker::route"],
        ),
        (
            "queue push and pop (incl. waiting on the condvar)",
            &[
                "hie_engine::queue::ItemQueue::pop",
                "hie_engine::queue::ItemQueue::push_blocking",
                "hie_engine::queue::ItemQueue::try_push",
            ],
        ),
        (
            "mllp-out delivery to the sinks (blocking client: write a window, read its ACKs)",
            &[
                "MllpOut as hie_engine::plugin::OutboundAdapter>::call",
                "MllpOut as hie_engine::plugin::OutboundAdapter>::send_many",
            ],
        ),
        (
            "inbound MLLP tasks on tokio (read frames, store, ACK)",
            &["tokio::runtime::task::harness::Harness"],
        ),
        (
            "all system calls (kernel entry)",
            &["[k] entry_SYSCALL_64_after_hwframe"],
        ),
        ("context switches (kernel schedule)", &["[k] schedule"]),
    ];
    for (label, needles) in components {
        let share: f64 = needles
            .iter()
            .map(|n| {
                inclusive
                    .iter()
                    .filter(|(_, _, sym)| sym.contains(n))
                    .map(|r| r.0)
                    .fold(0.0, f64::max)
            })
            .sum();
        out += &format!(
            "| {label} | `{}` | {share:.1} % | {:.1} |\n",
            short(needles[0]).trim_start_matches("[k] "),
            share / 100.0 * us_per_msg
        );
    }
    out += "\n**By self time**, each sampled function grouped by what it belongs to:\n\n\
            | where | share | µs per message |\n|---|--:|--:|\n";
    let mut groups: Vec<(&str, f64)> = Vec::new();
    for (pct, dso, sym) in &flat {
        let g = classify(dso, sym);
        match groups.iter_mut().find(|(n, _)| *n == g) {
            Some(entry) => entry.1 += pct,
            None => groups.push((g, *pct)),
        }
    }
    let listed: f64 = groups.iter().map(|g| g.1).sum();
    groups.push(("not attributed (rounding)", (100.0 - listed).max(0.0)));
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (g, pct) in &groups {
        out += &format!("| {g} | {pct:.1} % | {:.1} |\n", pct / 100.0 * us_per_msg);
    }
    out += "\nTop 20 functions by self time:\n\n| self % | object | function |\n|--:|---|---|\n";
    for (pct, dso, sym) in flat.iter().take(20) {
        out += &format!("| {pct:.1} | {dso} | `{}` |\n", short(sym));
    }
    out
}

/// `perf report --stdio -g none` rows: (percent, dso, symbol).
fn perf_report(perf: &str, data: &Path, args: &[&str]) -> Result<Vec<(f64, String, String)>, String> {
    let out = std::process::Command::new(perf)
        .args(["report", "--stdio", "--no-inline", "-g", "none", "-i"])
        .arg(data)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {perf} report: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{perf} report failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        // "12.34%  dso  [.] symbol" or, with --children, "12.34%  1.00%  [.] symbol"
        let mut parts = line.split_whitespace();
        let Some(pct) = parts
            .next()
            .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok())
        else {
            continue;
        };
        let rest: Vec<&str> = parts.collect();
        let Some(kind) = rest.iter().position(|p| *p == "[.]" || *p == "[k]") else {
            continue;
        };
        let dso = if args.contains(&"dso,sym") {
            rest[..kind].join(" ")
        } else {
            String::new()
        };
        let sym = format!("{} {}", rest[kind], rest[kind + 1..].join(" "));
        rows.push((pct, dso, sym));
    }
    Ok(rows)
}

/// The component a sampled symbol belongs to.
fn classify(dso: &str, sym: &str) -> &'static str {
    let kernel = sym.starts_with("[k]");
    let has = |needles: &[&str]| needles.iter().any(|n| sym.contains(n) || dso.contains(n));
    if has(&["sqlite3", "rusqlite", "hie_store"]) {
        "store (SQLite, hie-store)"
    } else if has(&["hie_hl7"]) {
        "HL7 parse and ACK building (hie-hl7)"
    } else if has(&[
        "wasmtime",
        "cranelift",
        "hie_wasm",
        "wasm[",
        "jitted",
        "wit_",
        "component",
    ]) || (!kernel
        && (dso.contains("[unknown]") || dso.contains("memfd") || dso.contains(".cwasm")))
    {
        "plugin call (wasmtime, the router's wasm code)"
    } else if has(&[
        "futex",
        "crossbeam",
        "parking_lot",
        "Condvar",
        "Mutex",
        "semaphore",
        "notify",
        "hie_engine::queue",
    ]) {
        "queues, locks, wake-ups"
    } else if kernel
        && has(&[
            "tcp",
            "skb",
            "sock",
            "ip_",
            "net_",
            "loopback",
            "__dev_queue",
            "napi",
            "inet",
        ])
    {
        "kernel: loopback TCP"
    } else if kernel
        && has(&[
            "schedule",
            "switch",
            "pick_next",
            "enqueue",
            "dequeue",
            "update_",
            "ttwu",
            "wake",
        ])
    {
        "kernel: scheduling"
    } else if kernel
        && has(&[
            "fsync",
            "ext4",
            "jbd2",
            "blk",
            "nvme",
            "virtio",
            "iomap",
            "xfs",
            "page_cache",
            "filemap",
        ])
    {
        "kernel: file writes and fsync"
    } else if kernel {
        "kernel: other (syscall entry, memory, timers)"
    } else if has(&[
        "malloc", "free", "memcpy", "memmove", "memset", "realloc", "alloc::",
    ]) {
        "memory (malloc, copies)"
    } else if has(&["hie_mllp", "mio", "tokio::net", "tokio::io"]) {
        "MLLP framing and async sockets (hie-mllp, tokio)"
    } else if has(&["tokio"]) {
        "async runtime (tokio)"
    } else if has(&["hie_engine"]) {
        "engine routing and bookkeeping (hie-engine)"
    } else {
        "other"
    }
}

/// A symbol without its hash suffix, cut to 120 characters.
fn short(sym: &str) -> String {
    let s = sym.trim();
    let s = match s.rfind("::h") {
        Some(i) if s[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) => &s[..i],
        _ => s,
    };
    let s = s.replace('|', "\\|");
    if s.chars().count() > 120 {
        s.chars().take(117).collect::<String>() + "..."
    } else {
        s
    }
}

/// Goals of issue 11 and whether this run meets them.
fn goals(rows: &[Value]) -> String {
    let rate = |name: &str| report::row(rows, name).and_then(|r| r["msgs_per_s"].as_f64());
    let complete = |name: &str| report::row(rows, name).is_some_and(|r| r["complete"] == true);
    let mut t = String::from("| goal | measured | met |\n|---|---|---|\n");
    // 1. 30x the peer, router 8 connections window 1
    match (rate("router"), rate("peer")) {
        (Some(h), Some(p)) if p > 0.0 => {
            let ratio = h / p;
            t += &format!(
                "| HIE ≥ 30× the Python peer, router, 8 connections, window 1 | HIE {} msg/s ÷ peer {} msg/s = **{ratio:.1}×** | {} |\n",
                thousands(h),
                thousands(p),
                if ratio >= 30.0 && complete("router") && complete("peer") {
                    "yes"
                } else {
                    "**no**"
                }
            );
        }
        _ => {
            t += "| HIE ≥ 30× the Python peer | not measured in this run (router or peer missing or skipped) | – |\n"
        }
    }
    // 2. persisted router >= 10k
    let persisted: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| {
            r["production"] == "router"
                && r["persistence"] == true
                && r["load"] == "send"
                && r["complete"] == true
        })
        .filter_map(|r| Some((r["scenario"].as_str()?, r["msgs_per_s"].as_f64()?)))
        .collect();
    match persisted.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        Some((name, best)) => {
            t += &format!(
                "| persisted router ≥ 10,000 msg/s (2 cores) | best {} msg/s (`{name}`) | {} |\n",
                thousands(*best),
                if *best >= 10_000.0 { "yes" } else { "**no**" }
            );
        }
        None => t += "| persisted router ≥ 10,000 msg/s | not measured in this run | – |\n",
    }
    // 3. p99 <= 5 ms at half of peak
    for name in ["router_store_half_peak", "router_half_peak"] {
        if let Some(r) = report::row(rows, name).filter(|r| r.get("ack_p99_ms").is_some()) {
            let p99 = r["ack_p99_ms"].as_f64().unwrap_or(f64::MAX);
            t += &format!(
                "| ACK p99 ≤ 5 ms at half of peak (`{name}`) | p99 {p99:.2} ms at {} msg/s paced (achieved {}) | {} |\n",
                thousands(r["target_msgs_per_s"].as_f64().unwrap_or(0.0)),
                thousands(r["ack_msgs_per_s"].as_f64().unwrap_or(0.0)),
                if p99 <= 5.0 && r["complete"] == true {
                    "yes"
                } else {
                    "**no**"
                }
            );
        }
    }
    t
}

/// Write `benches/REPORT.md` and `benches/e2e-connections.png`.
fn write_report(rows: &[Value], run: &RunInfo, profile: Option<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join("REPORT.md");
    let png = dir.join("e2e-connections.png");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let machine = report::machine();
    let series = vec![
        report::connection_series(rows, "HIE router (no store)", "hie", "router", false),
        report::connection_series(rows, "HIE router + SQLite store", "hie", "router", true),
        report::connection_series(
            rows,
            "Python asyncio + hl7 (1 sink)",
            "python-hl7",
            "passthrough+msh5",
            false,
        ),
    ];
    let plot = if series.iter().any(|(_, p)| !p.is_empty()) {
        match report::plot(&series, &png) {
            Ok(()) => "![throughput and ACK p99 against connections](e2e-connections.png)\n".to_string(),
            Err(e) => format!("The plot was not drawn: {e}\n"),
        }
    } else {
        "No plot: the run had none of the connection scenarios.\n".to_string()
    };
    let skipped: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            Some(format!(
                "- `{}`: {}",
                r["scenario"].as_str()?,
                r.get("skipped")?.as_str()?
            ))
        })
        .collect();
    let measured: Vec<Value> = rows
        .iter()
        .filter(|r| r.get("skipped").is_none())
        .cloned()
        .collect();
    let profile = match profile {
        Some(p) => format!(
            "<!-- profile -->\nProfiled on {} as part of this run.\n\n{p}<!-- /profile -->",
            run.date
        ),
        None => match (old.find("<!-- profile -->"), old.find("<!-- /profile -->")) {
            (Some(a), Some(b)) if a < b => format!(
                "{}\n\n(Not re-profiled by this run: the section above is from the earlier run it names; \
                 `-- --profile` profiles again.)",
                &old[a..b + "<!-- /profile -->".len()]
            ),
            _ => "Not profiled yet: run the bench with `-- --profile`.".to_string(),
        },
    };
    let notes = report::kept_notes(&old).unwrap_or_else(|| {
        "(Findings written by hand go here; the bench keeps this block when it rewrites the report.)".into()
    });
    let note = std::env::var("HIE_BENCH_NOTE").unwrap_or_default();
    let text = format!(
        r#"# HIE end-to-end benchmark report

Written by `cargo bench -p hie-benches --bench e2e{quick_arg}` on {date} from that run's
measurements ({mode} mode, {secs:.0} s). Every figure below comes from that run; rerun the
command to regenerate this file and `e2e-connections.png`. Only the block between the
`notes` markers is written by hand.

## Machine

| | |
|---|---|
| CPUs (nproc) | {nproc} |
| CPU model | {cpu} |
| memory | {mem} GiB |
| kernel | {kernel} |
| HIE commit | {commit} |
| load average (1, 5, 15 min) before / after the run | {load_before} / {load_after} |

The sender (`hie send`'s engine, in the bench process), the engine or the peer, and the
`hie listen` sinks all run on this one machine and share its CPUs.{note}

## Commands

```sh
cargo bench -p hie-benches --bench e2e                  # full run: this report
cargo bench -p hie-benches --bench e2e -- --quick       # under 2 minutes, for CI smoke use
cargo bench -p hie-benches --bench e2e -- --profile     # adds the perf profile below
HIE_BENCH_SCENARIOS=router,peer cargo bench -p hie-benches --bench e2e   # some scenarios
```

## How it is measured

- Each HIE scenario starts a fresh `hie run` (release build) on a production written for it:
  `mllp-in` with `ack_mode = "commit"` → the route → `mllp-out` operations (`max_in_flight = 16`,
  as in `adt-demo`: up to 16 frames written before their ACKs are read) → `hie listen` sinks.
  *passthrough*: the `passthrough` plugin → 1 sink. *router*: `hl7-router`, ADT → 2 sinks.
  *router+mapper*: `hl7-router`, ADT → `hl7-mapper` (MSH-5 = PAS) → sink A, and → sink B.
  With the store (`backend = "sqlite"`) the ACK is sent once the message is committed
  (WAL, `synchronous=FULL`); without it (`backend = "none"`) once it is queued.
- The load is `hie send`'s engine (`hie_mllp::tools::send`): {messages} ADT^A01 messages of
  1 KB per scenario (the same number of bytes for 64 KB and 1 MB, at least {floor} messages),
  padded to size with an NTE segment, over N connections with W frames in flight on each.
- **msg/s** is messages ÷ the time from the first send until every sink holds every copy and
  every queue of the engine is empty (so an engine that ACKs before it delivers gains
  nothing). ACK latency p50/p99/max is from a frame's send to its ACK, as `hie send` sees it.
- **CPU s / 1,000 msgs**: user + system time of the engine process and its children
  (`/proc/PID/stat`, so the `multi_process` workers count) over the scenario. **Peak RSS**:
  `VmHWM` of the same processes, summed. **Store B / msg**: bytes of the data directory
  after the engine was stopped with SIGTERM (which checkpoints the WAL into the SQLite file)
  ÷ messages; each message is stored inbound and once per routed copy, with its hop marks.
  The JSON lines also give the bytes while the engine ran (`store_bytes_while_running`,
  WAL included).
- *half_peak* rows: a paced sender (32 connections, one frame in flight each) at half of
  the best msg/s of the same route and store measured earlier in the run, for
  {paced} s; latency counts from each message's scheduled time, so queueing counts.
- The **Python peer** (`benches/peer/hl7_passthrough.py`, asyncio and `hl7` 0.4.5 from PyPI,
  installed by the bench in a venv under the target directory): for each inbound connection
  one downstream connection; per message parse, set MSH-5, forward to one `hie listen` sink,
  wait for its ACK, then ACK back. Same load generator, same sink. Its ACK comes after the
  downstream ACK, HIE's after the commit (or queueing), which is why HIE's ACK latency
  is not comparable one to one; msg/s is (both count until delivery).

## Goals of issue 11

{goals}
## Results

{table}
{skipped}
## Throughput and ACK p99 against connections

{plot}
## Profile: where the time per message goes

{profile}

### Findings

<!-- notes -->
{notes}
<!-- /notes -->
"#,
        quick_arg = if run.quick { " -- --quick" } else { "" },
        date = run.date,
        mode = if run.quick { "quick" } else { "full" },
        secs = run.seconds,
        nproc = machine["nproc"],
        cpu = machine["cpu_model"].as_str().unwrap_or(""),
        mem = machine["memory_gib"],
        kernel = machine["kernel"].as_str().unwrap_or(""),
        commit = report::commit(dir),
        load_before = run.load_before,
        load_after = run.load_after,
        note = if note.is_empty() {
            String::new()
        } else {
            format!(" {note}")
        },
        messages = run.messages,
        floor = if run.quick { 20 } else { 100 },
        paced = run.paced_seconds,
        goals = goals(&measured),
        table = report::table(&measured),
        skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!("\nSkipped:\n\n{}\n", skipped.join("\n"))
        },
    );
    match std::fs::write(&path, text) {
        Ok(()) => eprintln!("[e2e] wrote {}", path.display()),
        Err(e) => eprintln!("[e2e] cannot write {}: {e}", path.display()),
    }
}
