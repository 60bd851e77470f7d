//! End to end: the `adt-demo` production under the real `hie run`, with
//! `hie listen` sinks, over MLLP on 127.0.0.1 (free ports, so tests run in parallel).

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

/// `productions/adt-demo/production.toml` with its ports moved to free ones.
fn adt_demo(inbound: u16, pas: u16, ris: u16, lab: u16) -> String {
    let path =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
            .join("../productions/adt-demo/production.toml");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("port = 2575", &format!("port = {inbound}"))
        .replace("port = 2576", &format!("port = {pas}"))
        .replace("port = 2577", &format!("port = {ris}"))
        .replace("port = 2578", &format!("port = {lab}"))
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
            .join("../productions/adt-demo/messages")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_route_delivers_to_the_right_sink_with_exactly_the_intended_changes() {
    let (pas, ris, lab) = (Sink::start("pas"), Sink::start("ris"), Sink::start("lab"));
    let inbound = free_port();
    let production = Production::run(
        &adt_demo(inbound, pas.port, ris.port, lab.port),
        &["hl7-router", "hl7-mapper"],
        Some(inbound),
    );

    let adts = ["adt_a01.hl7", "adt_a04.hl7", "adt_a08.hl7"].map(sample);
    for adt in &adts {
        assert_eq!(
            ack_code(&mllp_call(inbound, adt)).0,
            "AA",
            "{}",
            production.proc.dump()
        );
    }
    let oru = sample("oru_r01.hl7");
    assert_eq!(ack_code(&mllp_call(inbound, &oru)).0, "AA");
    let (code, text) = ack_code(&mllp_call(inbound, &sample("siu_s12_unrouted.hl7")));
    assert_eq!(code, "AE");
    assert!(text.contains("no-route"), "MSA-3 names the failure: {text:?}");

    // ADT reaches pas and ris byte for byte, in order
    assert_eq!(pas.wait_for(3), adts.to_vec());
    assert_eq!(ris.wait_for(3), adts.to_vec());
    // ORU reaches lab with MSH-5 changed to LAB and nothing else
    let expected = String::from_utf8(oru).unwrap().replacen("|EHR|", "|LAB|", 1);
    assert_eq!(lab.wait_for(1), vec![expected.into_bytes()]);

    let letters = production.control("dead-letters");
    assert!(letters.starts_with("ok "), "{letters}");
    let entries: Vec<&str> = letters["ok ".len()..].split_whitespace().collect();
    assert_eq!(entries.len(), 1, "{letters}");
    assert!(entries[0].ends_with(":router:no-route"), "{letters}");
    // nothing went anywhere else
    assert_eq!(pas.messages().len(), 3);
    assert_eq!(lab.messages().len(), 1);
}

#[test]
fn a_sink_that_is_down_delays_only_its_own_route() {
    let (pas, ris) = (Sink::start("pas"), Sink::start("ris"));
    let lab_port = free_port(); // nothing listens here until later
    let inbound = free_port();
    let production = Production::run(
        &adt_demo(inbound, pas.port, ris.port, lab_port),
        &["hl7-router", "hl7-mapper"],
        Some(inbound),
    );
    assert_eq!(ack_code(&mllp_call(inbound, &sample("oru_r01.hl7"))).0, "AA");
    assert_eq!(ack_code(&mllp_call(inbound, &sample("adt_a01.hl7"))).0, "AA");
    // the ADT route is not held up by the lab retrying
    pas.wait_for(1);
    ris.wait_for(1);
    // lab comes up while its operation retries: the message gets there
    let lab = {
        let dir = tempfile::tempdir().unwrap();
        let proc = Proc::hie(
            "lab",
            &[
                "listen",
                &lab_port.to_string(),
                "--out",
                dir.path().to_str().unwrap(),
                "--every",
                "0s",
            ],
            &[],
        );
        (dir, proc)
    };
    eventually("the retried ORU reaches lab", Duration::from_secs(20), || {
        let n = std::fs::read_dir(lab.0.path()).ok()?.count();
        (n == 1).then_some(())
    });
    drop(production);
}

#[test]
fn sigterm_with_messages_in_flight_drains_them_and_exits_zero() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let toml = format!(
        r#"
[production]
name = "drain"
drain_timeout = "20s"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound} }}
targets = ["slow"]

[[items]]
name = "slow"
kind = "process"
plugin = "engine-faulty"
settings = {{ delay_ms = "20" }}
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {} }}
"#,
        sink.port
    );
    let mut production = Production::run(&toml, &["engine-faulty"], Some(inbound));
    for i in 0..40 {
        let ack = mllp_call(inbound, hl7("ADT^A01", &format!("D{i:03}"), "P1").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
    }
    // 40 × 20 ms of work is queued: stop now
    let status = production.control("status");
    assert!(status.contains("slow=Running"), "{status}");
    production.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let exit = production.proc.wait_exit(Duration::from_secs(30));
    assert!(exit.success(), "exit {exit:?}\n{}", production.proc.dump());
    let got = sink.wait_for(40);
    let ids: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).split('|').nth(9).unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("D{i:03}")).collect();
    assert_eq!(ids, expected, "every message drained, in order");
    assert!(
        production.proc.lines_with("before draining").is_empty(),
        "{}",
        production.proc.dump()
    );
    assert_eq!(
        production.proc.lines_with("production stopped").len(),
        1,
        "{}",
        production.proc.dump()
    );
}
