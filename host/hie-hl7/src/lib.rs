//! HL7 v2 ER7 messages: parse, field paths, escapes, character sets, batches, ACKs.
//!
//! [`Message`] is a zero-copy view over the input bytes; [`OwnedMessage`] is an editable
//! copy whose untouched parts serialize byte-exact. No I/O: this crate builds for
//! `wasm32-wasip2` and is shared with plugins through the SDK.
//!
//! ```
//! use hie_hl7::{Message, ack};
//!
//! let input = b"MSH|^~\\&|LAB|F|EMR|F|20240101||ORU^R01^ORU_R01|42|P|2.5.1\rPID|1||7^^^H^MR~8^^^N^NI||DOE^JANE\r";
//! let msg = Message::parse(input)?;
//! assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
//! assert_eq!(msg.get("PID-3(2).1")?.as_deref(), Some("8"));
//! assert_eq!(msg.to_bytes(), input);
//!
//! let mut edited = msg.to_owned_message();
//! edited.set("PID-5.2", "ANN|MARIE")?; // stored escaped as ANN\F\MARIE
//! assert_eq!(edited.get("PID-5.2")?.as_deref(), Some("ANN|MARIE"));
//!
//! let reply = ack::build_ack(&msg, ack::AckCode::AA, None);
//! assert_eq!(ack::parse_ack(&reply)?.control_id.as_deref(), Some("42"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ack;
pub mod batch;
mod charset;
mod delimiters;
mod error;
mod escape;
mod message;
mod owned;
mod path;
mod util;

pub use charset::Charset;
pub use delimiters::Delimiters;
pub use error::{ParseError, PathError};
pub use escape::{escape, unescape};
pub use message::{Component, Field, Message, ParseOptions, Repetition, Segment};
pub use owned::OwnedMessage;
pub use path::Path;

/// The fuzz entry point: runs every parser and reader on arbitrary bytes.
///
/// Errors are expected; a panic means a bug. Besides "no panic", it asserts invariants:
/// a parsed message re-parses from its own serialization to the same segments, and a
/// value set through [`OwnedMessage::set`] reads back unchanged.
pub fn fuzz_parse(data: &[u8]) {
    for opts in [
        ParseOptions::default(),
        ParseOptions {
            accept_lf: false,
            strict_charset: true,
        },
    ] {
        if let Ok(message) = Message::parse_with(data, &opts) {
            exercise(&message, &opts);
        }
    }
    if let Ok(parts) = batch::split(data) {
        for part in parts {
            let _ = Message::parse(part);
        }
    }
    let _ = ack::parse_ack(data);
    let _ = unescape(data, &Delimiters::default());
}

const FUZZ_PATHS: &[&str] = &[
    "MSH-1",
    "MSH-2",
    "MSH-9.2",
    "MSH-18",
    "PID-3(2).1",
    "PID-5.1.1",
    "OBX(3)-5",
    "ZZZ-1",
];

fn exercise(message: &Message<'_>, opts: &ParseOptions) {
    for path in FUZZ_PATHS {
        let _ = message.get(path);
        let _ = message.get_raw(path);
    }
    for segment in message.segments() {
        for field in segment.fields() {
            for repetition in field.repetitions() {
                for component in repetition.components() {
                    let _ = component.subcomponents().count();
                }
            }
        }
    }
    let _ = (message.control_id(), message.message_type(), message.version());
    let bytes = message.to_bytes();
    let again = Message::parse_with(&bytes, opts).map(|m| m.to_bytes());
    assert_eq!(
        again.as_ref().ok(),
        Some(&bytes),
        "serialization does not re-parse to itself"
    );
    let _ = ack::build_ack(message, ack::AckCode::AE, Some("fuzz"));
    let mut owned = message.to_owned_message();
    let value = "a|b^c~d\\e&f\rg";
    if owned.set("ZZZ(2)-3(2).2.1", value).is_ok() {
        assert_eq!(
            owned.get("ZZZ(2)-3(2).2.1").ok().flatten().as_deref(),
            Some(value)
        );
    }
    let _ = owned.clear("PID-3");
    let _ = owned.to_bytes();
}
