//! `send` against `listen` in-process, as `hie send` and `hie listen` use them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hie_hl7::ack::AckCode;
use hie_mllp::client::{Backoff, ClientConfig};
use hie_mllp::server::ListenerConfig;
use hie_mllp::tools::{
    ListenOptions, ListenSession, Outgoing, SendOptions, SendProgress, generate_adt_a01, send,
};

async fn sink(ack_code: AckCode, out_dir: Option<std::path::PathBuf>) -> ListenSession {
    ListenSession::start(ListenOptions {
        addr: loopback(),
        ack_code,
        out_dir,
        listener: ListenerConfig::default(),
    })
    .await
    .expect("listen")
}

fn options(addr: String, connections: usize, window: usize) -> SendOptions {
    SendOptions {
        client: ClientConfig {
            ack_timeout: Duration::from_secs(5),
            backoff: Backoff {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
            connect_attempts: 2,
            ..ClientConfig::new(addr)
        },
        connections,
        window,
    }
}

#[tokio::test]
async fn pipelined_send_gets_every_ack_with_its_control_id() {
    let session = sink(AckCode::AA, None).await;
    let progress = Arc::new(SendProgress::default());
    let messages = generate_adt_a01(2000, "PIPE");
    let opts = options(session.local_addr().to_string(), 4, 16);
    let report = send(messages, &opts, Arc::clone(&progress)).await;
    assert_eq!(report.messages, 2000);
    assert_eq!(report.sent, 2000);
    assert_eq!(report.ack_codes.get("AA"), Some(&2000));
    assert_eq!(report.control_id_mismatches, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.all_accepted());
    let latency = report.latency;
    assert!(
        latency.max_ms >= latency.p99_ms && latency.p99_ms >= latency.p50_ms,
        "{latency:?}"
    );
    // A loopback round trip through two tokio tasks takes more than the 2 µs that a
    // histogram clamped to its initial range reports.
    assert!(latency.p50_ms > 0.005, "{latency:?}");
    assert_eq!(progress.done.load(std::sync::atomic::Ordering::Relaxed), 2000);
    let listened = session.stop().await.expect("stop");
    assert_eq!(listened.sink.messages, 2000);
    assert_eq!(listened.sink.acked, 2000);
    assert_eq!(listened.listener.connections_total, 4);
}

#[tokio::test]
async fn strict_request_ack_with_window_one() {
    let session = sink(AckCode::AA, None).await;
    let opts = options(session.local_addr().to_string(), 1, 1);
    let report = send(generate_adt_a01(50, "W1"), &opts, Arc::default()).await;
    assert!(report.all_accepted(), "{}", report.to_text());
    session.stop().await.expect("stop");
}

#[tokio::test]
async fn listen_answers_the_configured_code_and_writes_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = sink(AckCode::AE, Some(dir.path().to_owned())).await;
    let mut messages = generate_adt_a01(3, "FILE");
    messages.push(Outgoing::new(b"not hl7 at all".to_vec()));
    let opts = options(session.local_addr().to_string(), 1, 4);
    let report = send(messages, &opts, Arc::default()).await;
    assert_eq!(report.ack_codes.get("AE"), Some(&3));
    assert_eq!(report.ack_codes.get("AR"), Some(&1));
    assert!(report.all_acked() && !report.all_accepted());
    let listened = session.stop().await.expect("stop");
    assert_eq!(
        (listened.sink.acked, listened.sink.rejected, listened.sink.written),
        (3, 1, 4)
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "000000001_FILE00000000.hl7",
            "000000002_FILE00000001.hl7",
            "000000003_FILE00000002.hl7",
            "000000004_unparseable.hl7"
        ]
    );
    let first = std::fs::read(dir.path().join(&names[0])).expect("read");
    assert!(first.starts_with(b"MSH|^~\\&|HIESEND"));
}

#[tokio::test]
async fn sending_to_nothing_counts_every_message_as_refused() {
    let probe = tokio::net::TcpListener::bind(loopback()).await.expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let report = send(
        generate_adt_a01(10, "NONE"),
        &options(addr.to_string(), 2, 4),
        Arc::default(),
    )
    .await;
    assert_eq!(report.sent, 0);
    assert_eq!(report.errors.get("connection_refused"), Some(&10));
    assert_eq!(report.without_ack(), 10);
    assert!(!report.all_acked());
}

#[tokio::test]
async fn a_receiver_that_never_acks_counts_timeouts() {
    struct Silent;
    impl hie_mllp::server::FrameHandler for Silent {
        fn handle(
            &self,
            _frame: bytes::Bytes,
            _peer: hie_mllp::server::PeerInfo,
        ) -> hie_mllp::server::HandlerFuture<'_> {
            Box::pin(std::future::pending())
        }
    }
    let server = start(ListenerConfig::default(), Arc::new(Silent)).await;
    let mut opts = options(server.addr.to_string(), 1, 4);
    opts.client.ack_timeout = Duration::from_millis(100);
    opts.client.connect_attempts = 1;
    let report = send(generate_adt_a01(4, "SILENT"), &opts, Arc::default()).await;
    assert_eq!(report.acked(), 0);
    assert_eq!(report.without_ack(), 4, "{}", report.to_text());
    assert!(report.errors.contains_key("timeout"), "{:?}", report.errors);
    server.shutdown.cancel();
}

#[tokio::test]
async fn report_serializes_to_one_json_object() {
    let session = sink(AckCode::AA, None).await;
    let report = send(
        generate_adt_a01(5, "J"),
        &options(session.local_addr().to_string(), 1, 2),
        Arc::default(),
    )
    .await;
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["ack_codes"]["AA"], 5);
    assert!(json["latency"]["p99_ms"].is_number());
    let listened = session.stop().await.expect("stop");
    let json = serde_json::to_value(&listened).expect("json");
    assert_eq!(json["sink"]["messages"], 5);
}
