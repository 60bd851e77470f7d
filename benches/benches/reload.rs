//! Hot reload bench, in process (engine + wasm host, no sockets). Prints JSON lines:
//!
//! - `cold_compile`: a reload to a component the compile cache has never seen
//!   (fresh cache directory): load (compile + world check) and trial (`on-init`) times;
//! - `reload_to_all_workers`: under a steady stream of messages, the time from
//!   the reload call to every worker of the item running the new version
//!   (warm compile cache), over `HIE_BENCH_RELOADS` reloads (default 20)
//!   alternating two versions: p50, p90, max, with the load and trial parts.
//!   Goal: ≤ 100 ms.
//!
//! `cargo bench --workspace --bench reload` builds the `reload-v1` and
//! `reload-v2` test plugins. `HIE_BENCH_WORKERS` sets the router's threads (default 2).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hie_core::Envelope;
use hie_engine::{Engine, WasmFactory};
use serde_json::json;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn production(dir: &Path, plugin: &Path, workers: usize) -> hie_config::Production {
    let text = format!(
        r#"
[production]
name = "reload-bench"

[[items]]
name = "router"
kind = "process"
plugin = "{}"
execution = {{ mode = "thread_pool", threads = {workers} }}
queue = {{ kind = "fifo", capacity = 100000, overflow = "block" }}
"#,
        plugin.display()
    );
    let file = dir.join("production.toml");
    std::fs::write(&file, text).unwrap();
    hie_config::load_and_resolve(&file, None).expect("bench production is valid")
}

fn on_new_version(engine: &Engine, hash: &str, workers: usize) -> bool {
    let status = engine.item_status("router").unwrap().versions;
    status.workers.len() == workers && status.workers.iter().all(|w| w.hash == hash)
}

fn main() {
    let reloads: usize = env_or("HIE_BENCH_RELOADS", 20);
    let workers: usize = env_or("HIE_BENCH_WORKERS", 2);
    let v1 = hie_tests::build_plugin("reload-v1");
    let v2 = hie_tests::build_plugin("reload-v2");
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = hie_wasm::HostConfig {
            cache_dir: Some(dir.path().join("cache")),
            ..hie_wasm::HostConfig::default()
        };
        let factory = WasmFactory::new(config).expect("wasm host");
        let prod = production(dir.path(), &v1, workers);
        factory.preload(&prod).expect("v1 loads");
        let engine = Arc::new(
            Engine::start(prod, Arc::new(factory))
                .await
                .expect("engine starts"),
        );

        // steady load: one message every 200 µs from a feeder thread
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = {
            let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
            std::thread::spawn(move || {
                let body = "MSH|^~\\&|B|H|R|H|20260101000000||ADT^A01|1|P|2.5\rPID|1||1\r";
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = engine.send("router", Envelope::hl7("bench", body.to_string()));
                    sent += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                sent
            })
        };

        let cold = engine
            .reload_plugin("router", Some(v2.clone()), None)
            .await
            .expect("cold reload");
        println!(
            "{}",
            json!({
                "bench": "reload",
                "scenario": "cold_compile",
                "load_ms": cold.load_ms,
                "trial_ms": cold.trial_ms,
            })
        );

        let mut total = Vec::new();
        let (mut load, mut trial) = (Vec::new(), Vec::new());
        for i in 0..reloads {
            let file = if i % 2 == 0 { &v1 } else { &v2 };
            let started = Instant::now();
            let report = engine
                .reload_plugin("router", Some(file.clone()), None)
                .await
                .expect("reload");
            let deadline = started + Duration::from_secs(10);
            while !on_new_version(&engine, &report.to, workers) {
                assert!(Instant::now() < deadline, "workers did not swap within 10 s");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            total.push(started.elapsed().as_secs_f64() * 1000.0);
            load.push(report.load_ms);
            trial.push(report.trial_ms);
        }
        stop.store(true, Ordering::Relaxed);
        let sent = feeder.join().unwrap();
        total.sort_by(f64::total_cmp);
        load.sort_by(f64::total_cmp);
        trial.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({
                "bench": "reload",
                "scenario": "reload_to_all_workers",
                "reloads": reloads,
                "workers": workers,
                "messages_during": sent,
                "total_ms_p50": percentile(&total, 0.5),
                "total_ms_p90": percentile(&total, 0.9),
                "total_ms_max": percentile(&total, 1.0),
                "load_ms_p50": percentile(&load, 0.5),
                "trial_ms_p50": percentile(&trial, 0.5),
                "goal_ms": 100,
            })
        );
        engine.stop(Duration::from_secs(10)).await;
    });
}
