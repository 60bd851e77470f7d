//! Pipelining per connection: a handler that answers `HandlerReply::Later` gets
//! the next frames while earlier replies are pending; replies keep frame order,
//! admission keeps frame order, and read-ahead stays bounded.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hie_mllp::server::{FrameHandler, HandlerFuture, HandlerReply, ListenerConfig, PeerInfo};
use tokio::sync::oneshot;

/// Admits every frame at once (recording the order), and replies when the test
/// releases that frame's control id.
#[derive(Default)]
struct Deferred {
    admitted: Mutex<Vec<String>>,
    release: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

impl Deferred {
    fn admitted(&self) -> Vec<String> {
        self.admitted.lock().expect("not poisoned").clone()
    }

    /// Let the reply to `id` go; panics if `id` was not admitted.
    fn release(&self, id: &str) {
        let tx = self
            .release
            .lock()
            .expect("not poisoned")
            .remove(id)
            .expect("frame admitted");
        let _ = tx.send(());
    }
}

fn control_id(frame: &[u8]) -> String {
    hie_hl7::Message::parse(frame)
        .expect("hl7")
        .get("MSH-10")
        .expect("path")
        .unwrap_or_default()
}

impl FrameHandler for Deferred {
    fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move {
            let id = control_id(&frame);
            let (tx, rx) = oneshot::channel();
            self.release.lock().expect("not poisoned").insert(id.clone(), tx);
            self.admitted.lock().expect("not poisoned").push(id);
            HandlerReply::later(async move {
                let _ = rx.await;
                HandlerReply::Send(Bytes::from(ack_for(&frame)))
            })
        })
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn replies_keep_frame_order_when_later_frames_finish_first() {
    let handler = Arc::new(Deferred::default());
    let server = start(ListenerConfig::default(), handler.clone()).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("P", 10)).await;
    // all ten are admitted, in order, before any is answered: they are in flight together
    eventually("ten frames admitted", || handler.admitted().len() == 10).await;
    assert_eq!(handler.admitted(), ids("P", 10));
    for id in ids("P", 10).iter().rev() {
        handler.release(id);
    }
    for id in ids("P", 10) {
        assert_eq!(peer.read_ack().await.control_id, Some(id));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_ready_reply_waits_for_the_pending_one_before_it() {
    let handler = Arc::new(Deferred::default());
    let server = start(ListenerConfig::default(), handler.clone()).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("Q", 3)).await;
    eventually("three frames admitted", || handler.admitted().len() == 3).await;
    handler.release("Q2");
    handler.release("Q1");
    // nothing may be written while Q0 is pending
    let early = tokio::time::timeout(Duration::from_millis(200), peer.read()).await;
    assert!(
        early.is_err(),
        "a reply overtook the pending first frame: {early:?}"
    );
    handler.release("Q0");
    for id in ids("Q", 3) {
        assert_eq!(peer.read_ack().await.control_id, Some(id));
    }
    server.stop().await;
}

#[tokio::test]
async fn in_flight_and_read_ahead_stay_bounded() {
    let handler = Arc::new(Deferred::default());
    let cfg = ListenerConfig {
        max_in_flight: 4,
        read_ahead_frames: 4,
        ..ListenerConfig::default()
    };
    let server = start(cfg, handler.clone()).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("B", 100)).await;
    eventually("four frames admitted", || handler.admitted().len() == 4).await;
    // time the listener would use to run further ahead if it were unbounded
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handler.admitted().len(), 4, "admitted past max_in_flight");
    let read = server.metrics.frames_in.load(Ordering::Relaxed);
    assert!(read <= 4 + 4 + 2, "read {read} frames with 4 replies pending");
    // releasing one lets exactly one more in
    handler.release("B0");
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("B0"));
    eventually("a fifth frame admitted", || handler.admitted().len() == 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handler.admitted().len(), 5);
    for i in 1..100 {
        eventually("the next frame admitted", || handler.admitted().len() > i).await;
        handler.release(&format!("B{i}"));
        assert_eq!(peer.read_ack().await.control_id, Some(format!("B{i}")));
    }
    assert_eq!(handler.admitted(), ids("B", 100));
    server.stop().await;
}

#[tokio::test]
async fn a_pending_connection_does_not_hold_up_another() {
    let handler = Arc::new(Deferred::default());
    let server = start(ListenerConfig::default(), handler.clone()).await;
    let mut slow = RawPeer::connect(server.addr).await;
    slow.write(&pipelined("S", 3)).await;
    eventually("slow frames admitted", || handler.admitted().len() == 3).await;
    let mut fast = RawPeer::connect(server.addr).await;
    fast.write(&pipelined("F", 2)).await;
    eventually("fast frames admitted", || handler.admitted().len() == 5).await;
    handler.release("F0");
    handler.release("F1");
    assert_eq!(fast.read_ack().await.control_id.as_deref(), Some("F0"));
    assert_eq!(fast.read_ack().await.control_id.as_deref(), Some("F1"));
    for id in ids("S", 3) {
        handler.release(&id);
        assert_eq!(slow.read_ack().await.control_id, Some(id));
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_pending_replies() {
    let handler = Arc::new(Deferred::default());
    let server = start(ListenerConfig::default(), handler.clone()).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("D", 3)).await;
    eventually("three frames admitted", || handler.admitted().len() == 3).await;
    server.shutdown.cancel();
    for id in ids("D", 3) {
        handler.release(&id);
        assert_eq!(peer.read_ack().await.control_id, Some(id));
    }
    assert_eq!(peer.read().await, Read::Closed);
    tokio::time::timeout(DEADLINE, server.task)
        .await
        .expect("serve returns")
        .expect("task")
        .expect("ok");
}

#[tokio::test]
async fn a_close_reply_drops_the_frames_after_it() {
    struct CloseSecond;
    impl FrameHandler for CloseSecond {
        fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
            Box::pin(async move {
                let id = control_id(&frame);
                let ack = Bytes::from(ack_for(&frame));
                HandlerReply::later(async move {
                    if id == "C1" {
                        HandlerReply::Close(Some(ack))
                    } else {
                        HandlerReply::Send(ack)
                    }
                })
            })
        }
    }
    let server = start(ListenerConfig::default(), Arc::new(CloseSecond)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("C", 4)).await;
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("C0"));
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("C1"));
    assert_eq!(peer.read().await, Read::Closed);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_reply_sends_nothing_and_the_connection_goes_on() {
    struct SilentOnS1;
    impl FrameHandler for SilentOnS1 {
        fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
            Box::pin(async move {
                if control_id(&frame) == "S1" {
                    return HandlerReply::Silent;
                }
                let ack = Bytes::from(ack_for(&frame));
                HandlerReply::later(async move { HandlerReply::Send(ack) })
            })
        }
    }
    let server = start(ListenerConfig::default(), Arc::new(SilentOnS1)).await;
    let mut peer = RawPeer::connect(server.addr).await;
    peer.write(&pipelined("S", 3)).await;
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("S0"));
    assert_eq!(peer.read_ack().await.control_id.as_deref(), Some("S2"));
    server.stop().await;
}
