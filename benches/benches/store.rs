//! hie-store benchmarks: durable ingest throughput with group commit (8 and 64
//! submitting threads) and without (1 thread), commit latency p50/p99, bytes on disk per 1 KB
//! message, and search by control id / PID-3 over a big store.
//!
//! Criterion prints its usual report; JSON lines with our own numbers follow. Knobs:
//! `HIE_STORE_BENCH_MESSAGES` (size of the search store, default 200000),
//! `HIE_STORE_BENCH_INGEST` (messages per ingest run, default 20000),
//! `HIE_STORE_BENCH_DIR` (where stores are created; default the system temp dir —
//! point it at the disk you mean to measure: fsync cost is the whole story).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use hie_core::Envelope;
use hie_store::{Indexed, MessageStore, SearchQuery, SqliteStore, Status, StoreConfig, WriteBatch};

/// Goal: search by control id or PID-3 over 1,000,000 messages within 100 ms.
const SEARCH_GOAL_US: u64 = 100_000;
const BODY_BYTES: usize = 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("HIE_STORE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// A 1 KB HL7-looking message with control id `n` and one of `patients` patients.
fn message(n: u64, patients: u64) -> (Envelope, Indexed) {
    let ctrl = format!("MSG{n:010}");
    let pid = format!("PAT{:08}", n % patients.max(1));
    let mut body = format!("MSH|^~\\&|LAB|HOSP|HIE|HIE|20260101120000||ORU^R01|{ctrl}|P|2.5\rPID|1||{pid}^^^HOSP||DOE^JOHN\rOBX|1|TX|||")
        .into_bytes();
    body.resize(BODY_BYTES - 1, b'x');
    body.push(b'\r');
    let idx = Indexed {
        control_id: Some(ctrl),
        message_type: Some("ORU^R01".to_owned()),
        sending_app: Some("LAB".to_owned()),
        sending_facility: Some("HOSP".to_owned()),
        patient_id: Some(pid),
    };
    (Envelope::hl7("mllp-in", body), idx)
}

struct IngestRun {
    threads: usize,
    messages: u64,
    seconds: f64,
    latency: Histogram<u64>,
    transactions: u64,
    bytes_per_message: f64,
}

/// Ingest `total` messages from `threads` threads, one `ingest` call (one durable
/// commit) per message, recording each call's latency.
fn ingest_run(threads: usize, total: usize) -> IngestRun {
    let dir = bench_dir();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let per_thread = total / threads;
    let start = Instant::now();
    let histograms: Vec<Histogram<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    let mut h = Histogram::<u64>::new(3).unwrap();
                    for i in 0..per_thread {
                        let (msg, idx) = message((t * per_thread + i) as u64, 10_000);
                        let began = Instant::now();
                        store.ingest(&msg, &idx, "in").unwrap();
                        h.record(began.elapsed().as_micros() as u64).unwrap();
                    }
                    h
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for h in &histograms {
        latency.add(h).unwrap();
    }
    let messages = (per_thread * threads) as u64;
    store.reclaim_space().unwrap();
    IngestRun {
        threads,
        messages,
        seconds,
        latency,
        transactions: store.stats().transactions,
        bytes_per_message: store.disk_usage() as f64 / messages as f64,
    }
}

/// CPU seconds (user + system) of this process's thread named `name` so far.
fn thread_cpu_seconds(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains(&format!("({name})")))
        .map(|stat| {
            let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick
        })
        .sum()
}

/// The writes the engine makes for one message through a router that fans it out to
/// two operations (as `adt-demo` with the store): a durable de-duplicated ingest the
/// sender waits for, then detached hop marks and the two routed copies. `threads`
/// senders, one message each in flight. Gives msg/s and the writer thread's CPU per
/// message, the figure that bounds persisted throughput.
fn route_run(threads: usize, total: usize) -> (f64, f64, u64) {
    let dir = bench_dir();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let per_thread = total / threads;
    let cpu_before = thread_cpu_seconds("hie-store-write");
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let (msg, idx) = message((t * per_thread + i) as u64, 10_000);
                    let mut intake = WriteBatch::new();
                    intake.ingest_dedup(&msg, &idx, "route", Some(bytes::Bytes::from_static(b"ACK")));
                    store.submit(intake).wait().unwrap();
                    let mark = |id, item: &str, status| {
                        let mut b = WriteBatch::new();
                        b.mark(id, item, status, 1, None, None);
                        drop(store.submit(b));
                    };
                    mark(msg.id, "route", Status::InFlight);
                    let children: Vec<(Envelope, &str)> = ["a", "b"]
                        .into_iter()
                        .map(|to| {
                            let mut c = Envelope::hl7("route", msg.body.clone());
                            c.parent_id = Some(msg.id);
                            c.session_id = msg.session_id;
                            (c, to)
                        })
                        .collect();
                    let mut done = WriteBatch::new();
                    for (c, to) in &children {
                        done.enqueue_copy(c, &idx, to, &msg);
                    }
                    done.mark(msg.id, "route", Status::Done, 1, None, None);
                    drop(store.submit(done));
                    for (c, to) in &children {
                        mark(c.id, to, Status::InFlight);
                        mark(c.id, to, Status::Done);
                    }
                }
            });
        }
    });
    store.flush().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let messages = (per_thread * threads) as f64;
    let cpu_us = (thread_cpu_seconds("hie-store-write") - cpu_before) * 1e6 / messages;
    (messages / seconds, cpu_us, store.stats().transactions)
}

/// A store with `n` messages, written in large batches (bulk load, not the measured path).
fn build_search_store(n: usize) -> (tempfile::TempDir, SqliteStore, f64) {
    let dir = bench_dir();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let start = Instant::now();
    let patients = (n as u64 / 5).max(1);
    for chunk in (0..n).step_by(2_000) {
        let mut batch = WriteBatch::new();
        for i in chunk..(chunk + 2_000).min(n) {
            let (msg, idx) = message(i as u64, patients);
            batch.ingest(&msg, &idx, "in");
        }
        store.write(batch).unwrap();
    }
    (dir, store, start.elapsed().as_secs_f64())
}

/// Latencies of `queries` searches, spread over the whole store.
fn search_latency(store: &SqliteStore, n: usize, queries: usize, by_patient: bool) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap();
    let patients = (n as u64 / 5).max(1);
    for q in 0..queries as u64 {
        let target = (q * 7_919_993) % n as u64;
        let (_, idx) = message(target, patients);
        let query = if by_patient {
            SearchQuery {
                patient_id: idx.patient_id,
                ..Default::default()
            }
        } else {
            SearchQuery {
                control_id: idx.control_id,
                ..Default::default()
            }
        };
        let began = Instant::now();
        let found = store.search(&query).unwrap();
        h.record(began.elapsed().as_micros() as u64).unwrap();
        assert!(!found.is_empty(), "search for message {target} found nothing");
    }
    h
}

fn criterion_benches(c: &mut Criterion, search_store: &SqliteStore, n: usize) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let dir = bench_dir();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let mut seq = 1_000_000_000u64;
    group.bench_function("ingest_1kb_1_thread", |b| {
        b.iter(|| {
            seq += 1;
            let (msg, idx) = message(seq, 1_000);
            store.ingest(&msg, &idx, "in").unwrap()
        })
    });
    group.bench_function("ingest_1kb_8_threads", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(8);
            let base = seq;
            seq += per_thread * 8;
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..8 {
                    let store = store.clone();
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let (msg, idx) = message(base + t * per_thread + i, 1_000);
                            store.ingest(&msg, &idx, "in").unwrap();
                        }
                    });
                }
            });
            start.elapsed().mul_f64(iters as f64 / (per_thread * 8) as f64)
        })
    });
    let mut q = 0u64;
    group.bench_function(format!("search_control_id_{n}"), |b| {
        b.iter(|| {
            q = (q + 7_919_993) % n as u64;
            let (_, idx) = message(q, 1);
            black_box(
                search_store
                    .search(&SearchQuery {
                        control_id: idx.control_id,
                        ..Default::default()
                    })
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn main() {
    let n = env_usize("HIE_STORE_BENCH_MESSAGES", 200_000);
    let ingest_total = env_usize("HIE_STORE_BENCH_INGEST", 20_000);
    for threads in [64, 8] {
        let total = ingest_total * 2;
        let (rate, writer_us, transactions) = route_run(threads, total);
        println!(
            "{{\"bench\":\"store/route_1kb\",\"threads\":{threads},\"messages\":{total},\"msgs_per_sec\":{rate:.0},\"writer_cpu_us_per_msg\":{writer_us:.1},\"transactions\":{transactions}}}"
        );
    }
    if std::env::var("HIE_STORE_BENCH_ONLY").as_deref() == Ok("route") {
        return;
    }
    let (_search_dir, search_store, build_seconds) = build_search_store(n);

    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &search_store, n);
    criterion.final_summary();

    for threads in [64, 8, 1] {
        // a single thread pays one fsync per message; keep its run short
        let total = if threads == 1 {
            ingest_total / 4
        } else {
            ingest_total
        };
        let run = ingest_run(threads, total);
        println!(
            "{{\"bench\":\"store/ingest_1kb\",\"threads\":{},\"messages\":{},\"msgs_per_sec\":{:.0},\"commit_p50_us\":{},\"commit_p99_us\":{},\"transactions\":{},\"msgs_per_fsync\":{:.1},\"disk_bytes_per_msg\":{:.0}}}",
            run.threads,
            run.messages,
            run.messages as f64 / run.seconds,
            run.latency.value_at_quantile(0.5),
            run.latency.value_at_quantile(0.99),
            run.transactions,
            run.messages as f64 / run.transactions.max(1) as f64,
            run.bytes_per_message,
        );
    }
    search_store.reclaim_space().unwrap();
    println!(
        "{{\"bench\":\"store/bulk_load\",\"messages\":{n},\"seconds\":{build_seconds:.1},\"disk_bytes_per_msg\":{:.0}}}",
        search_store.disk_usage() as f64 / n as f64
    );
    for (name, by_patient) in [
        ("store/search_control_id", false),
        ("store/search_patient_id", true),
    ] {
        let h = search_latency(&search_store, n, 2_000, by_patient);
        println!(
            "{{\"bench\":\"{name}\",\"messages\":{n},\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"goal_us\":{SEARCH_GOAL_US},\"meets_goal\":{}}}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
            h.value_at_quantile(0.99) <= SEARCH_GOAL_US
        );
    }
}
