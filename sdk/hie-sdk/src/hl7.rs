//! HL7 v2 inside a plugin: parse a body, read and write fields by path, build ACKs.
//!
//! This is the host's own HL7 code (`hie-hl7`) compiled into the plugin, so a
//! path means the same thing in a plugin as in the engine. Paths look like
//! `MSH-9.1`, `PID-3(2).1` (second repetition, first component), `PID-5.1.1`
//! (a subcomponent) and `OBX(3)-5` (field 5 of the third OBX segment).
//!
//! Edits change only the bytes they touch: every other segment, field and
//! separator is written back exactly as it came in.
//!
//! ```
//! use hie_sdk::prelude::*;
//!
//! let msg = Message::hl7("MSH|^~\\&|LAB|H|EHR|H|20240101||ORU^R01|77|P|2.5\rPID|1||123^^^MRN~456^^^NHS||DOE^JOHN\r");
//! let mut hl7 = msg.parse_hl7().unwrap();
//! assert_eq!(hl7.get("PID-3(2).1").as_deref(), Some("456"));
//! assert_eq!(hl7.message_type().as_deref(), Some("ORU^R01"));
//! hl7.set("PID-5.2", "JANE").unwrap();
//! let msg = msg.with_hl7(&hl7);
//! assert!(msg.body_str().unwrap().ends_with("PID|1||123^^^MRN~456^^^NHS||DOE^JANE\r"));
//! ```

pub use hie_hl7::ack::{AckBuilder, AckCode, AckInfo, ErrorCode, parse_ack};
pub use hie_hl7::{OwnedMessage, ParseError, Path, PathError};

use crate::message::{Failure, Message};

/// An editable HL7 v2 message parsed from a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7 {
    inner: OwnedMessage,
}

impl Hl7 {
    /// Parses ER7 bytes; a body that is not HL7 v2 is a permanent `bad-message` failure.
    pub fn parse(body: &[u8]) -> Result<Hl7, Failure> {
        OwnedMessage::parse(body)
            .map(|inner| Hl7 { inner })
            .map_err(|e| Failure::permanent("bad-message", format!("not an hl7 v2 message: {e}")))
    }

    /// Decoded text at `path`; `None` if it is absent or the path is not valid.
    /// Use [`Hl7::try_get`] to tell the two apart.
    pub fn get(&self, path: &str) -> Option<String> {
        self.inner.get(path).ok().flatten()
    }

    /// Decoded text at `path` (`Ok(None)` if absent); a bad path is a `bad-path` failure.
    pub fn try_get(&self, path: &str) -> Result<Option<String>, Failure> {
        self.inner.get(path).map_err(path_failure)
    }

    /// Sets text at `path`, escaping separators; missing parts are created.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), Failure> {
        self.inner.set(path, value).map_err(path_failure)
    }

    /// Sets raw ER7 at `path` (escapes and lower-level separators kept as given).
    pub fn set_raw(&mut self, path: &str, raw: &str) -> Result<(), Failure> {
        self.inner.set_raw(path, raw).map_err(path_failure)
    }

    /// Raw ER7 at `path`, escapes and lower-level separators intact.
    pub fn get_raw(&self, path: &str) -> Option<String> {
        let raw = self.inner.get_raw(path).ok().flatten()?;
        Some(String::from_utf8_lossy(raw).into_owned())
    }

    /// Empties `path` and drops the trailing separators that leaves.
    pub fn clear(&mut self, path: &str) -> Result<(), Failure> {
        self.inner.clear(path).map_err(path_failure)
    }

    /// `MSH-9.1^MSH-9.2`, e.g. `ADT^A01`.
    pub fn message_type(&self) -> Option<String> {
        self.inner.message_type()
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<String> {
        self.inner.control_id()
    }

    /// The message as ER7 bytes; unchanged segments are byte-exact.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// An acknowledgment of this message (sender and receiver swapped, MSA-2 =
    /// its control id); with `text` and a non-success code an ERR segment
    /// carries the reason. For more control use [`AckBuilder`].
    pub fn ack(&self, code: AckCode, text: Option<&str>) -> Vec<u8> {
        let bytes = self.inner.to_bytes();
        match hie_hl7::Message::parse(&bytes) {
            Ok(original) => hie_hl7::ack::build_ack(&original, code, text),
            // An `Hl7` was parsed from these bytes, so this is not reached; answer as for junk.
            Err(_) => AckBuilder::new(code)
                .text(text.unwrap_or_default())
                .build_unparseable(),
        }
    }

    /// The underlying `hie-hl7` message, for segment-level work.
    pub fn as_owned(&self) -> &OwnedMessage {
        &self.inner
    }

    /// The underlying `hie-hl7` message, mutably.
    pub fn as_owned_mut(&mut self) -> &mut OwnedMessage {
        &mut self.inner
    }
}

fn path_failure(e: PathError) -> Failure {
    Failure::permanent("bad-path", e.to_string())
}

impl Message {
    /// Parses the body as HL7 v2; a permanent `bad-message` failure if it is not.
    pub fn parse_hl7(&self) -> Result<Hl7, Failure> {
        Hl7::parse(self.body())
    }

    /// Replaces the body with `hl7`'s bytes.
    pub fn set_hl7(&mut self, hl7: &Hl7) {
        self.set_body(hl7.to_bytes());
    }

    /// An HL7 ACK of this message, ready to return in [`Outcome::reply`](crate::Outcome::reply).
    pub fn hl7_ack(&self, code: AckCode, text: Option<&str>) -> Result<Message, Failure> {
        Ok(Message::hl7(self.parse_hl7()?.ack(code, text)))
    }

    /// This message with `hl7`'s bytes as its body.
    pub fn with_hl7(mut self, hl7: &Hl7) -> Message {
        self.set_hl7(hl7);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &str = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123^^^MRN||DOE^JOHN||19700101|M\r";

    #[test]
    fn reads_and_edits_keep_other_bytes() {
        let mut hl7 = Message::hl7(ADT).parse_hl7().unwrap();
        assert_eq!(hl7.get("PID-8").as_deref(), Some("M"));
        hl7.set("PID-8", "F").unwrap();
        hl7.clear("PID-7").unwrap();
        let out = String::from_utf8(hl7.to_bytes()).unwrap();
        assert_eq!(out, ADT.replace("|19700101|M", "||F"));
    }

    #[test]
    fn ack_answers_the_control_id() {
        let ack = Message::hl7(ADT).hl7_ack(AckCode::AE, Some("no route")).unwrap();
        let info = parse_ack(ack.body()).unwrap();
        assert_eq!(info.code, AckCode::AE);
        assert_eq!(info.control_id.as_deref(), Some("1"));
        assert_eq!(info.text.as_deref(), Some("no route"));
    }

    #[test]
    fn bad_input_is_a_bad_message_failure() {
        let err = Message::hl7("hello").parse_hl7().unwrap_err();
        assert_eq!(err.code, "bad-message");
        assert!(!err.retryable);
        let hl7 = Message::hl7(ADT).parse_hl7().unwrap();
        assert_eq!(hl7.try_get("PID3").unwrap_err().code, "bad-path");
        assert_eq!(hl7.get("PID3"), None);
        assert_eq!(hl7.try_get("ZZZ-1").unwrap(), None);
    }
}
