//! Test plugin for the hie-wasm host, written against raw wit-bindgen bindings.
//!
//! The body is a command, `verb` or `verb:argument`:
//! - `echo` (or `echo:ANYTHING`): reply with the same message, after one `host.log` call
//! - `loop`: spin forever
//! - `grow`: allocate until the memory cap stops it
//! - `big:N`: reply with an N-byte body
//! - `panic`: panic (a trap: release builds abort on panic)
//! - `fail`: return a failure
//! - `read:PATH` / `write:PATH`: read or write a file, reply with the content or the error
//! - `env:NAME`: reply with the environment variable, or `unset`
//! - `host`: call every host import and reply with what came back
//! - `count`: reply with how many messages this instance has seen
//! - `fan:A,B,..`: forward to targets A, B, .. a copy whose body is the target's name
//!
//! `on-init` refuses when the setting `refuse` is present.

use std::cell::Cell;

wit_bindgen::generate!({ world: "business-process", path: "../../../wit" });

use exports::hie::plugin::item::Guest;
use hie::plugin::host;
use hie::plugin::types::{Failure, LogLevel, Message, Outcome, Routed};

struct Component;

thread_local! {
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

fn fail(code: &str, text: String) -> Failure {
    Failure {
        code: code.into(),
        text,
        retryable: false,
    }
}

fn reply(msg: &Message, body: Vec<u8>) -> Outcome {
    Outcome::Reply(Message { body, ..msg.clone() })
}

fn host_calls(msg: &Message) -> Vec<u8> {
    host::log(LogLevel::Info, "host calls start");
    let setting = host::setting("color");
    let lookup = host::lookup("facilities", "F1");
    let out = Message {
        body: b"to-b".to_vec(),
        ..msg.clone()
    };
    let sent = host::send("b", &out);
    let reply = host::send_request_sync("c", &out, 1500);
    let async_id = host::send_request_async("d", &out);
    host::counter_add("calls", 2);
    host::histogram_record("size", 1.5);
    format!(
        "setting={setting:?} lookup={lookup:?} send={:?} sync={:?} async={:?}",
        sent.map_err(|f| f.code),
        reply
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .map_err(|f| f.code),
        async_id.map_err(|f| f.code),
    )
    .into_bytes()
}

impl Guest for Component {
    fn on_init(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.iter().find(|(k, _)| k == "refuse") {
            Some((_, why)) => Err(format!("refused: {why}")),
            None => Ok(()),
        }
    }

    fn on_start() -> Result<(), String> {
        Ok(())
    }

    fn on_stop() {}

    fn on_teardown() {}

    fn on_message(msg: Message) -> Result<Outcome, Failure> {
        SEEN.with(|s| s.set(s.get() + 1));
        // only the verb is decoded up front: `echo` with a big body stays cheap
        let split = msg.body.iter().position(|&b| b == b':').unwrap_or(msg.body.len());
        let verb = String::from_utf8_lossy(&msg.body[..split]).into_owned();
        let arg = || String::from_utf8_lossy(msg.body.get(split + 1..).unwrap_or_default()).into_owned();
        match verb.as_str() {
            "echo" => {
                host::log(LogLevel::Debug, "echo");
                Ok(Outcome::Reply(msg))
            }
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let chunk = vec![1u8; std::hint::black_box(4 * 1024 * 1024)];
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "big" => {
                let arg = arg();
                let size: usize = arg
                    .parse()
                    .map_err(|_| fail("bad-message", format!("size {arg:?}")))?;
                Ok(reply(&msg, vec![b'x'; size]))
            }
            "panic" => panic!("asked to panic"),
            "fail" => Err(Failure {
                code: "asked-to-fail".into(),
                text: "as requested".into(),
                retryable: true,
            }),
            "read" => match std::fs::read(arg()) {
                Ok(content) => Ok(reply(&msg, content)),
                Err(e) => Err(fail("io", e.to_string())),
            },
            "write" => match std::fs::write(arg(), b"written") {
                Ok(()) => Ok(reply(&msg, b"written".to_vec())),
                Err(e) => Err(fail("io", e.to_string())),
            },
            "env" => Ok(reply(
                &msg,
                std::env::var(arg())
                    .unwrap_or_else(|_| "unset".into())
                    .into_bytes(),
            )),
            "host" => Ok(reply(&msg, host_calls(&msg))),
            "count" => Ok(reply(&msg, SEEN.with(|s| s.get()).to_string().into_bytes())),
            "fan" => Ok(Outcome::Forward(
                arg()
                    .split(',')
                    .map(|target| Routed {
                        target: target.to_owned(),
                        message: Message {
                            body: target.as_bytes().to_vec(),
                            ..msg.clone()
                        },
                    })
                    .collect(),
            )),
            other => Err(fail("unknown-command", format!("{other:?}"))),
        }
    }

    fn on_reply(correlation_id: String, reply: Result<Message, Failure>) -> Result<Outcome, Failure> {
        match reply {
            Ok(m) => Ok(Outcome::Pass(Message {
                body: format!("reply {correlation_id}").into_bytes(),
                ..m
            })),
            Err(f) => Err(f),
        }
    }
}

export!(Component);
