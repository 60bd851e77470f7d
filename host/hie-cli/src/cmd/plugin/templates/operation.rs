//! `{{name}}`: an HIE business operation.
//!
//! Hands each message to the item's outbound adapter (e.g. MLLP) and reads the
//! peer's ACK: `AA`/`CA` is done; a NAK is a permanent `nak` failure; a reply
//! that is not an ACK is a transient `bad-ack` failure, so the engine retries.

use hie_sdk::hl7::parse_ack;
use hie_sdk::prelude::*;

/// The plugin: one value per instance, made with `Default`.
#[derive(Default)]
pub struct {{type}};

impl Plugin for {{type}} {
    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        let reply = hie_sdk::host::adapter_call(msg.body())?;
        let ack = parse_ack(&reply)
            .map_err(|e| Failure::transient("bad-ack", format!("the peer's reply is not an ack: {e}")))?;
        if ack.code.is_success() {
            return Ok(Outcome::done());
        }
        let text = ack.text.unwrap_or_default();
        Err(Failure::permanent("nak", format!("the peer answered {}: {text}", ack.code.as_str())))
    }
}

hie_sdk::export!({{type}});

#[cfg(test)]
mod tests {
    use super::*;
    use hie_sdk::hl7::{AckCode, Hl7};

    const ADT: &str = "MSH|^~\\&|PAS|H|EHR|H|20240101||ADT^A01|1|P|2.5\rPID|1||42\r";

    fn peer(code: AckCode) -> Harness<{{type}}> {
        Harness::<{{type}}>::new().adapter(move |req| Ok(Hl7::parse(req)?.ack(code, Some("said the peer"))))
    }

    #[test]
    fn an_accepting_ack_is_done() {
        let mut h = peer(AckCode::AA);
        assert_eq!(h.hl7(ADT).unwrap(), Outcome::done());
        assert_eq!(h.adapter_requests(), [ADT.as_bytes().to_vec()]);
    }

    #[test]
    fn a_nak_is_a_permanent_failure() {
        let err = peer(AckCode::AE).hl7(ADT).unwrap_err();
        assert_eq!((err.code.as_str(), err.retryable), ("nak", false));
        assert_eq!(err.text, "the peer answered AE: said the peer");
    }
}
