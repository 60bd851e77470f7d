//! hie-wasm benchmarks: the cost of calling a plugin, of a fresh instance, of a start
//! with a warm compile cache, and of a cold compile.
//!
//! Criterion prints its usual report; then one JSON line per figure with our own
//! median (over batches) and the goal:
//! - `wasm/on_message_1kb`: warm `on-message` round trip, 1 KB in and out, one host
//!   import (`log`) per call. Goal: median ≤ 3 µs. Also without fuel metering, to
//!   show what engine-wide fuel costs.
//! - `wasm/fresh_instance`: what replacing a broken instance costs: new store and WASI
//!   context, instance from the pool, export lookup, `on-init`, and dropping it again
//!   (the pool slot's memory is reset). Goal ≤ 20 µs.
//! - `wasm/warm_start`: load of a plugin whose compiled code is in the cache. Goal ≤ 20 ms.
//! - `wasm/cold_compile`: compile of the test guest and of `plugins/standard/hl7-router`.
//!
//! Run with `RUST_BACKTRACE=0`: backtrace capture would be charged to traps. The
//! figures are wall-clock: on a machine busy with other work they say little. For a
//! profile of one path, `host/hie-wasm/examples/profile_calls.rs` runs it in a plain loop.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hie_core::{Envelope, NoHost, Plugin};
use hie_wasm::{Component, HostConfig, ItemContext, WasmHost, WasmPlugin};

const ROUND_TRIP_GOAL: Duration = Duration::from_micros(3);
const FRESH_INSTANCE_GOAL: Duration = Duration::from_micros(20);
const WARM_START_GOAL: Duration = Duration::from_millis(20);
const BODY_BYTES: usize = 1024;

fn host(fuel_metering: bool, cache_dir: Option<&Path>) -> WasmHost {
    WasmHost::new(HostConfig {
        fuel_metering,
        cache_dir: cache_dir.map(Path::to_owned),
        max_instances: 100,
        ..HostConfig::default()
    })
    .expect("host")
}

fn context() -> ItemContext {
    let mut ctx = ItemContext::new("bench", Arc::new(NoHost));
    ctx.settings.insert("mode".into(), "bench".into());
    ctx
}

/// `echo:` and padding to 1 KB: the guest replies with the whole message.
fn echo_message() -> Envelope {
    let mut body = b"echo:".to_vec();
    body.resize(BODY_BYTES, b'x');
    let mut msg = Envelope::hl7("mllp-in", body);
    msg.properties.insert("remote".into(), "10.0.0.1:5000".into());
    msg.properties.insert("control-id".into(), "MSG0001".into());
    msg
}

fn round_trip(plugin: &mut WasmPlugin, msg: &Envelope) {
    black_box(plugin.call(msg.clone()).expect("echo"));
}

fn fresh_instance(component: &Arc<Component>) -> WasmPlugin {
    component.instantiate(context()).expect("instantiate")
}

/// Median over `samples` batches of the mean time of `batch` runs of `f`.
fn median_per_iter(samples: usize, batch: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..batch {
                f();
            }
            started.elapsed() / batch
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report(figure: &str, extra: &str, median: Duration, goal: Option<Duration>) {
    let goal = goal.map_or(String::new(), |g| {
        format!(",\"goal_ns\":{},\"meets_goal\":{}", g.as_nanos(), median <= g)
    });
    println!(
        "{{\"bench\":\"wasm/{figure}\"{extra},\"median_ns\":{}{goal}}}",
        median.as_nanos()
    );
}

fn main() {
    let guest = hie_tests::build_plugin("wasm-guest");
    let cache = tempfile::tempdir().expect("cache dir");
    let metered = host(true, Some(cache.path()));
    let component = metered.load(&guest).expect("load");
    let unmetered = host(false, None).load(&guest).expect("load");
    let msg = echo_message();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    {
        let mut plugin = fresh_instance(&component);
        criterion.bench_function("wasm/on_message_1kb", |b| {
            b.iter(|| round_trip(&mut plugin, &msg))
        });
        criterion.bench_function("wasm/fresh_instance", |b| b.iter(|| fresh_instance(&component)));
        criterion.bench_function("wasm/fresh_instance_call_drop", |b| {
            b.iter(|| round_trip(&mut fresh_instance(&component), &msg))
        });
    }
    criterion.final_summary();

    let mut plugin = fresh_instance(&component);
    let median = median_per_iter(200, 2_000, || round_trip(&mut plugin, &msg));
    report(
        "on_message_1kb",
        ",\"fuel_metering\":true",
        median,
        Some(ROUND_TRIP_GOAL),
    );
    let mut plugin = fresh_instance(&unmetered);
    let median = median_per_iter(200, 2_000, || round_trip(&mut plugin, &msg));
    report(
        "on_message_1kb",
        ",\"fuel_metering\":false",
        median,
        Some(ROUND_TRIP_GOAL),
    );

    let median = median_per_iter(200, 200, || drop(black_box(fresh_instance(&component))));
    report(
        "fresh_instance",
        ",\"includes\":\"store+wasi+instantiate+on-init+drop\"",
        median,
        Some(FRESH_INSTANCE_GOAL),
    );
    let median = median_per_iter(200, 200, || round_trip(&mut fresh_instance(&component), &msg));
    report("fresh_instance_call_drop", "", median, None);

    // a new host per sample stands for a new process start; the cache is warm
    let median = median_per_iter(20, 1, || {
        let started = host(true, Some(cache.path()));
        let loaded = started.load(&guest).expect("load");
        assert!(loaded.stats().from_cache, "the cache must be warm");
    });
    report(
        "warm_start",
        ",\"plugin\":\"wasm-guest\",\"includes\":\"engine+load\"",
        median,
        None,
    );
    let median = median_per_iter(20, 1, || {
        let loaded = metered.load(&guest).expect("load");
        assert!(loaded.stats().from_cache, "the cache must be warm");
    });
    report(
        "warm_start",
        ",\"plugin\":\"wasm-guest\"",
        median,
        Some(WARM_START_GOAL),
    );

    let standard = hie_tests::repo_root().join("plugins/standard/hl7-router/Cargo.toml");
    let mut plugins = vec![("wasm-guest", guest.clone())];
    if standard.is_file() {
        plugins.push(("hl7-router", hie_tests::build_plugin("hl7-router")));
    }
    let compiler = host(true, None);
    for (name, path) in plugins {
        let median = median_per_iter(5, 1, || {
            let loaded = compiler.load(&path).expect("compile");
            assert!(!loaded.stats().from_cache);
        });
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        report(
            "cold_compile",
            &format!(",\"plugin\":\"{name}\",\"wasm_bytes\":{size}"),
            median,
            None,
        );
    }
}
