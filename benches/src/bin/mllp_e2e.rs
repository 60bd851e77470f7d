//! End-to-end MLLP load: `send` → `listen` over loopback, in one process, one JSON line
//! per scenario on stdout.
//!
//! `cargo run --release -p hie-benches --bin mllp_e2e`; `HIE_BENCH_MESSAGES` scales the
//! pipelined scenario (default 200000; the window-1 scenarios send a tenth of it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hie_hl7::ack::AckCode;
use hie_mllp::client::ClientConfig;
use hie_mllp::server::ListenerConfig;
use hie_mllp::tools::{ListenOptions, ListenSession, SendOptions, generate_adt_a01, send};

struct Scenario {
    name: &'static str,
    connections: usize,
    window: usize,
    messages: usize,
}

fn main() {
    // A filter argument selects scenarios by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let pipelined: usize = std::env::var("HIE_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let scenarios = [
        Scenario {
            name: "mllp_c8_w32",
            connections: 8,
            window: 32,
            messages: pipelined,
        },
        Scenario {
            name: "mllp_c1_w1",
            connections: 1,
            window: 1,
            messages: pipelined / 10,
        },
        Scenario {
            name: "mllp_c8_w1",
            connections: 8,
            window: 1,
            messages: pipelined / 10,
        },
    ];
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    for scenario in &scenarios {
        if filter.as_deref().is_some_and(|f| !scenario.name.contains(f)) {
            continue;
        }
        let line = runtime.block_on(run(scenario));
        println!("{line}");
    }
}

async fn run(scenario: &Scenario) -> serde_json::Value {
    let session = ListenSession::start(ListenOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ack_code: AckCode::AA,
        out_dir: None,
        listener: ListenerConfig::default(),
    })
    .await
    .expect("listen on loopback");
    let opts = SendOptions {
        client: ClientConfig {
            ack_timeout: Duration::from_secs(30),
            ..ClientConfig::new(session.local_addr().to_string())
        },
        connections: scenario.connections,
        window: scenario.window,
    };
    let messages = generate_adt_a01(scenario.messages, "BENCH");
    let report = send(messages, &opts, Arc::default()).await;
    let listened = session.stop().await.expect("stop listening");
    serde_json::json!({
        "bench": "mllp_e2e",
        "scenario": scenario.name,
        "connections": scenario.connections,
        "window": scenario.window,
        "messages": report.messages,
        "acked": report.acked(),
        "all_aa": report.all_accepted(),
        "errors": report.errors,
        "received": listened.sink.messages,
        "elapsed_s": report.elapsed_s,
        "msgs_per_sec": report.msgs_per_sec.round(),
        "p50_ms": report.latency.p50_ms,
        "p99_ms": report.latency.p99_ms,
        "max_ms": report.latency.max_ms,
    })
}
