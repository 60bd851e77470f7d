//! `{{name}}`: an HIE business process.
//!
//! Sets the receiving facility (MSH-6) from the item setting `facility`
//! (default `HIE`) and passes the message to the item's targets.

use hie_sdk::prelude::*;

/// The plugin: one value per instance, made with `Default`, set up by `on_init`.
#[derive(Default)]
pub struct {{type}} {
    facility: String,
}

impl Plugin for {{type}} {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.facility = settings.get("facility").unwrap_or("HIE").to_owned();
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        let mut hl7 = msg.parse_hl7()?;
        hl7.set("MSH-6", &self.facility)?;
        hie_sdk::host::counter_add("stamped", 1);
        Ok(Outcome::pass(msg.with_hl7(&hl7)))
    }
}

hie_sdk::export!({{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_the_receiving_facility() {
        let mut h = Harness::<{{type}}>::new().setting("facility", "LAB");
        let out = h.hl7("MSH|^~\\&|PAS|H|EHR|H|20240101||ADT^A01|1|P|2.5\rPID|1||42\r").unwrap();
        let Outcome::Pass(msg) = out else { panic!("expected pass, got {out:?}") };
        assert_eq!(msg.parse_hl7().unwrap().get("MSH-6").as_deref(), Some("LAB"));
        assert_eq!(h.counter("stamped"), 1);
    }

    #[test]
    fn refuses_what_is_not_hl7() {
        let mut h = Harness::<{{type}}>::new();
        assert_eq!(h.hl7("hello").unwrap_err().code, "bad-message");
    }
}
