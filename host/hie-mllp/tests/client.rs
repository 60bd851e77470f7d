//! The client against real listeners: reconnect, ACK timeout, typed errors, TLS, policy.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hie_mllp::ErrorKind;
use hie_mllp::client::{Backoff, ClientConfig, MllpClient};
use hie_mllp::policy::{FinalAction, ReplyCodeActions, ReplyOutcome};
use hie_mllp::server::{FrameHandler, HandlerFuture, ListenerConfig, PeerInfo};
use hie_mllp::tls::{ClientTls, ServerTls};

#[tokio::test]
async fn call_returns_the_ack_and_reuses_the_connection() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let mut client = MllpClient::new(client_config(server.addr));
    for i in 0..10 {
        let reply = client.call(&adt(&format!("R{i}"))).await.expect("reply");
        let ack = hie_hl7::ack::parse_ack(&reply).expect("ack");
        assert_eq!(ack.control_id, Some(format!("R{i}")));
    }
    assert_eq!(server.metrics.snapshot().connections_total, 1);
    server.stop().await;
}

#[tokio::test]
async fn refused_connection_is_a_typed_error_with_advice() {
    let addr = free_port().await;
    let mut client = MllpClient::new(client_config(addr));
    let err = client.call(&adt("X")).await.expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("check that the receiver"),
        "{text}"
    );
}

#[tokio::test]
async fn failed_attempts_are_spaced_by_exponential_backoff() {
    let addr = free_port().await;
    let config = ClientConfig {
        connect_attempts: 4,
        backoff: Backoff {
            initial: Duration::from_millis(40),
            max: Duration::from_secs(1),
        },
        ..client_config(addr)
    };
    let mut client = MllpClient::new(config);
    let started = std::time::Instant::now();
    let err = client.connect().await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    // 40 + 80 + 160 ms between the four attempts, at least.
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_reconnects_after_the_listener_restarts() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let addr = server.addr;
    let mut client = MllpClient::new(ClientConfig {
        connect_attempts: 3,
        ..client_config(addr)
    });
    client.call(&adt("A1")).await.expect("first reply");
    server.stop().await;
    let err = client.call(&adt("A2")).await.expect_err("listener is gone");
    assert!(
        matches!(err.kind(), ErrorKind::ResetByPeer | ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(!client.is_connected());
    let again = start_at(addr, ListenerConfig::default(), Arc::new(AckHandler)).await;
    let reply = client.call(&adt("A3")).await.expect("reply after reconnect");
    assert_eq!(acked_id(&reply).as_deref(), Some("A3"));
    again.stop().await;
}

#[tokio::test]
async fn connection_closed_while_idle_is_reopened_transparently() {
    let cfg = ListenerConfig {
        idle_timeout: Some(Duration::from_millis(50)),
        ..ListenerConfig::default()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let mut client = MllpClient::new(client_config(server.addr));
    client.call(&adt("I1")).await.expect("reply");
    eventually("the listener to close the idle connection", || {
        server.metrics.connections_open.load(Ordering::Relaxed) == 0
    })
    .await;
    let reply = client.call(&adt("I2")).await.expect("reply on a new connection");
    assert_eq!(acked_id(&reply).as_deref(), Some("I2"));
    assert_eq!(server.metrics.snapshot().connections_total, 2);
    server.stop().await;
}

/// Never answers.
struct Silent;

impl FrameHandler for Silent {
    fn handle(&self, _frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn missing_ack_is_a_timeout_and_drops_the_connection() {
    let server = start(ListenerConfig::default(), Arc::new(Silent)).await;
    let config = ClientConfig {
        ack_timeout: Duration::from_millis(100),
        ..client_config(server.addr)
    };
    let mut client = MllpClient::new(config);
    let err = client.call(&adt("T1")).await.expect_err("no ack");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().starts_with("no ack within 100 ms"), "{err}");
    assert!(!client.is_connected());
    let verdict = ReplyCodeActions::default().evaluate(&ReplyOutcome::NoReply(&err));
    assert!(verdict.action.retry);
    server.shutdown.cancel();
}

#[tokio::test]
async fn policy_reads_real_acks() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let mut client = MllpClient::new(client_config(server.addr));
    let policy = ReplyCodeActions::parse(hie_mllp::policy::IRIS_DEFAULT).expect("iris default");
    let reply = client.call(&adt("P1")).await.expect("ack");
    let verdict = policy.evaluate_reply(&reply, Some("P1"));
    assert!(
        verdict.action.is_done() && verdict.warnings.is_empty(),
        "{verdict:?}"
    );
    let verdict = policy.evaluate_reply(&reply, Some("OTHER"));
    assert_eq!(verdict.warnings, vec!["id-mismatch".to_owned()]);
    let nak = client.call(b"garbage").await.expect("nak");
    let verdict = policy.evaluate_reply(&nak, None);
    assert!(verdict.action.retry);
    assert_eq!(verdict.action.then, FinalAction::Fail);
    server.stop().await;
}

fn self_signed() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// A TLS listener with `cert`/`key`, and a client trusting `ca` for `localhost`.
async fn tls_pair(ca: &str, cert: &str, key: &str) -> (Running, MllpClient) {
    let cfg = ListenerConfig {
        tls: Some(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).expect("server tls")),
        ..ListenerConfig::default()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let tls = ClientTls::from_ca_pem(ca.as_bytes(), "localhost").expect("client tls");
    let client = MllpClient::new(ClientConfig {
        tls: Some(tls),
        ..client_config(server.addr)
    });
    (server, client)
}

#[tokio::test]
async fn tls_in_both_directions() {
    let (cert, key) = self_signed();
    let (server, mut client) = tls_pair(&cert, &cert, &key).await;
    let reply = client.call(&adt("TLS1")).await.expect("ack over tls");
    assert_eq!(acked_id(&reply).as_deref(), Some("TLS1"));

    // A plain-text sender is refused by the handshake and counted.
    let mut plain = MllpClient::new(ClientConfig {
        ack_timeout: Duration::from_secs(2),
        ..client_config(server.addr)
    });
    assert!(plain.call(&adt("PLAIN")).await.is_err());
    eventually("the failed handshake to be counted", || {
        server.metrics.tls_handshake_failures.load(Ordering::Relaxed) == 1
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn tls_errors_are_typed() {
    let (cert, _) = self_signed();
    let (other_cert, other_key) = self_signed();
    // Trusting a different CA: the handshake fails.
    let (server, mut client) = tls_pair(&cert, &other_cert, &other_key).await;
    let err = client.call(&adt("X")).await.expect_err("untrusted");
    assert_eq!(err.kind(), ErrorKind::TlsHandshake);
    // Bad PEM data is a configuration error.
    let err = ServerTls::from_pem(b"nope", b"nope").expect_err("bad pem");
    assert_eq!(err.kind(), ErrorKind::TlsConfig);
    let err = ClientTls::from_ca_file(std::path::Path::new("/nonexistent/ca.pem"), "localhost")
        .expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    server.stop().await;
}
