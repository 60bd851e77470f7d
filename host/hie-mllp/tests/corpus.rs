//! Malformed input on the wire, one case per kind, each with the reply a sender sees.
//!
//! The listener runs `hie listen`'s sink handler; after every case that keeps the
//! connection open, a valid message on the same connection must still get its AA.

mod common;

use std::sync::Arc;

use common::*;
use hie_hl7::ack::AckCode;
use hie_mllp::codec::{CodecConfig, frame};
use hie_mllp::server::ListenerConfig;
use hie_mllp::tools::Sink;

/// What the sender must see after writing a case's bytes.
enum Expect {
    /// A reply with this code whose text contains the fragment; the connection stays open.
    Reply(AckCode, &'static str),
    /// An AR containing the fragment, then the connection closes.
    RejectAndClose(&'static str),
}

struct Case {
    name: &'static str,
    wire: Vec<u8>,
    expect: Expect,
}

const MAX_FRAME: usize = 64 * 1024;

fn framed(payload: &[u8]) -> Vec<u8> {
    frame(payload)
}

fn corpus() -> Vec<Case> {
    let binary: Vec<u8> = (0u16..2048)
        .map(|i| (i.wrapping_mul(151) % 251) as u8)
        .filter(|b| ![0x0b, 0x1c].contains(b))
        .collect();
    let mut oversize = vec![0x0b];
    oversize.extend(adt("BIG"));
    oversize.extend(std::iter::repeat_n(b'Z', MAX_FRAME + 1));
    let mut junk_then_frame = b"\x00\xff\r\nGET / HTTP/1.1\r\n".to_vec();
    junk_then_frame.extend(framed(&adt("AFTERJUNK")));
    let mut no_trailing_cr = vec![0x0b];
    no_trailing_cr.extend(adt("NOCR"));
    no_trailing_cr.push(0x1c);
    vec![
        Case {
            name: "truncated msh",
            wire: framed(b"MSH|^~"),
            expect: Expect::Reply(AckCode::AR, "MSH"),
        },
        Case {
            name: "msh without its required fields",
            wire: framed(b"MSH|^~\\&|A|B\r"),
            expect: Expect::Reply(AckCode::AR, "MSH"),
        },
        Case {
            name: "wrong delimiters (repeated encoding character)",
            wire: framed(b"MSH|^^\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\r"),
            expect: Expect::Reply(AckCode::AR, "MSH-2"),
        },
        Case {
            name: "field separator is a letter",
            wire: framed(b"MSHA^~\\&AAABACAD"),
            expect: Expect::Reply(AckCode::AR, "MSH-1"),
        },
        Case {
            name: "binary junk in a frame",
            wire: framed(&binary),
            expect: Expect::Reply(AckCode::AR, ""),
        },
        Case {
            name: "does not start with msh",
            wire: framed(b"PID|1||123\r"),
            expect: Expect::Reply(AckCode::AR, "MSH"),
        },
        Case {
            name: "batch header instead of a message",
            wire: framed(b"FHS|^~\\&\rMSH|^~\\&|A|B|C|D|20240101||ADT^A01|X2|P|2.5\r"),
            expect: Expect::Reply(AckCode::AR, "batch"),
        },
        Case {
            name: "nul byte inside a segment",
            wire: framed(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X3|P|2.5\rPID|1|\x00|\r"),
            expect: Expect::Reply(AckCode::AR, "0x00"),
        },
        Case {
            name: "unsupported character set",
            wire: framed(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X4|P|2.5||||||KOI8-R\r"),
            expect: Expect::Reply(AckCode::AR, "unsupported character set"),
        },
        Case {
            name: "zero-length frame",
            wire: framed(b""),
            expect: Expect::Reply(AckCode::AR, "empty frame"),
        },
        Case {
            name: "junk before the start block",
            wire: junk_then_frame,
            expect: Expect::Reply(AckCode::AA, ""),
        },
        Case {
            name: "missing carriage return after the end block",
            wire: no_trailing_cr,
            expect: Expect::Reply(AckCode::AA, ""),
        },
        Case {
            name: "oversize frame",
            wire: oversize,
            expect: Expect::RejectAndClose("65536"),
        },
    ]
}

#[tokio::test]
async fn every_malformed_input_gets_the_expected_reply() {
    let config = ListenerConfig {
        codec: CodecConfig {
            max_frame_len: MAX_FRAME,
            ..CodecConfig::default()
        },
        ..ListenerConfig::default()
    };
    let server = start(config, Arc::new(Sink::new(AckCode::AA, None))).await;
    for case in corpus() {
        let mut peer = RawPeer::connect(server.addr).await;
        peer.write(&case.wire).await;
        let reply = peer.read().await;
        let Read::Frame(reply) = reply else {
            panic!("{}: connection closed without a reply", case.name)
        };
        let ack = hie_hl7::ack::parse_ack(&reply)
            .unwrap_or_else(|e| panic!("{}: reply is not an ack: {e}", case.name));
        let text = ack.text.clone().unwrap_or_default();
        match case.expect {
            Expect::Reply(code, fragment) => {
                assert_eq!(ack.code, code, "{}: {text}", case.name);
                assert!(
                    text.contains(fragment),
                    "{}: {text:?} lacks {fragment:?}",
                    case.name
                );
                peer.send(&adt("NEXT")).await;
                let next = peer.read_ack().await;
                assert_eq!(next.code, AckCode::AA, "{}: connection did not go on", case.name);
            }
            Expect::RejectAndClose(fragment) => {
                assert_eq!(ack.code, AckCode::AR, "{}", case.name);
                assert!(
                    text.contains(fragment),
                    "{}: {text:?} lacks {fragment:?}",
                    case.name
                );
                assert_eq!(
                    peer.read().await,
                    Read::Closed,
                    "{}: connection stayed open",
                    case.name
                );
            }
        }
    }
    server.stop().await;
}
