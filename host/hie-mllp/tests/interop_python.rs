//! Interoperability with an independent MLLP implementation: the Python `hl7` package
//! (0.4.5), installed into a venv under the target directory on first use
//! (`hie_tests::hl7_python`).
//!
//! - its `mllp_send` CLI and `hl7.client.MLLPClient` send to our listener;
//! - its asyncio MLLP server (`hl7.mllp.start_hl7_server`) answers our `send` and client.
//!
//! If Python or the package index cannot be reached, the tests print why and pass
//! without checking anything (there is nothing independent to talk to).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hie_hl7::ack::AckCode;
use hie_mllp::client::{ClientConfig, MllpClient};
use hie_mllp::server::ListenerConfig;
use hie_mllp::tools::{ListenOptions, ListenSession, SendOptions, generate_adt_a01, send};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The venv's python with `hl7` importable, or why there is none (shared with the
/// e2e bench's Python peer: `hie_tests::hl7_python`).
fn python() -> Result<&'static Path, &'static str> {
    hie_tests::hl7_python()
}

macro_rules! python_or_skip {
    () => {
        match python() {
            Ok(python) => python,
            Err(reason) => {
                eprintln!("skipping python interop test: {reason}");
                return;
            }
        }
    };
}

async fn run(python: &Path, args: &[&str]) -> std::process::Output {
    let child = Command::new(python).args(args).kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("python finishes within a minute")
        .expect("python runs")
}

#[tokio::test]
async fn python_mllp_send_gets_acks_from_our_listener() {
    let python = python_or_skip!();
    let session = ListenSession::start(ListenOptions {
        addr: loopback(),
        ack_code: AckCode::AA,
        out_dir: None,
        listener: ListenerConfig::default(),
    })
    .await
    .expect("listen");
    let port = session.local_addr().port().to_string();

    // `mllp_send` reads MLLP-framed messages from a file and prints each raw reply.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("messages.mllp");
    let mut framed = Vec::new();
    for id in ["PY1", "PY2", "PY3"] {
        framed.extend(hie_mllp::codec::frame(&adt(id)));
    }
    std::fs::write(&file, framed).expect("write");
    let mllp_send = python.with_file_name("mllp_send");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(&mllp_send)
            .args(["--port", &port, "--file"])
            .arg(&file)
            .arg("127.0.0.1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("mllp_send finishes")
    .expect("mllp_send runs");
    assert!(
        out.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for id in ["PY1", "PY2", "PY3"] {
        assert!(
            stdout.contains(&format!("MSA|AA|{id}")),
            "no AA for {id} in {stdout:?}"
        );
    }

    // The python parser reads our ACK (and NAK) as HL7.
    let script = r#"
import sys, hl7
from hl7.client import MLLPClient
with MLLPClient("127.0.0.1", int(sys.argv[1])) as c:
    for msg in (sys.argv[2], "not hl7"):
        reply = c.send_message(msg.encode()).strip(b"\x0b\x1c\r").decode()
        ack = hl7.parse(reply)
        print(ack.segment("MSA")[1], ack.segment("MSA")[2])
"#;
    let message = String::from_utf8(adt("PY4")).expect("ascii");
    let out = run(python, &["-c", script, &port, &message]).await;
    assert!(
        out.status.success(),
        "MLLPClient script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "AA PY4\nAR \n");

    let report = session.stop().await.expect("stop");
    assert_eq!(
        (report.sink.messages, report.sink.acked, report.sink.rejected),
        (5, 4, 1)
    );
}

/// An ACK server written with the python package's asyncio MLLP streams.
const PY_SERVER: &str = r#"
import asyncio, os, signal, sys
from hl7.mllp import start_hl7_server

signal.alarm(120)  # never outlive a stuck test

async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()

async def main():
    server = await start_hl7_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    os._exit(0)

asyncio.run(main())
"#;

#[tokio::test]
async fn our_send_and_client_get_acks_from_the_python_server() {
    let python = python_or_skip!();
    let mut server = Command::new(python)
        .args(["-c", PY_SERVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python server starts");
    let stdout = server.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("the python server prints its port")
        .expect("read port");
    let addr = format!("127.0.0.1:{}", line.trim());

    let opts = SendOptions {
        client: ClientConfig::new(addr.clone()),
        connections: 2,
        window: 4,
    };
    let report = send(generate_adt_a01(200, "PYS"), &opts, Arc::default()).await;
    assert_eq!(report.ack_codes.get("AA"), Some(&200), "{}", report.to_text());
    assert_eq!(report.control_id_mismatches, 0);
    assert!(report.errors.is_empty());

    let mut client = MllpClient::new(ClientConfig::new(addr));
    let reply = client.call(&adt("PYC1")).await.expect("reply");
    let ack = hie_hl7::ack::parse_ack(&reply).expect("python's ack parses");
    assert_eq!((ack.code, ack.control_id.as_deref()), (AckCode::AA, Some("PYC1")));

    drop(server.stdin.take());
    let status = tokio::time::timeout(DEADLINE, server.wait())
        .await
        .expect("server exits")
        .expect("wait");
    assert!(status.success());
}
