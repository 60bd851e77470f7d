//! `{{name}}`: an HIE business service.
//!
//! Accepts what its inbound adapter received if it is an HL7 v2 message with a
//! control id (MSH-10), and passes it to the item's targets; anything else is a
//! permanent `bad-message` failure, which the engine answers with a NAK.

use hie_sdk::prelude::*;

/// The plugin: one value per instance, made with `Default`.
#[derive(Default)]
pub struct {{type}};

impl Plugin for {{type}} {
    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        let hl7 = msg.parse_hl7()?;
        if hl7.control_id().is_none() {
            return Err(Failure::permanent("bad-message", "MSH-10 (message control id) is empty"));
        }
        hie_sdk::host::counter_add("accepted", 1);
        Ok(Outcome::pass(msg))
    }
}

hie_sdk::export!({{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_hl7_with_a_control_id() {
        let mut h = Harness::<{{type}}>::new();
        let body = "MSH|^~\\&|PAS|H|EHR|H|20240101||ADT^A01|1|P|2.5\rPID|1||42\r";
        let out = h.hl7(body).unwrap();
        let Outcome::Pass(msg) = out else { panic!("expected pass, got {out:?}") };
        assert_eq!(msg.body(), body.as_bytes());
        assert_eq!(h.counter("accepted"), 1);
    }

    #[test]
    fn refuses_a_message_without_control_id() {
        let mut h = Harness::<{{type}}>::new();
        let err = h.hl7("MSH|^~\\&|PAS|H|EHR|H|20240101||ADT^A01||P|2.5\r").unwrap_err();
        assert_eq!(err.code, "bad-message");
    }
}
