//! End to end with the real `hie run`: MLLP pipelining keeps order (inbound, and
//! outbound with `max_in_flight`), inbound priority rules, restart policy
//! `always`, and the timeout of `send-request-async`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

/// An inbound service (`adapter` fields spliced in) feeding `first`, and an
/// operation `out` to `sink`.
fn production(inbound: u16, adapter: &str, sink: u16, first: &str, middle: &str) -> String {
    format!(
        r#"
[production]
name = "e2e-more"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound}{adapter} }}
targets = ["{first}"]
{middle}
[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {sink} }}
execution = {{ mode = "single_process" }}
"#
    )
}

/// MSH-10 of a message.
fn control_id(msg: &[u8]) -> String {
    String::from_utf8_lossy(msg)
        .split('|')
        .nth(9)
        .unwrap_or_default()
        .to_string()
}

/// MSA-2 (the acknowledged control id) of an ACK.
fn msa_2(ack: &[u8]) -> String {
    String::from_utf8_lossy(ack)
        .split('\r')
        .find(|s| s.starts_with("MSA|"))
        .and_then(|msa| msa.split('|').nth(2))
        .unwrap_or_default()
        .to_string()
}

/// Write every message as one burst on one connection, then read as many replies.
fn pipelined_calls(port: u16, messages: &[String]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut burst = Vec::new();
    for m in messages {
        burst.push(0x0b);
        burst.extend_from_slice(m.as_bytes());
        burst.extend_from_slice(&[0x1c, 0x0d]);
    }
    s.write_all(&burst).unwrap();
    let mut replies = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while replies.len() < messages.len() {
        while let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            replies.push(frame[1..frame.len() - 2].to_vec());
        }
        if replies.len() >= messages.len() {
            break;
        }
        let n = s.read(&mut chunk).expect("replies");
        assert!(n > 0, "connection closed after {} replies", replies.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    replies
}

#[test]
fn a_pipelined_connection_keeps_its_order_through_a_single_worker_fifo_route() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "work"
kind = "process"
plugin = "engine-faulty"
targets = ["out"]
"#;
    let _p = Production::run(
        &production(
            inbound,
            r#", ack_mode = "application", max_in_flight = 32"#,
            sink.port,
            "work",
            middle,
        ),
        &["engine-faulty"],
        Some(inbound),
    );
    let sent: Vec<String> = (0..200)
        .map(|i| hl7("ADT^A01", &format!("Q{i:03}"), "P1"))
        .collect();
    let acks = pipelined_calls(inbound, &sent);
    let acked: Vec<(String, String)> = acks.iter().map(|a| (ack_code(a).0, msa_2(a))).collect();
    let expect: Vec<(String, String)> = (0..200).map(|i| ("AA".to_string(), format!("Q{i:03}"))).collect();
    assert_eq!(acked, expect, "one AA per frame, in frame order");
    let got: Vec<String> = sink.wait_for(200).iter().map(|m| control_id(m)).collect();
    let ids: Vec<String> = (0..200).map(|i| format!("Q{i:03}")).collect();
    assert_eq!(got, ids, "the single FIFO worker saw the frames in send order");
}

#[test]
fn inbound_priority_rules_decide_the_order_of_a_priority_queue() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let adapter = r#", priority = 2, priority_rules = [{ field = "PID-3", equals = "VIP", priority = 9 }, { field = "MSH-9", equals = "ORM^O01", priority = 7 }]"#;
    let middle = r#"
[[items]]
name = "work"
kind = "process"
plugin = "engine-faulty"
queue = { kind = "priority" }
targets = ["out"]
"#;
    let p = Production::run(
        &production(inbound, adapter, sink.port, "work", middle),
        &["engine-faulty"],
        Some(inbound),
    );
    assert_eq!(p.control("pause work"), "ok");
    let sent = [
        ("ADT^A01", "A1", "P1"),
        ("ORM^O01^ORM_O01", "O1", "P2"),
        ("ADT^A08", "A2", "P3"),
        ("ADT^A01", "V1", "VIP"),
        ("ORM^O01", "O2", "P4"),
        ("ORM^O02", "X1", "P5"),
    ];
    for (kind, id, patient) in sent {
        let ack = mllp_call(inbound, hl7(kind, id, patient).as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
    }
    eventually("six messages wait", Duration::from_secs(10), || {
        p.control("status").contains("work=Paused/depth:6").then_some(())
    });
    assert_eq!(p.control("resume work"), "ok");
    let got: Vec<String> = sink.wait_for(6).iter().map(|m| control_id(m)).collect();
    // 9 (VIP), then 7 (ORM^O01 and its longer form) in arrival order, then the default 2
    assert_eq!(got, ["V1", "O1", "O2", "A1", "A2", "X1"]);
}

#[test]
fn restart_policy_always_restarts_past_the_intensity_limit() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "fragile"
kind = "process"
plugin = "engine-faulty"
restart = { policy = "always", max_restarts = 1, within = "60s", backoff = "20ms", max_backoff = "100ms" }
targets = ["out"]
"#;
    let p = Production::run(
        &production(inbound, "", sink.port, "fragile", middle),
        &["engine-faulty"],
        Some(inbound),
    );
    let instances = |p: &Production| p.proc.lines_with("faulty instance started").len();
    eventually("first instance", Duration::from_secs(10), || {
        (instances(&p) == 1).then_some(())
    });
    for i in 0..3 {
        mllp_call(inbound, hl7("ADT^A01", &format!("C{i}"), "CRASH").as_bytes());
        eventually("a fresh instance after backoff", Duration::from_secs(10), || {
            (instances(&p) == i + 2).then_some(())
        });
        mllp_call(inbound, hl7("ADT^A01", &format!("OK{i}"), "P1").as_bytes());
        sink.wait_for(i + 1);
    }
    let status = p.control("status");
    assert!(status.contains("fragile=Running"), "{status}");
    assert!(status.contains("restarts:3"), "{status}");
    // the first restart is within the limit; the next two are past it and alert
    eventually("two intensity alerts", Duration::from_secs(10), || {
        (p.proc.lines_with("restart intensity exceeded").len() == 2).then_some(())
    });
    assert!(p.proc.lines_with("item failed").is_empty(), "{}", p.proc.dump());
}

#[test]
fn an_async_request_times_out_once_and_its_late_reply_is_dropped() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "requester"
kind = "process"
plugin = "engine-requester"
settings = { target = "responder", mode = "async" }
request_timeout = "300ms"
targets = ["out"]

[[items]]
name = "responder"
kind = "process"
plugin = "engine-responder"
"#;
    let p = Production::run(
        &production(inbound, "", sink.port, "requester", middle),
        &["engine-requester", "engine-responder"],
        Some(inbound),
    );
    assert_eq!(p.control("pause responder"), "ok");
    let msg = hl7("ADT^A01", "T1", "P1");
    assert_eq!(ack_code(&mllp_call(inbound, msg.as_bytes())).0, "AA");
    // on-reply gets the timeout; the test requester turns it into a failure (dead letter)
    let letters = eventually("the timeout reaches on-reply", Duration::from_secs(10), || {
        let l = p.control("dead-letters");
        l.contains(":requester:timeout").then_some(l)
    });
    assert_eq!(letters.matches(":requester:").count(), 1, "{letters}");
    assert_eq!(p.proc.lines_with("async request timed out").len(), 1);
    // the reply comes after all: it is dropped and logged, not handed to on-reply again
    assert_eq!(p.control("resume responder"), "ok");
    eventually("the late reply is dropped", Duration::from_secs(10), || {
        (!p.proc.lines_with("late reply dropped").is_empty()).then_some(())
    });
    let letters = p.control("dead-letters");
    assert_eq!(letters.matches(":requester:").count(), 1, "{letters}");
    // a reply in time still goes through on-reply to the sink
    let msg = hl7("ADT^A01", "T2", "P1");
    assert_eq!(ack_code(&mllp_call(inbound, msg.as_bytes())).0, "AA");
    let got = sink.wait_for(1);
    assert_eq!(String::from_utf8_lossy(&got[0]), format!("{msg}ZRS|replied\r"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        p.proc.lines_with("async request timed out").len(),
        1,
        "{}",
        p.proc.dump()
    );
    assert!(
        sink.messages().len() == 1,
        "the timed-out request must not reach the sink"
    );
}

/// A downstream MLLP peer on a thread: it lets frames pile up for a moment before
/// each read, answers every complete frame it holds, AE to the first copy of
/// `refuse_once` (an application error, which the default reply policy retries)
/// and AA to everything else, and records what it answered.
struct Downstream {
    port: u16,
    /// (control id, code) of every frame answered, in the order answered.
    answered: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// The most frames it held unanswered at once.
    most_at_once: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Downstream {
    fn start(refuse_once: &str) -> Downstream {
        Downstream::start_with(refuse_once, None)
    }

    /// As [`Downstream::start`]; with `hang_up_after = Some(n)` it closes its first
    /// connection right after answering the `n`-th frame, leaving any others it
    /// holds unanswered (and unrecorded).
    fn start_with(refuse_once: &str, hang_up_after: Option<usize>) -> Downstream {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let most_at_once = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (log, most) = (answered.clone(), most_at_once.clone());
        let refuse_once = refuse_once.to_string();
        std::thread::spawn(move || {
            let mut refused = false;
            let mut hang_up_after = hang_up_after;
            // one connection at a time, for as long as the test runs
            while let Ok((mut conn, _)) = listener.accept() {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                let mut hang_up = false;
                while !hang_up {
                    std::thread::sleep(Duration::from_millis(5));
                    let n = match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let mut replies = Vec::new();
                    let mut held = 0;
                    while let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                        let frame: Vec<u8> = buf.drain(..end + 2).collect();
                        let msg = &frame[1..frame.len() - 2];
                        let id = control_id(msg);
                        let code = if id == refuse_once && !refused {
                            refused = true;
                            "AE"
                        } else {
                            "AA"
                        };
                        let ack = format!(
                            "MSH|^~\\&|DOWN|FAC|SND|FAC|20260101000000||ACK|A{id}|P|2.5\rMSA|{code}|{id}\r"
                        );
                        replies.push(0x0b);
                        replies.extend_from_slice(ack.as_bytes());
                        replies.extend_from_slice(&[0x1c, 0x0d]);
                        let mut log = log.lock().unwrap();
                        log.push((id, code.to_string()));
                        held += 1;
                        if hang_up_after == Some(log.len()) {
                            hang_up_after = None;
                            hang_up = true;
                            break;
                        }
                    }
                    most.fetch_max(held, Ordering::SeqCst);
                    if conn.write_all(&replies).is_err() {
                        break;
                    }
                }
            }
        });
        Downstream {
            port,
            answered,
            most_at_once,
        }
    }

    fn answered(&self) -> Vec<(String, String)> {
        self.answered.lock().unwrap().clone()
    }
}

/// An inbound service straight to an `mllp-out` operation with `max_in_flight`.
fn pipelined_out(inbound: u16, downstream: u16, max_in_flight: usize) -> String {
    format!(
        r#"
[production]
name = "e2e-out-window"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound}, ack_mode = "application", max_in_flight = 64 }}
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {downstream}, ack_timeout = "5s", max_in_flight = {max_in_flight} }}
retry = {{ max_attempts = 3, backoff = "50ms" }}
"#
    )
}

/// With `max_in_flight = 16` the operation sends frames without waiting for each
/// ACK (the peer holds several unanswered at once), and the peer still gets every
/// message once, in queue order; each upstream sender gets its AA after the
/// downstream's.
#[test]
fn a_pipelined_operation_delivers_every_message_once_in_order() {
    let down = Downstream::start("none");
    let inbound = free_port();
    let _p = Production::run(&pipelined_out(inbound, down.port, 16), &[], Some(inbound));
    let sent: Vec<String> = (0..300)
        .map(|i| hl7("ADT^A01", &format!("W{i:03}"), "P1"))
        .collect();
    let acks = pipelined_calls(inbound, &sent);
    assert!(acks.iter().all(|a| ack_code(a).0 == "AA"));
    let ids: Vec<String> = (0..300).map(|i| format!("W{i:03}")).collect();
    let got: Vec<String> = down.answered().into_iter().map(|(id, _)| id).collect();
    assert_eq!(got, ids, "each message once, in order");
    let most = down.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=16).contains(&most),
        "the peer held {most} frames unanswered at once; expected 2 to 16"
    );
}

/// The same operation one frame at a time (the default): the peer never holds
/// two frames at once. This is what makes the test above able to fail.
#[test]
fn an_operation_without_max_in_flight_waits_for_each_ack() {
    let down = Downstream::start("none");
    let inbound = free_port();
    let toml = pipelined_out(inbound, down.port, 16).replace(", max_in_flight = 16 }", " }");
    let _p = Production::run(&toml, &[], Some(inbound));
    let sent: Vec<String> = (0..50)
        .map(|i| hl7("ADT^A01", &format!("S{i:02}"), "P1"))
        .collect();
    let acks = pipelined_calls(inbound, &sent);
    assert!(acks.iter().all(|a| ack_code(a).0 == "AA"));
    assert_eq!(down.answered().len(), 50);
    assert_eq!(down.most_at_once.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A message the peer refuses with AE inside a window is sent again (on its own)
/// after the retry backoff and accepted. The frames after it in that window, if
/// any, were already accepted and are not sent again (so they reach the peer
/// before the retried one): nothing is lost or accepted twice, and every
/// upstream sender gets AA.
#[test]
fn a_refused_message_in_a_window_is_retried_and_nothing_else_is_resent() {
    let down = Downstream::start("W010");
    let inbound = free_port();
    let _p = Production::run(&pipelined_out(inbound, down.port, 16), &[], Some(inbound));
    let sent: Vec<String> = (0..100)
        .map(|i| hl7("ADT^A01", &format!("W{i:03}"), "P1"))
        .collect();
    let acks = pipelined_calls(inbound, &sent);
    let codes: Vec<String> = acks.iter().map(|a| ack_code(a).0).collect();
    assert!(codes.iter().all(|c| c == "AA"), "{codes:?}");
    let answered = down.answered();
    assert_eq!(answered.len(), 101, "100 messages and one retry: {answered:?}");
    let refused: Vec<&(String, String)> = answered.iter().filter(|(_, c)| c == "AE").collect();
    assert_eq!(refused, [&("W010".to_string(), "AE".to_string())]);
    let mut accepted: Vec<String> = answered
        .iter()
        .filter(|(_, c)| c == "AA")
        .map(|(id, _)| id.clone())
        .collect();
    accepted.sort();
    let ids: Vec<String> = (0..100).map(|i| format!("W{i:03}")).collect();
    assert_eq!(accepted, ids, "every message accepted exactly once");
}

/// The peer hangs up in the middle of a window. The frame whose ACK was lost waits
/// its retry backoff (3 s here) and goes again; the frames after it, abandoned with
/// the connection, go right after it without a backoff of their own (one each would
/// take 3 s apiece); every message is accepted and every upstream sender gets AA.
#[test]
fn frames_abandoned_by_a_hang_up_are_resent_without_a_backoff_each() {
    let down = Downstream::start_with("none", Some(2));
    let inbound = free_port();
    let toml = pipelined_out(inbound, down.port, 16).replace(r#"backoff = "50ms""#, r#"backoff = "3s""#);
    let p = Production::run(&toml, &[], Some(inbound));
    let sent: Vec<String> = (0..60)
        .map(|i| hl7("ADT^A01", &format!("H{i:02}"), "P1"))
        .collect();
    let started = std::time::Instant::now();
    let acks = pipelined_calls(inbound, &sent);
    let took = started.elapsed();
    assert!(acks.iter().all(|a| ack_code(a).0 == "AA"));
    let mut accepted: Vec<String> = down.answered().into_iter().map(|(id, _)| id).collect();
    accepted.sort();
    accepted.dedup();
    let ids: Vec<String> = (0..60).map(|i| format!("H{i:02}")).collect();
    assert_eq!(accepted, ids, "every message accepted");
    let abandoned = p
        .proc
        .lines_with("an earlier frame on the same connection failed");
    assert!(
        abandoned.len() >= 2,
        "the hang-up should abandon frames of its window:\n{}",
        p.proc.dump()
    );
    // one backoff (the frame that lost its ACK), not one per abandoned frame
    assert!(
        took < Duration::from_secs(3 * abandoned.len() as u64),
        "{} abandoned frames took {took:?}",
        abandoned.len()
    );
}
