//! The listener on real sockets: bad frames, limits, timeouts, order, shutdown, TLS.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hie_hl7::ack::AckCode;
use hie_mllp::codec::CodecConfig;
use hie_mllp::server::{FrameHandler, HandlerFuture, HandlerReply, ListenerConfig, PeerInfo};
use tokio::sync::Semaphore;

fn config() -> ListenerConfig {
    ListenerConfig::default()
}

#[tokio::test]
async fn unparseable_frames_get_ar_and_the_connection_goes_on() {
    let server = start(config(), Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.send(b"this is not hl7").await;
    let nak = peer.read_ack().await;
    assert_eq!(nak.code, AckCode::AR);
    assert!(nak.text.as_deref().unwrap_or_default().contains("MSH"), "{nak:?}");
    peer.send(&adt("OK1")).await;
    let ack = peer.read_ack().await;
    assert_eq!((ack.code, ack.control_id.as_deref()), (AckCode::AA, Some("OK1")));
    server.stop().await;
}

#[tokio::test]
async fn zero_length_frame_gets_ar_and_the_connection_goes_on() {
    let server = start(config(), Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(b"\x0b\x1c\x0d").await;
    let nak = peer.read_ack().await;
    assert_eq!(nak.code, AckCode::AR);
    assert_eq!(nak.text.as_deref(), Some("empty frame"));
    peer.send(&adt("OK2")).await;
    assert_eq!(peer.read_ack().await.code, AckCode::AA);
    assert_eq!(server.metrics.snapshot().frame_errors, 1);
    server.stop().await;
}

#[tokio::test]
async fn oversize_frame_gets_ar_and_is_closed_without_waiting_for_its_end() {
    let cfg = ListenerConfig {
        codec: CodecConfig {
            max_frame_len: 1024,
            ..CodecConfig::default()
        },
        ..config()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    let mut big = vec![0x0b];
    big.extend(std::iter::repeat_n(b'A', 4096));
    // No end block: the listener must not wait for one.
    peer.write(&big).await;
    let nak = peer.read_ack().await;
    assert_eq!(nak.code, AckCode::AR);
    assert!(
        nak.text.as_deref().unwrap_or_default().contains("1024"),
        "{nak:?}"
    );
    assert_eq!(peer.read().await, Read::Closed);
    server.stop().await;
}

#[tokio::test]
async fn junk_before_a_frame_is_skipped_and_counted() {
    let server = start(config(), Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    let mut wire = b"\r\n\r\nnoise".to_vec();
    wire.extend(hie_mllp::codec::frame(&adt("J1")));
    peer.write(&wire).await;
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("J1"));
    assert_eq!(server.metrics.snapshot().junk_bytes, 9);
    server.stop().await;
}

#[tokio::test]
async fn pipelined_frames_are_answered_in_order() {
    let server = start(config(), Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("P", 200)).await;
    for i in 0..200 {
        let ack = peer.read_ack().await;
        assert_eq!(ack.control_id, Some(format!("P{i}")));
    }
    let stats = server.metrics.snapshot();
    assert_eq!((stats.frames_in, stats.replies_out), (200, 200));
    server.stop().await;
}

#[tokio::test]
async fn slowloris_is_cut_off_while_another_connection_is_served() {
    let cfg = ListenerConfig {
        frame_timeout: Duration::from_millis(300),
        ..config()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let mut slow = RawPeer::connect(server.addr).await;
    let addr = server.addr;
    let dripping = tokio::spawn(async move {
        slow.write(b"\x0bMSH|").await;
        // One byte every 50 ms, bounded: far longer than the frame timeout.
        for _ in 0..200 {
            if slow.stream.try_write(b"A").is_err() {
                break;
            }
            let closed = tokio::time::timeout(Duration::from_millis(50), slow.read()).await;
            if let Ok(read) = closed {
                return read;
            }
        }
        Read::Frame(Bytes::new())
    });
    let mut other = RawPeer::connect(addr).await;
    for i in 0..5 {
        other.send(&adt(&format!("F{i}"))).await;
        assert_eq!(other.read_ack().await.code, AckCode::AA);
    }
    // The slow sender gets an AR for its unfinished frame, then the connection closes.
    match dripping.await.expect("dripping task") {
        Read::Frame(nak) => {
            let info = hie_hl7::ack::parse_ack(&nak).expect("nak");
            assert_eq!(info.code, AckCode::AR);
            assert!(info.text.unwrap_or_default().contains("not completed"));
        }
        Read::Closed => panic!("expected an AR before the close"),
    }
    eventually("the slow connection to close", || {
        server.metrics.connections_open.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(server.metrics.snapshot().timeouts, 1);
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let cfg = ListenerConfig {
        idle_timeout: Some(Duration::from_millis(100)),
        ..config()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.send(&adt("I1")).await;
    assert_eq!(peer.read_ack().await.code, AckCode::AA);
    assert_eq!(peer.read().await, Read::Closed);
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_counted() {
    let cfg = ListenerConfig {
        max_connections: 2,
        ..config()
    };
    let server = start(cfg, Arc::new(AckHandler)).await;
    let mut first = RawPeer::connect(server.addr).await;
    let mut second = RawPeer::connect(server.addr).await;
    for peer in [&mut first, &mut second] {
        peer.send(&adt("M")).await;
        assert_eq!(peer.read_ack().await.code, AckCode::AA);
    }
    let mut third = RawPeer::connect(server.addr).await;
    third.write(&hie_mllp::codec::frame(&adt("M3"))).await;
    assert_eq!(third.read().await, Read::Closed);
    assert_eq!(server.metrics.snapshot().connections_rejected, 1);
    drop(first);
    eventually("a slot to free up", || {
        server.metrics.connections_open.load(Ordering::Relaxed) == 1
    })
    .await;
    let mut fourth = RawPeer::connect(server.addr).await;
    fourth.send(&adt("M4")).await;
    assert_eq!(fourth.read_ack().await.code, AckCode::AA);
    server.stop().await;
}

/// Waits for a permit per frame, so a test decides when frames are handled.
struct GatedHandler {
    gate: Arc<Semaphore>,
}

impl FrameHandler for GatedHandler {
    fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move {
            self.gate.acquire().await.expect("gate open").forget();
            HandlerReply::Send(Bytes::from(ack_for(&frame)))
        })
    }
}

/// A listener whose handler waits for a permit of the returned gate per frame.
async fn start_gated(cfg: ListenerConfig) -> (Running, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let handler = GatedHandler {
        gate: Arc::clone(&gate),
    };
    (start(cfg, Arc::new(handler)).await, gate)
}

#[tokio::test]
async fn a_blocked_handler_stops_the_reader_after_the_read_ahead() {
    let cfg = ListenerConfig {
        read_ahead_frames: 4,
        ..config()
    };
    let (server, gate) = start_gated(cfg).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("B", 100)).await;
    eventually("the reader to fill the read-ahead", || {
        server.metrics.frames_in.load(Ordering::Relaxed) >= 5
    })
    .await;
    // Give the reader time it would use to run further ahead if it were unbounded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = server.metrics.frames_in.load(Ordering::Relaxed);
    assert!(read <= 4 + 2, "read {read} frames with the handler blocked");
    gate.add_permits(100);
    for i in 0..100 {
        assert_eq!(peer.read_ack().await.control_id, Some(format!("B{i}")));
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_frames_already_read_then_closes() {
    let (server, gate) = start_gated(config()).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("S", 3)).await;
    eventually("three frames read", || {
        server.metrics.frames_in.load(Ordering::Relaxed) == 3
    })
    .await;
    server.shutdown.cancel();
    gate.add_permits(3);
    for i in 0..3 {
        assert_eq!(peer.read_ack().await.control_id, Some(format!("S{i}")));
    }
    assert_eq!(peer.read().await, Read::Closed);
    tokio::time::timeout(DEADLINE, server.task)
        .await
        .expect("serve returns")
        .expect("task")
        .expect("ok");
}

#[tokio::test]
async fn handler_close_sends_the_reply_then_closes() {
    struct CloseAfterReply;
    impl FrameHandler for CloseAfterReply {
        fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
            Box::pin(async move { HandlerReply::Close(Some(Bytes::from(ack_for(&frame)))) })
        }
    }
    let server = start(config(), Arc::new(CloseAfterReply)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.send(&adt("C1")).await;
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("C1"));
    assert_eq!(peer.read().await, Read::Closed);
    server.stop().await;
}
