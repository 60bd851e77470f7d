//! End to end with the real `hie run` and test plugins (`plugins/testing/engine-*`):
//! request/reply between items, hooks, restarts, pause/resume, keyed order, validate.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::*;

/// An inbound service in accept mode feeding `first`, and an operation `out` to `sink`.
fn frame(inbound: u16, sink: u16, first: &str, middle: &str) -> String {
    format!(
        r#"
[production]
name = "e2e"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound} }}
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

#[test]
fn sync_request_reply_between_two_items() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "requester"
kind = "process"
plugin = "engine-requester"
settings = { target = "responder", timeout_ms = "5000" }
targets = ["out"]

[[items]]
name = "responder"
kind = "process"
plugin = "engine-responder"
settings = { tag = "answered" }
"#;
    let _p = Production::run(
        &frame(inbound, sink.port, "requester", middle),
        &["engine-requester", "engine-responder"],
        Some(inbound),
    );
    let msg = hl7("ADT^A01", "R1", "P1");
    assert_eq!(ack_code(&mllp_call(inbound, msg.as_bytes())).0, "AA");
    let got = sink.wait_for(1);
    assert_eq!(String::from_utf8_lossy(&got[0]), format!("{msg}ZRS|answered\r"));
}

#[test]
fn async_request_reply_comes_back_through_on_reply() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "requester"
kind = "process"
plugin = "engine-requester"
settings = { target = "responder", mode = "async" }
targets = ["out"]

[[items]]
name = "responder"
kind = "process"
plugin = "engine-responder"
"#;
    let _p = Production::run(
        &frame(inbound, sink.port, "requester", middle),
        &["engine-requester", "engine-responder"],
        Some(inbound),
    );
    let msg = hl7("ADT^A01", "R2", "P1");
    assert_eq!(ack_code(&mllp_call(inbound, msg.as_bytes())).0, "AA");
    assert_eq!(
        String::from_utf8_lossy(&sink.wait_for(1)[0]),
        format!("{msg}ZRS|replied\r")
    );
}

/// `hook-call` log lines of the production, in order.
fn hook_calls(p: &Production) -> Vec<String> {
    p.proc
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .filter_map(|m| m.strip_prefix("hook-call ").map(str::to_owned))
        .collect()
}

#[test]
fn every_hook_fires_in_the_documented_order() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[hooks]]
name = "first"
plugin = "engine-hook-log"
settings = { name = "h1" }

[[hooks]]
name = "second"
plugin = "engine-hook-log"
settings = { name = "h2" }

[[items]]
name = "work"
kind = "process"
plugin = "engine-faulty"
hooks = ["first", "second"]
targets = ["out"]
restart = { max_restarts = 10 }
"#;
    let p = Production::run(
        &frame(inbound, sink.port, "work", middle),
        &["engine-faulty", "engine-hook-log"],
        Some(inbound),
    );
    assert_eq!(
        ack_code(&mllp_call(inbound, hl7("ADT^A01", "H1", "P1").as_bytes())).0,
        "AA"
    );
    sink.wait_for(1);
    let expected_ok = [
        "h1 before-process work",
        "h2 before-process work",
        "h1 after-process work",
        "h2 after-process work",
        "h1 before-send work->out",
        "h2 before-send work->out",
        "h1 after-send work->out ok",
        "h2 after-send work->out ok",
    ];
    eventually("hooks logged", Duration::from_secs(10), || {
        (hook_calls(&p).len() >= 8).then_some(())
    });
    assert_eq!(hook_calls(&p), expected_ok);
    assert_eq!(
        ack_code(&mllp_call(inbound, hl7("ADT^A01", "H2", "CRASH").as_bytes())).0,
        "AA"
    );
    eventually("error hooks logged", Duration::from_secs(10), || {
        (hook_calls(&p).len() >= 12).then_some(())
    });
    assert_eq!(
        hook_calls(&p)[8..],
        [
            "h1 before-process work",
            "h2 before-process work",
            "h1 process-error work trap",
            "h2 process-error work trap"
        ]
    );
}

#[test]
fn a_failing_item_restarts_per_its_policy_and_the_others_go_on() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "fragile"
kind = "process"
plugin = "engine-faulty"
restart = { policy = "on-failure", max_restarts = 2, within = "60s", backoff = "50ms", max_backoff = "1s" }
targets = ["out"]
"#;
    let p = Production::run(
        &frame(inbound, sink.port, "fragile", middle),
        &["engine-faulty"],
        Some(inbound),
    );
    let instances = |p: &Production| p.proc.lines_with("faulty instance started").len();
    eventually("first instance", Duration::from_secs(10), || {
        (instances(&p) == 1).then_some(())
    });
    for (i, expect_instances) in [(0, 2), (1, 3)] {
        mllp_call(inbound, hl7("ADT^A01", &format!("C{i}"), "CRASH").as_bytes());
        eventually("a fresh instance after backoff", Duration::from_secs(10), || {
            (instances(&p) == expect_instances).then_some(())
        });
        mllp_call(inbound, hl7("ADT^A01", &format!("OK{i}"), "P1").as_bytes());
        sink.wait_for(i + 1);
    }
    assert_eq!(
        p.proc.lines_with("worker restarting").len(),
        2,
        "{}",
        p.proc.dump()
    );
    // a third crash within the window exceeds max_restarts: the item fails
    mllp_call(inbound, hl7("ADT^A01", "C2", "CRASH").as_bytes());
    eventually("item failed", Duration::from_secs(10), || {
        p.control("status").contains("fragile=Failed").then_some(())
    });
    // the log line travels through a pipe reader thread, so it may trail the status
    eventually("the item-failed log line", Duration::from_secs(10), || {
        (!p.proc.lines_with("item failed").is_empty()).then_some(())
    });
    assert_eq!(p.proc.lines_with("item failed").len(), 1);
    let letters = p.control("dead-letters");
    assert_eq!(letters.matches(":fragile:trap").count(), 3, "{letters}");
    // messages wait in the failed item's queue; an operator restart resumes it
    mllp_call(inbound, hl7("ADT^A01", "LATE", "P1").as_bytes());
    assert_eq!(p.control("restart fragile"), "ok");
    assert_eq!(sink.wait_for(3).len(), 3);
}

#[test]
fn pause_holds_messages_and_resume_releases_them() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "work"
kind = "process"
plugin = "engine-faulty"
targets = ["out"]
"#;
    let p = Production::run(
        &frame(inbound, sink.port, "work", middle),
        &["engine-faulty"],
        Some(inbound),
    );
    assert_eq!(p.control("pause work"), "ok");
    for i in 0..3 {
        assert_eq!(
            ack_code(&mllp_call(
                inbound,
                hl7("ADT^A01", &format!("P{i}"), "P1").as_bytes()
            ))
            .0,
            "AA"
        );
    }
    eventually("three messages wait", Duration::from_secs(10), || {
        p.control("status").contains("work=Paused/depth:3").then_some(())
    });
    assert!(sink.messages().is_empty(), "a paused item must not deliver");
    assert_eq!(p.control("resume work"), "ok");
    assert_eq!(sink.wait_for(3).len(), 3);
}

#[test]
fn keyed_queue_keeps_fifo_per_key_with_four_workers() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let middle = r#"
[[items]]
name = "work"
kind = "process"
plugin = "engine-faulty"
pool_size = 4
queue = { kind = "keyed", key = "PID-3" }
settings = { delay_ms = "3" }
targets = ["out"]
"#;
    let _p = Production::run(
        &frame(inbound, sink.port, "work", middle),
        &["engine-faulty"],
        Some(inbound),
    );
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..60 {
        let key = format!("K{}", i % 5);
        let id = format!("M{i:03}");
        mllp_call(inbound, hl7("ADT^A08", &id, &key).as_bytes());
        sent.entry(key).or_default().push(id);
    }
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    for m in sink.wait_for(60) {
        let text = String::from_utf8(m).unwrap();
        let id = text.split('|').nth(9).unwrap().to_string();
        let key = text
            .split('\r')
            .nth(1)
            .unwrap()
            .split('|')
            .nth(3)
            .unwrap()
            .to_string();
        got.entry(key).or_default().push(id);
    }
    assert_eq!(got, sent, "each key's messages arrive in the order sent");
}

#[test]
fn validate_reports_every_error_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("production.toml");
    std::fs::write(
        &file,
        r#"[production]
name = "bad"

[[items]]
name = "in"
kind = "service"
adapter = { type = "mllp-in", port = 2575 }
targets = ["nowhere"]

[[items]]
name = "in2"
kind = "service"
adapter = { type = "mllp-in", port = 2575 }
colour = "red"

[[items]]
name = "router"
kind = "process"
plugin = "missing-plugin"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(hie_bin())
        .args(["validate", dir.path().to_str().unwrap()])
        .env("HIE_PLUGIN_PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        stderr.contains(&format!(
            "{f}:8:12: items[in].targets[0]: unknown target \"nowhere\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{f}:14:1: items[in2]: unknown field \"colour\"")),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors found"), "{stderr}");

    // fixed, but the plugin file does not exist: that is the next step's error
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("targets = [\"nowhere\"]", "targets = [\"router\"]")
        .replace("port = 2575 }\ncolour = \"red\"", "port = 2576 }");
    std::fs::write(&file, fixed).unwrap();
    let out = std::process::Command::new(hie_bin())
        .args(["validate", file.to_str().unwrap()])
        .env("HIE_PLUGIN_PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{f}:18: items[router].plugin: plugin \"missing-plugin\" not found"
        )),
        "{stderr}"
    );

    // and the demo production is valid
    let plugins = plugin_dir(&["hl7-router", "hl7-mapper"]);
    let demo = std::path::Path::new(
        &std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../productions/adt-demo");
    let out = std::process::Command::new(hie_bin())
        .args(["validate", demo.to_str().unwrap()])
        .env("HIE_PLUGIN_PATH", plugins)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
