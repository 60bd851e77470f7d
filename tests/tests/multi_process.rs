//! `multi_process` execution end to end: the real `hie run` starts `hie worker`
//! processes; the tests kill them (and the engine) with SIGKILL and check that
//! no message is lost, poison messages are dead-lettered, and no worker process
//! is left behind. Loopback only; every process they start ends with the test.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::*;

/// Messages of the kill test, as the issue asks. A debug build on the loaded
/// 2-core machine moved 5,000 in 4 s with 19 kills (about 1,300 msg/s), so
/// 20,000 takes well under a minute. Set `HIE_MP_MESSAGES` to run fewer or more.
const KILL_TEST_MESSAGES: usize = 20_000;

/// `in` (MLLP, accept mode) → `work` (passthrough in `hie worker` processes) → `out` (MLLP to the sink).
fn production(inbound: u16, sink: u16, work_extra: &str) -> String {
    format!(
        r#"
[production]
name = "multi-process"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound} }}
targets = ["work"]

[[items]]
name = "work"
kind = "process"
plugin = "passthrough"
execution = {{ mode = "multi_process", processes = 2, threads = 1 }}
restart = {{ policy = "always", max_restarts = 100000, within = "60s", backoff = "10ms", max_backoff = "50ms" }}
targets = ["out"]
{work_extra}

[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {sink} }}
execution = {{ mode = "single_process" }}
"#
    )
}

/// `(pid, ppid, state)` of every process whose command line is `hie worker … --item ITEM` for `production_dir`.
fn workers(production_dir: &Path, item: &str) -> Vec<(i32, i32, char)> {
    let needle = production_dir.to_string_lossy().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_worker = args.get(1).is_some_and(|a| a == "worker")
            && args.iter().any(|a| a.contains(&needle))
            && args.windows(2).any(|w| w[0] == "--item" && w[1] == item);
        if !is_worker {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) S ppid ..."; comm may hold spaces, so split after the last ')'
        let rest = stat.rsplit_once(')').map(|(_, r)| r.trim()).unwrap_or("");
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        found.push((pid, ppid, state));
    }
    found
}

/// Pids of live (not zombie) workers of `item`.
fn live_workers(dir: &Path, item: &str) -> Vec<i32> {
    workers(dir, item)
        .into_iter()
        .filter(|(_, _, state)| *state != 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Zombie children of `parent`.
fn zombies_of(parent: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default();
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if state == "Z" && ppid == parent {
            found.push(entry.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    found
}

/// MSH-10 of an HL7 message.
fn control_id(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.split('\r')
        .next()
        .and_then(|msh| msh.split('|').nth(9))
        .unwrap_or_default()
        .to_string()
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

/// `hie send`, killed and reaped if the test ends early.
struct Sender(std::process::Child);

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small xorshift generator, so the victim choice needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn kill_9_of_random_workers_loses_no_message() {
    let count: usize = std::env::var("HIE_MP_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KILL_TEST_MESSAGES);
    let sink = Sink::start("sink");
    let inbound = free_port();
    // a message may meet several kills in a row; the poison-message limit is not under test here
    let extra = r#"settings = { "worker.max_attempts" = "20" }"#;
    let p = Production::run(
        &production(inbound, sink.port, extra),
        &["passthrough"],
        Some(inbound),
    );
    let engine_pid = eventually("two worker processes", Duration::from_secs(30), || {
        let w = workers(p.dir.path(), "work");
        (w.len() == 2).then(|| w[0].1)
    });

    let mut sender = Sender(
        std::process::Command::new(hie_bin())
            .args([
                "send",
                &format!("127.0.0.1:{inbound}"),
                "--generate",
                &count.to_string(),
                "--connections",
                "4",
                "--window",
                "16",
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("hie send starts"),
    );
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut kills = 0u32;
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = sender.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hie send did not finish within 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
        let pids = live_workers(p.dir.path(), "work");
        if pids.is_empty() {
            continue;
        }
        let victim = pids[(rng.next() % pids.len() as u64) as usize];
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(victim), Signal::SIGKILL).is_ok() {
            kills += 1;
        }
        assert!(alive(engine_pid), "the engine died:\n{}", p.proc.dump());
    };
    let sent_in = started.elapsed();
    let mut report = String::new();
    if let Some(mut out) = sender.0.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut report);
    }
    assert!(status.success(), "hie send failed ({status}): {report}");

    let got = eventually(
        &format!("the sink to receive {count} messages"),
        Duration::from_secs(120),
        || {
            let m = sink.messages();
            (m.len() >= count).then_some(m)
        },
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in &got {
        *seen.entry(control_id(m)).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let expected: BTreeSet<usize> = (0..count).collect();
    let indexes: BTreeSet<usize> = seen
        .keys()
        .filter_map(|id| id.get(id.len().saturating_sub(8)..).and_then(|n| n.parse().ok()))
        .collect();
    let redelivered = p.proc.lines_with("redelivering it").len();
    println!(
        "multi_process kill test: {count} messages in {:.1} s with {kills} worker kills (every 200 ms); \
         {redelivered} messages redelivered after their worker died mid-call; {} control ids arrived twice; \
         sender report: {}",
        sent_in.as_secs_f64(),
        twice.len(),
        report.trim()
    );
    assert_eq!(indexes, expected, "some control ids never reached the sink");
    // passthrough sends nothing itself: a message whose worker died is only ever
    // forwarded by the engine after a complete call, so none may arrive twice
    assert!(
        twice.is_empty(),
        "control ids delivered more than once: {twice:?}"
    );
    assert!(kills >= 3, "the test killed only {kills} workers");
    assert!(alive(engine_pid), "the engine died:\n{}", p.proc.dump());
    assert!(
        p.control("status").contains("work=Running"),
        "{}",
        p.control("status")
    );

    // a restarted worker takes its place; dead ones were reaped
    eventually("two worker processes again", Duration::from_secs(30), || {
        (live_workers(p.dir.path(), "work").len() == 2).then_some(())
    });
    eventually("no zombie children of the engine", Duration::from_secs(5), || {
        zombies_of(engine_pid).is_empty().then_some(())
    });
    let mut p = p;
    p.proc.signal(Signal::SIGTERM);
    assert!(
        p.proc.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.proc.dump()
    );
    eventually(
        "no hie worker left after the engine stopped",
        Duration::from_secs(5),
        || workers(p.dir.path(), "work").is_empty().then_some(()),
    );
}

#[test]
fn kill_9_of_the_engine_takes_its_workers_down() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let mut p = Production::run(
        &production(inbound, sink.port, ""),
        &["passthrough"],
        Some(inbound),
    );
    let pids = eventually("two worker processes", Duration::from_secs(30), || {
        let w = live_workers(p.dir.path(), "work");
        (w.len() == 2).then_some(w)
    });
    let killed = Instant::now();
    p.proc.signal(Signal::SIGKILL);
    p.proc.wait_exit(Duration::from_secs(5));
    eventually(
        "every worker to exit after the engine was killed",
        Duration::from_secs(5),
        || {
            pids.iter()
                .all(|pid| {
                    !Path::new(&format!("/proc/{pid}")).exists()
                        || live_workers(p.dir.path(), "work").is_empty()
                })
                .then_some(())
        },
    );
    println!(
        "workers {pids:?} gone {} ms after kill -9 of the engine",
        killed.elapsed().as_millis()
    );
    assert!(
        workers(p.dir.path(), "work").iter().all(|(_, _, s)| *s == 'Z')
            || workers(p.dir.path(), "work").is_empty()
    );
}

#[test]
fn a_message_that_kills_its_worker_is_dead_lettered_after_max_attempts() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let extra = r#"settings = { "worker.test_abort_on" = "POISON", "worker.max_attempts" = "3" }"#;
    let p = Production::run(
        &production(inbound, sink.port, extra),
        &["passthrough"],
        Some(inbound),
    );
    for n in 0..10 {
        let ack = mllp_call(inbound, hl7("ADT^A01", &format!("OK{n}"), "P1").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
    }
    let poison = hl7("ADT^A01", "BAD1", "POISON");
    assert_eq!(ack_code(&mllp_call(inbound, poison.as_bytes())).0, "AA");
    for n in 10..20 {
        let ack = mllp_call(inbound, hl7("ADT^A01", &format!("OK{n}"), "P1").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
    }
    let letters = eventually(
        "the poison message in the dead-letter queue",
        Duration::from_secs(60),
        || {
            let l = p.control("dead-letters");
            l.contains(":work:worker-died").then_some(l)
        },
    );
    assert_eq!(
        letters.matches(":work:").count(),
        1,
        "only the poison message is dead-lettered: {letters}"
    );
    let got = sink.wait_for(20);
    let ids: BTreeSet<String> = got.iter().map(|m| control_id(m)).collect();
    let want: BTreeSet<String> = (0..20).map(|n| format!("OK{n}")).collect();
    assert_eq!(ids, want);
    let deaths = p.proc.lines_with("worker process failed").len();
    assert!(
        deaths >= 3,
        "the poison message killed {deaths} workers, expected 3:\n{}",
        p.proc.dump()
    );
    assert!(
        p.proc.lines_with("test_abort_on matched").len() >= 3,
        "the workers' own stderr lands in the engine log"
    );
    assert!(p.control("status").contains("work=Running"));
}

#[test]
fn a_worker_that_stops_answering_heartbeats_is_killed_and_replaced() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let extra = r#"settings = { "worker.heartbeat_ms" = "100", "worker.heartbeat_timeout_ms" = "1000" }"#;
    let p = Production::run(
        &production(inbound, sink.port, extra),
        &["passthrough"],
        Some(inbound),
    );
    // both workers past their handshake (a worker stopped while it still compiles
    // its plugin fails its start timeout instead, which is another test)
    eventually("two worker processes ready", Duration::from_secs(60), || {
        (p.proc.lines_with("worker process ready").len() >= 2).then_some(())
    });
    let before = live_workers(p.dir.path(), "work");
    assert_eq!(before.len(), 2, "{}", p.proc.dump());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(before[0]), Signal::SIGSTOP).unwrap();
    // traffic while it is stopped: 64 KiB messages fill its socket, so a writer
    // blocks on it; the supervisor must still notice the silence
    let big = "X".repeat(64 * 1024);
    let senders: Vec<_> = (0..8)
        .map(|n| {
            let msg = format!("{}OBX|1|TX|||{big}\r", hl7("ADT^A01", &format!("BIG{n}"), "P2"));
            std::thread::spawn(move || ack_code(&mllp_call(inbound, msg.as_bytes())).0)
        })
        .collect();
    eventually("the stopped worker to be killed", Duration::from_secs(20), || {
        let gone = p.proc.lines_with("missed heartbeats").len()
            + p.proc.lines_with("cannot write to the worker").len();
        (gone > 0).then_some(())
    });
    for s in senders {
        assert_eq!(s.join().unwrap(), "AA");
    }
    eventually("a new worker in its place", Duration::from_secs(30), || {
        let now = live_workers(p.dir.path(), "work");
        (now.len() == 2 && !now.contains(&before[0])).then_some(())
    });
    for n in 0..5 {
        let ack = mllp_call(inbound, hl7("ADT^A01", &format!("HB{n}"), "P1").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
    }
    // the 8 held by the stopped worker were redelivered; none is lost
    assert_eq!(sink.wait_for(13).len(), 13);
    let status = p.control("status");
    assert!(status.contains("work=Running"), "{status}");
}

#[test]
fn unknown_worker_settings_are_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let toml = production(
        free_port(),
        free_port(),
        r#"settings = { "worker.max_attempt" = "3" }"#,
    );
    std::fs::write(dir.path().join("production.toml"), toml).unwrap();
    let plugin_path = plugin_dir(&["passthrough"]);
    let out = std::process::Command::new(hie_bin())
        .args(["validate", dir.path().to_str().unwrap()])
        .env("HIE_PLUGIN_PATH", &plugin_path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("production.toml:")
            && text.contains("worker.max_attempt")
            && text.contains("max_attempts"),
        "{text}"
    );
}
