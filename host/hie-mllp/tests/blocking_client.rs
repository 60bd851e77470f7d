//! The blocking client (what the engine's operation workers use on plain TCP)
//! against real listeners: replies, connection reuse, typed errors, backoff,
//! reconnects, the ACK timeout. Each call runs on a blocking-pool thread, the
//! listener on the runtime.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hie_mllp::ErrorKind;
use hie_mllp::blocking::BlockingClient;
use hie_mllp::client::{Backoff, ClientConfig};
use hie_mllp::server::{FrameHandler, HandlerFuture, ListenerConfig, PeerInfo};
use hie_mllp::tls::ClientTls;

fn client(config: ClientConfig) -> BlockingClient {
    BlockingClient::new(config).expect("plain tcp")
}

/// Run `f` on a blocking-pool thread (the client blocks) and return its result.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_returns_the_ack_and_reuses_the_connection() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let config = client_config(server.addr);
    blocking(move || {
        let mut client = client(config);
        for i in 0..10 {
            let reply = client.call(&adt(&format!("R{i}"))).expect("reply");
            let ack = hie_hl7::ack::parse_ack(&reply).expect("ack");
            assert_eq!(ack.control_id, Some(format!("R{i}")));
        }
    })
    .await;
    assert_eq!(server.metrics.snapshot().connections_total, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_typed_error_with_advice() {
    let addr = free_port().await;
    let err = blocking(move || {
        client(client_config(addr))
            .call(&adt("X"))
            .expect_err("nothing listens")
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("check that the receiver"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    let (err, took) = blocking(move || {
        let started = std::time::Instant::now();
        let err = client(config).call(&adt("B")).expect_err("refused");
        (err, started.elapsed())
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    // 40 + 80 + 160 ms between the four attempts, at least.
    assert!(took >= Duration::from_millis(280), "{took:?}");
}

/// A listener that closes idle connections after 50 ms, and a client whose one
/// connection to it (opened by a call) the listener has closed that way.
async fn client_closed_while_idle() -> (Running, BlockingClient) {
    let cfg = ListenerConfig {
        idle_timeout: Some(Duration::from_millis(50)),
        ..ListenerConfig::default()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let config = client_config(server.addr);
    let c = blocking(move || {
        let mut c = client(config);
        c.call(&adt("I0")).expect("reply");
        c
    })
    .await;
    eventually("the listener to close the idle connection", || {
        server.metrics.connections_open.load(Ordering::Relaxed) == 0
    })
    .await;
    (server, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_closed_while_idle_is_reopened_transparently() {
    let (server, mut c) = client_closed_while_idle().await;
    let reply = blocking(move || c.call(&adt("I2")).expect("reply on a new connection")).await;
    assert_eq!(acked_id(&reply).as_deref(), Some("I2"));
    assert_eq!(server.metrics.snapshot().connections_total, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_after_the_listener_restarts() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let addr = server.addr;
    let config = ClientConfig {
        connect_attempts: 3,
        ..client_config(addr)
    };
    let mut c = blocking(move || {
        let mut c = client(config);
        c.call(&adt("A1")).expect("first reply");
        c
    })
    .await;
    server.stop().await;
    let (err, mut c) = blocking(move || {
        let err = c.call(&adt("A2")).expect_err("listener is gone");
        (err, c)
    })
    .await;
    assert!(
        matches!(err.kind(), ErrorKind::ResetByPeer | ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(!c.is_connected());
    let again = start_at(addr, ListenerConfig::default(), Arc::new(AckHandler)).await;
    let reply = blocking(move || c.call(&adt("A3")).expect("reply after reconnect")).await;
    assert_eq!(acked_id(&reply).as_deref(), Some("A3"));
    again.stop().await;
}

/// Never answers.
struct Silent;

impl FrameHandler for Silent {
    fn handle(&self, _frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ack_is_a_timeout_and_drops_the_connection() {
    let server = start(ListenerConfig::default(), Arc::new(Silent)).await;
    let config = ClientConfig {
        ack_timeout: Duration::from_millis(100),
        ..client_config(server.addr)
    };
    let (err, connected, took) = blocking(move || {
        let mut c = client(config);
        let started = std::time::Instant::now();
        let err = c.call(&adt("T1")).expect_err("no ack");
        (err, c.is_connected(), started.elapsed())
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().starts_with("no ack within 100 ms"), "{err}");
    assert!(!connected);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    server.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_before_sending() {
    let server = start(ListenerConfig::default(), Arc::new(AckHandler)).await;
    let mut config = client_config(server.addr);
    config.codec.max_frame_len = 64;
    let err = blocking(move || client(config).call(&[b'x'; 65]).expect_err("too large")).await;
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
    assert_eq!(server.metrics.snapshot().connections_total, 0);
    server.stop().await;
}

#[test]
fn tls_is_left_to_the_async_client() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let mut config = ClientConfig::new("127.0.0.1:1");
    config.tls = Some(ClientTls::from_ca_pem(cert.cert.pem().as_bytes(), "localhost").expect("client tls"));
    assert!(BlockingClient::new(config).is_none());
}

/// A peer that drips a reply a byte at a time and never ends it cannot hold the
/// call past the ACK timeout (each read gets only what is left of it); the next
/// call, on a new connection, gets its whole reply.
#[test]
fn a_dripping_reply_times_out() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let (mut first, _) = listener.accept().expect("accept");
        let _ = first.read(&mut buf).expect("request");
        // a byte every 50 ms, for at most 10 s or until the client hangs up
        let _ = first.write_all(b"\x0bMSH|");
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(50));
            if first.write_all(b"x").is_err() {
                break;
            }
        }
        let (mut second, _) = listener.accept().expect("accept");
        let _ = second.read(&mut buf).expect("request");
        second
            .write_all(b"\x0bMSH|^~\\&|R|F|S|F|20260101||ACK|C2|P|2.5\rMSA|AA|C2\r\x1c\x0d")
            .expect("write");
    });
    let mut c = client(ClientConfig {
        ack_timeout: Duration::from_millis(300),
        ..client_config(addr)
    });
    let started = std::time::Instant::now();
    let err = c.call(&adt("C1")).expect_err("the reply never ends");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // not held for the 10 s the peer keeps dripping
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!c.is_connected());
    let reply = c.call(&adt("C2")).expect("reply on a new connection");
    assert_eq!(acked_id(&reply).as_deref(), Some("C2"));
    server.join().expect("server");
}

/// A raw peer on a std listener: reads frames until it has `wait_for` of them,
/// then answers the first `answer` (in order) and goes silent.
fn batch_peer(wait_for: usize, answer: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let frames = |data: &[u8]| data.iter().filter(|b| **b == 0x1c).count();
        while frames(&data) < wait_for {
            let n = conn.read(&mut buf).expect("read");
            assert!(n > 0, "the client closed before sending every frame");
            data.extend_from_slice(&buf[..n]);
        }
        let mut replies = Vec::new();
        for frame in data.split(|b| *b == 0x1c).take(answer) {
            let frame = frame.strip_prefix(b"\r").unwrap_or(frame);
            let frame = frame.strip_prefix(b"\x0b").expect("a frame starts with VT");
            replies.extend_from_slice(b"\x0b");
            replies.extend_from_slice(&ack_for(frame));
            replies.extend_from_slice(b"\x1c\x0d");
        }
        conn.write_all(&replies).expect("write");
        // silent until the client hangs up
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
    });
    (addr, peer)
}

/// `call_many` writes every frame before it reads a reply: this peer answers
/// nothing until it holds all 40 (a client that waited for each ACK would time
/// out), and the replies come back matched to their frames, in order.
#[test]
fn call_many_sends_the_whole_batch_then_reads_the_replies_in_order() {
    let (addr, peer) = batch_peer(40, 40);
    let mut c = client(ClientConfig {
        ack_timeout: Duration::from_secs(10),
        ..client_config(addr)
    });
    let frames: Vec<Vec<u8>> = (0..40).map(|i| adt(&format!("P{i}"))).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let replies = c.call_many(&refs);
    assert_eq!(replies.len(), 40);
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert_eq!(acked_id(&reply), Some(format!("P{i}")));
    }
    assert_eq!(c.connections_opened(), 1);
    drop(c);
    peer.join().expect("peer");
}

/// When one reply of a batch does not come, that frame times out, every later
/// frame is abandoned (the connection is closed, so no late reply can be taken
/// for another frame's), and the answered ones keep their replies.
#[test]
fn a_missing_reply_abandons_the_rest_of_the_batch() {
    let (addr, peer) = batch_peer(5, 2);
    let mut c = client(ClientConfig {
        ack_timeout: Duration::from_millis(200),
        ..client_config(addr)
    });
    let frames: Vec<Vec<u8>> = (0..5).map(|i| adt(&format!("M{i}"))).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let replies = c.call_many(&refs);
    let kinds: Vec<Option<ErrorKind>> = replies
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            None,
            Some(ErrorKind::Timeout),
            Some(ErrorKind::Abandoned),
            Some(ErrorKind::Abandoned)
        ]
    );
    assert_eq!(acked_id(replies[1].as_ref().expect("reply")), Some("M1".into()));
    let abandoned = replies[3].as_ref().expect_err("abandoned").to_string();
    assert!(
        abandoned.contains("earlier frame") && abandoned.contains("no ack within 200 ms"),
        "{abandoned}"
    );
    assert!(!c.is_connected());
    peer.join().expect("peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_many_reopens_a_connection_closed_while_idle() {
    let (server, mut c) = client_closed_while_idle().await;
    let ids = blocking(move || {
        let frames: Vec<Vec<u8>> = (1..4).map(|i| adt(&format!("I{i}"))).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        c.call_many(&refs)
            .into_iter()
            .map(|r| acked_id(&r.expect("reply on a new connection")))
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(ids, [Some("I1".into()), Some("I2".into()), Some("I3".into())]);
    assert_eq!(server.metrics.snapshot().connections_total, 2);
    server.stop().await;
}
