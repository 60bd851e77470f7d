//! `passthrough`: hands every message to the item's configured targets, unchanged.
//!
//! Useful as the plugin of an item whose work is all in its adapter (an MLLP
//! inbound service, a file outbound operation) or as a placeholder in a route.
#![deny(missing_docs)]

use hie_sdk::prelude::*;

/// The passthrough plugin: no settings, no state.
#[derive(Default)]
pub struct Passthrough;

impl Plugin for Passthrough {
    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        Ok(Outcome::pass(msg))
    }
}

hie_sdk::export!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_message_unchanged() {
        let body = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||42\r\xff".to_vec();
        let msg = Message::hl7(body.clone()).with_property("k", "v");
        let mut h = Harness::<Passthrough>::new();
        let Outcome::Pass(out) = h.message(msg).unwrap() else {
            panic!("expected pass")
        };
        assert_eq!(out.body(), body.as_slice());
        assert_eq!(out.property("k"), Some("v"));
        assert!(h.sent().is_empty());
    }
}
