//! "ACK means stored", end to end with the real `hie run` over loopback: crash
//! recovery under `kill -9`, de-duplication of re-sends, FIFO order across a
//! restart, storage faults (the store's fault hook through `HIE_STORE_FAULT_FILE`,
//! a test-only setting), and refusing a corrupt or foreign store file.

mod durability_support;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use durability_support::*;
use support::{Sink, eventually};

/// Messages the crash test sends. About 40 s of a debug build on 2 cores.
const CRASH_MESSAGES: usize = 20_000;
/// How many times the crash test kills the engine with `kill -9` while it sends.
const CRASH_KILLS: usize = 20;
/// Connections the crash test sends on, each retrying its un-ACKed message.
const CRASH_SENDERS: usize = 4;

/// `in` (mllp-in, commit ACKs) straight to `out` (mllp-out to the sink).
fn direct(sink: u16) -> impl FnOnce(u16) -> String {
    move |port| {
        format!(
            r#"
[production]
name = "durability"
drain_timeout = "5s"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {port}, ack_mode = "commit" }}
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {sink}, ack_timeout = "5s" }}
execution = {{ mode = "single_process" }}
retry = {{ max_attempts = 1000, backoff = "20ms", max_backoff = "200ms" }}
"#
        )
    }
}

/// A small pseudo-random source (xorshift), seeded from the clock and printed so a
/// failing run can be told apart; the kill moments need no better.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("kill jitter seed {seed}");
        Jitter(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acked_message_and_stores_no_resent_duplicate() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(direct(sink.port), &[]);
    hie.start();
    let port = hie.port;
    let progress = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(600);
    let ids: Vec<String> = (0..CRASH_MESSAGES).map(|i| format!("K{i:06}")).collect();
    let senders: Vec<_> = ids
        .chunks(CRASH_MESSAGES.div_ceil(CRASH_SENDERS))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || send_until_acked(port, &chunk, deadline, &progress))
        })
        .collect();

    // kill at a random point inside each of KILLS + 1 equal slices of the send
    let mut jitter = Jitter::new();
    let slice = CRASH_MESSAGES / (CRASH_KILLS + 1);
    let mut kills = 0;
    for k in 0..CRASH_KILLS {
        let at = slice * (k + 1) - slice / 2 + jitter.below(slice as u64) as usize;
        eventually(
            "the senders to reach the next kill point",
            Duration::from_secs(300),
            || (progress.load(Ordering::SeqCst) >= at).then_some(()),
        );
        std::thread::sleep(Duration::from_millis(jitter.below(30)));
        hie.kill9();
        kills += 1;
        hie.start();
    }
    let mut acked = Vec::new();
    let mut retries = 0;
    for s in senders {
        let report = s.join().expect("sender thread");
        retries += report.retries;
        acked.extend(report.acked);
    }
    assert_eq!(acked.len(), CRASH_MESSAGES, "every message was ACKed in the end");

    let counts = eventually(
        "the sink to have every ACKed message",
        Duration::from_secs(300),
        || {
            let counts = sink_counts(sink.dir.path());
            acked.iter().all(|id| counts.contains_key(id)).then_some(counts)
        },
    );
    let exit = hie.stop();
    assert!(exit.success(), "hie run exits 0 on SIGTERM: {exit}");

    let resent_twice: Vec<(String, i64)> = store_query(
        &hie.store_file(),
        "SELECT control_id, count(*) FROM messages WHERE parent_id IS NULL GROUP BY control_id HAVING count(*) > 1",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let stored: Vec<i64> = store_query(
        &hie.store_file(),
        "SELECT count(DISTINCT control_id) FROM messages WHERE parent_id IS NULL",
        |r| r.get(0),
    );
    let sink_total: usize = counts.values().sum();
    let sink_duplicates = counts.values().filter(|n| **n > 1).count();
    println!(
        "crash test: {CRASH_MESSAGES} messages, {kills} kill -9, {retries} re-sends by the senders, \
         {} distinct stored, sink got {sink_total} ({sink_duplicates} control ids more than once: \
         redelivered after a crash, not re-sends)",
        stored[0]
    );
    assert!(
        resent_twice.is_empty(),
        "re-sent messages stored twice: {resent_twice:?}"
    );
    assert_eq!(stored[0] as usize, CRASH_MESSAGES);
    assert_eq!(kills, CRASH_KILLS);
}

#[test]
fn a_resent_message_gets_the_stored_ack_and_reaches_the_sink_once_even_across_a_restart() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(direct(sink.port), &[]);
    hie.start();
    let mut conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
    let first = conn.call(adt("D1").as_bytes()).unwrap();
    let again = conn.call(adt("D1").as_bytes()).unwrap();
    assert_eq!(msa(&first).0, "AA");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&first),
        "the re-send gets the stored ACK byte for byte"
    );
    assert_eq!(msa(&conn.call(adt("D2").as_bytes()).unwrap()).0, "AA");
    // one worker in FIFO order: a second D1 would arrive before D2
    sink.wait_for(2);
    assert_eq!(sink_order(sink.dir.path()), ["D1", "D2"]);

    hie.kill9();
    hie.start();
    let mut conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
    let after_restart = conn.call(adt("D1").as_bytes()).unwrap();
    assert_eq!(after_restart, first, "the ACK cache survives a restart");
    assert_eq!(msa(&conn.call(adt("D3").as_bytes()).unwrap()).0, "AA");
    // Delivery downstream is at least once: D2's "done" may not have been
    // committed when the engine was killed, so recovery may deliver D2 again.
    // What must hold: the re-sent D1 is never delivered a second time, and D3 arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let order = loop {
        let order = sink_order(sink.dir.path());
        if order.iter().any(|c| c == "D3") || std::time::Instant::now() > deadline {
            break order;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let count = |id: &str| order.iter().filter(|c| *c == id).count();
    assert_eq!(count("D1"), 1, "the re-sent D1 reached the sink again: {order:?}");
    assert_eq!(count("D3"), 1, "D3 did not reach the sink once: {order:?}");
    assert!(count("D2") >= 1, "D2 was lost: {order:?}");
    assert_eq!(order.last().map(String::as_str), Some("D3"), "{order:?}");
}

#[test]
fn recovery_keeps_fifo_order_of_messages_queued_behind_a_paused_operation() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(direct(sink.port), &[]);
    let ids: Vec<String> = (1..=40).map(|i| format!("F{i:03}")).collect();

    // round 1: kill -9 with everything queued; round 2: an orderly stop (SIGTERM)
    for (round, batch) in ids.chunks(20).enumerate() {
        hie.start();
        assert_eq!(support::control(&hie.control, "pause out"), "ok");
        let mut conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
        for id in batch {
            assert_eq!(msa(&conn.call(adt(id).as_bytes()).unwrap()).0, "AA", "{id}");
        }
        if round == 0 {
            hie.kill9();
        } else {
            hie.stop();
        }
        assert!(
            sink_order(sink.dir.path()).len() <= round * 20,
            "nothing of round {round} was delivered while paused"
        );
        hie.start();
        sink.wait_for((round + 1) * 20);
        hie.stop();
    }
    assert_eq!(
        sink_order(sink.dir.path()),
        ids,
        "queue order survives a crash and a stop"
    );
}

#[test]
fn a_failing_disk_refuses_intake_with_ar_then_intake_resumes() {
    let sink = Sink::start("sink");
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("fail-commits");
    let mut hie = Durable::new(direct(sink.port), &[]).env("HIE_STORE_FAULT_FILE", flag.to_str().unwrap());
    hie.start();
    let mut conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
    let mut accepted = vec!["S0".to_string()];
    assert_eq!(msa(&conn.call(adt("S0").as_bytes()).unwrap()).0, "AA");

    std::fs::write(&flag, b"").unwrap();
    let mut n = 0;
    let refused = eventually("a send to be refused with AR", Duration::from_secs(10), || {
        n += 1;
        let id = format!("S{n}");
        let ack = conn
            .call(adt(&id).as_bytes())
            .expect("a reply, not a dropped connection");
        match msa(&ack) {
            (code, text) if code == "AR" => Some((id, text)),
            (code, _) => {
                assert_eq!(code, "AA");
                accepted.push(id);
                None
            }
        }
    });
    assert!(
        refused.1.contains("storage unavailable"),
        "MSA-3 says why: {}",
        refused.1
    );
    let again = conn.call(adt("S-during").as_bytes()).unwrap();
    assert_eq!(msa(&again).0, "AR", "intake stays refused while the disk fails");
    let proc = hie.proc.as_mut().unwrap();
    proc.wait_for_line("store write failed", Duration::from_secs(5));
    assert!(
        proc.lines_with("panicked").is_empty(),
        "no panic:\n{}",
        hie.dump()
    );

    std::fs::remove_file(&flag).unwrap();
    let mut m = 0;
    eventually(
        "intake to resume once the fault clears",
        Duration::from_secs(10),
        || {
            m += 1;
            let id = format!("R{m}");
            let ack = conn.call(adt(&id).as_bytes())?;
            (msa(&ack).0 == "AA").then(|| accepted.push(id))
        },
    );
    let counts = eventually(
        "the sink to get every ACKed message",
        Duration::from_secs(20),
        || {
            let counts = sink_counts(sink.dir.path());
            accepted
                .iter()
                .all(|id| counts.contains_key(id))
                .then_some(counts)
        },
    );
    assert!(
        !counts.contains_key(&refused.0),
        "a refused message is never delivered"
    );
    assert!(!counts.contains_key("S-during"));
    hie.stop();
}

/// MSA-2 (the control id an ACK answers) of each reply.
fn acked_ids(replies: &[Vec<u8>]) -> Vec<String> {
    replies
        .iter()
        .map(|r| {
            let text = String::from_utf8_lossy(r).to_string();
            let msa = text
                .split('\r')
                .find(|s| s.starts_with("MSA|"))
                .unwrap_or_default()
                .to_string();
            msa.split('|').nth(2).unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn frames_sent_without_waiting_are_each_acked_once_stored_and_delivered_in_order() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(direct(sink.port), &[]);
    hie.start();
    // 300 frames written before any ACK is read, so many are stored while others
    // wait; W150 is sent again right after itself (an upstream re-send in the window)
    let mut ids: Vec<String> = (0..300).map(|i| format!("W{i:03}")).collect();
    ids.insert(151, "W150".to_string());
    let frames: Vec<String> = ids.iter().map(|id| adt(id)).collect();
    let mut conn = Conn::open(hie.port, Duration::from_secs(20)).unwrap();
    let replies = conn.pipeline(&frames).expect("a reply to every frame");
    assert_eq!(acked_ids(&replies), ids, "one ACK per frame, in frame order");
    for (id, reply) in ids.iter().zip(&replies) {
        assert_eq!(msa(reply).0, "AA", "{id}: {}", String::from_utf8_lossy(reply));
    }
    assert_eq!(
        replies[151], replies[150],
        "the re-send gets the stored ACK byte for byte"
    );
    sink.wait_for(300);
    std::thread::sleep(Duration::from_millis(300));
    let order = sink_order(sink.dir.path());
    let expected: Vec<String> = (0..300).map(|i| format!("W{i:03}")).collect();
    assert_eq!(order, expected, "each message once, in the order sent");
    hie.stop();
    let stored: i64 = store_query(&hie.store_file(), "SELECT count(*) FROM messages", |r| r.get(0))
        .pop()
        .unwrap();
    assert_eq!(stored, 300, "the re-send is not stored again");
}

#[test]
fn a_connection_reset_while_its_frames_commit_leaves_no_stored_message_behind() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(direct(sink.port), &[]);
    hie.start();
    // each round resets a connection with frames admitted and their commits pending;
    // every message that was stored must still be delivered, none may wait forever
    for round in 0..5 {
        let frames: Vec<String> = (0..400).map(|i| adt(&format!("K{round}-{i:03}"))).collect();
        let conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
        conn.send_and_reset(&frames, Duration::from_millis(5 + 10 * round as u64));
    }
    let mut last = usize::MAX;
    let delivered = eventually("the sink to settle", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(500));
        let n = sink_order(sink.dir.path()).len();
        let settled = n == last && n > 0;
        last = n;
        settled.then_some(n)
    });
    assert_eq!(hie.stop().code(), Some(0), "drains and exits 0:\n{}", hie.dump());
    let stored: Vec<String> = store_query(&hie.store_file(), "SELECT control_id FROM messages", |r| r.get(0));
    let counts = sink_counts(sink.dir.path());
    let undelivered: Vec<&String> = stored.iter().filter(|c| !counts.contains_key(*c)).collect();
    assert!(
        undelivered.is_empty(),
        "stored but never delivered: {undelivered:?}"
    );
    assert_eq!(delivered, stored.len(), "each stored message delivered once");
    println!(
        "{} of 2000 frames stored and delivered before the resets",
        stored.len()
    );
}

#[test]
fn a_failing_disk_refuses_every_frame_of_a_window_and_runs_none_of_them() {
    let sink = Sink::start("sink");
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("fail-commits");
    let mut hie = Durable::new(direct(sink.port), &[]).env("HIE_STORE_FAULT_FILE", flag.to_str().unwrap());
    hie.start();
    let mut conn = Conn::open(hie.port, Duration::from_secs(20)).unwrap();

    std::fs::write(&flag, b"").unwrap();
    // the engine polls for the flag: wait until a lone frame is refused
    let mut n = 0;
    let first_refused = eventually("a send to be refused with AR", Duration::from_secs(10), || {
        n += 1;
        let id = format!("S{n}");
        (msa(&conn.call(adt(&id).as_bytes())?).0 == "AR").then_some(id)
    });
    let refused: Vec<String> = (0..100).map(|i| format!("X{i:03}")).collect();
    let frames: Vec<String> = refused.iter().map(|id| adt(id)).collect();
    let replies = conn.pipeline(&frames).expect("a reply to every frame");
    assert_eq!(
        acked_ids(&replies),
        refused,
        "one reply per frame, in frame order"
    );
    for (id, reply) in refused.iter().zip(&replies) {
        let (code, text) = msa(reply);
        assert_eq!(code, "AR", "{id}: nothing is ACKed while commits fail");
        assert!(text.contains("storage unavailable"), "{id}: {text}");
    }

    std::fs::remove_file(&flag).unwrap();
    eventually(
        "intake to resume once the fault clears",
        Duration::from_secs(10),
        || (msa(&conn.call(adt("R0").as_bytes())?).0 == "AA").then_some(()),
    );
    let accepted: Vec<String> = (1..=100).map(|i| format!("R{i:03}")).collect();
    let frames: Vec<String> = accepted.iter().map(|id| adt(id)).collect();
    let replies = conn.pipeline(&frames).expect("a reply to every frame");
    assert!(replies.iter().all(|r| msa(r).0 == "AA"));
    sink.wait_for(100 + n);
    std::thread::sleep(Duration::from_millis(300));
    let order = sink_order(sink.dir.path());
    // the lone sends before the fault took hold were ACKed and run
    let before: Vec<String> = (1..n).map(|i| format!("S{i}")).collect();
    assert!(!order.contains(&first_refused));
    let mut expected = before;
    expected.push("R0".to_string());
    expected.extend(accepted);
    assert_eq!(
        order, expected,
        "no refused frame ran; the accepted ones in order"
    );
    hie.stop();
}

#[test]
fn a_corrupt_or_foreign_store_file_stops_hie_run_with_a_clear_message() {
    let mut hie = Durable::new(direct(1), &[]);
    let file = hie.store_file();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "these are not the pages of a database\n".repeat(200)).unwrap();
    let p = hie.spawn();
    let status = p.wait_exit(Duration::from_secs(60));
    let out = p.dump();
    assert!(!status.success(), "hie run must fail on a corrupt store:\n{out}");
    assert!(out.contains(file.to_str().unwrap()), "names the file:\n{out}");
    assert!(out.contains("is corrupt"), "{out}");
    assert!(
        out.contains("restore it from a backup"),
        "says what to do:\n{out}"
    );

    std::fs::remove_file(&file).unwrap();
    let other = rusqlite::Connection::open(&file).unwrap();
    other.execute_batch("CREATE TABLE invoices (id INTEGER)").unwrap();
    drop(other);
    let p = hie.spawn();
    let status = p.wait_exit(Duration::from_secs(60));
    let out = p.dump();
    assert!(
        !status.success(),
        "hie run must fail on a foreign database:\n{out}"
    );
    assert!(out.contains("is not a HIE store"), "{out}");
    assert!(out.contains("choose another data directory"), "{out}");
}

#[test]
fn application_mode_resend_while_in_progress_gets_ar_then_aa_once_done() {
    let sink = Sink::start("sink");
    let mut hie = Durable::new(
        |port| {
            direct(sink.port)(port).replace(
                r#"ack_mode = "commit""#,
                r#"ack_mode = "application", ack_timeout = "500ms""#,
            )
        },
        &[],
    );
    hie.start();
    assert_eq!(support::control(&hie.control, "pause out"), "ok");
    let mut conn = Conn::open(hie.port, Duration::from_secs(10)).unwrap();
    let first = conn.call(adt("A1").as_bytes()).unwrap();
    assert_eq!(msa(&first).0, "AE", "the route did not finish within ack_timeout");
    let again = conn.call(adt("A1").as_bytes()).unwrap();
    let (code, text) = msa(&again);
    assert_eq!(code, "AR");
    assert!(
        text.contains("in-progress") && text.contains("send it again later"),
        "{text}"
    );

    assert_eq!(support::control(&hie.control, "resume out"), "ok");
    sink.wait_for(1);
    let done = eventually(
        "a re-send to get AA once the first copy is done",
        Duration::from_secs(10),
        || {
            let ack = conn.call(adt("A1").as_bytes())?;
            (msa(&ack).0 == "AA").then_some(ack)
        },
    );
    assert_eq!(msa(&done).0, "AA");
    assert_eq!(msa(&conn.call(adt("A2").as_bytes()).unwrap()).0, "AA");
    sink.wait_for(2);
    assert_eq!(sink_order(sink.dir.path()), ["A1", "A2"], "A1 was delivered once");
    hie.stop();
}
