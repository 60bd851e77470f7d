//! The one place that turns what happened inside the engine into what the
//! outside sees: HL7 ACK codes for inbound senders, failure codes for plugins
//! and the dead-letter queue.
//!
//! Inbound MLLP (see `adapters::mllp_in`):
//!
//! | What happened | ACK |
//! |---|---|
//! | accepted into the first queue (`ack_mode = "accept"`) | `AA` |
//! | routed and processed by the first process (`ack_mode = "application"`) | `AA`, or the plugin's own reply |
//! | processing failed, e.g. `no-route`, a trap, dead-lettered (application mode) | `AE` with the failure in MSA-3/ERR |
//! | no answer within `ack_timeout` (application mode) | `AE` with `timeout` |
//! | the queue refused it: full with `overflow = "reject"` or `"dead-letter"`, item disabled or stopping | `AR` |
//! | the frame is not HL7 (no MSH) | `AR` built without the original header |

use bytes::Bytes;
use hie_core::{Failure, PluginError};
use hie_hl7::ack::{AckCode, build_ack, build_nak_unparseable};
use hie_mllp::policy::FinalAction;

use crate::delivery::InboundResult;

/// A target name that is not an item of the production.
pub const UNKNOWN_TARGET: &str = "unknown-target";
/// The target queue is full and refuses (`overflow = "reject"` or `"dead-letter"`).
pub const QUEUE_FULL: &str = "queue-full";
/// The target item is disabled, failed or stopping.
pub const ITEM_UNAVAILABLE: &str = "item-unavailable";
/// A request got no reply in time.
pub const TIMEOUT: &str = "timeout";
/// A request's target finished without replying.
pub const NO_REPLY: &str = "no-reply";
/// The reply-code policy says: disable the operation.
pub const REPLY_DISABLE: &str = "reply-disable";
/// A message sent in a window got no reply because an earlier one of the window
/// failed and the connection was closed; it is retried without a backoff first.
pub const ABANDONED: &str = "abandoned";

/// The failure an outbound reply turns into under the reply-code policy.
pub fn reply_failure(retry: bool, then: FinalAction, text: String) -> Failure {
    let code = match then {
        FinalAction::Complete | FinalAction::Warn | FinalAction::Fail => "reply-fail",
        FinalAction::Suspend => "reply-suspend",
        FinalAction::Disable => REPLY_DISABLE,
    };
    Failure {
        code: code.into(),
        text,
        retryable: retry,
    }
}

/// The failure a plugin error stands for (its code is the error's stable code).
pub fn failure_of(err: &PluginError) -> Failure {
    match err {
        PluginError::Failed(f) => f.clone(),
        other => Failure {
            code: other.code().to_string(),
            text: other.to_string(),
            retryable: other.is_retryable(),
        },
    }
}

/// The ACK for an inbound frame `original` given what became of it.
pub fn inbound_ack(original: &[u8], result: &InboundResult) -> Bytes {
    let Ok(msg) = hie_hl7::Message::parse(original) else {
        return Bytes::from(build_nak_unparseable("message could not be parsed"));
    };
    let ack = match result {
        InboundResult::Accepted => build_ack(&msg, AckCode::AA, None),
        InboundResult::Replied(body) => return body.clone(),
        InboundResult::Failed(f) => build_ack(&msg, AckCode::AE, Some(&describe(f))),
        InboundResult::Refused(f) => build_ack(&msg, AckCode::AR, Some(&describe(f))),
    };
    Bytes::from(ack)
}

/// The NAK for a frame that is not HL7.
pub fn unparseable(reason: &str) -> Bytes {
    Bytes::from(build_nak_unparseable(reason))
}

fn describe(f: &Failure) -> String {
    format!("{}: {}", f.code, f.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SND|FAC|RCV|FAC|20260101000000||ADT^A01|MSG1|P|2.5\rPID|1||123\r";

    fn msa(ack: &[u8]) -> (String, Option<String>) {
        let info = hie_hl7::ack::parse_ack(ack).unwrap();
        (info.code.to_string(), info.text)
    }

    #[test]
    fn results_map_to_ack_codes() {
        assert_eq!(msa(&inbound_ack(ADT, &InboundResult::Accepted)).0, "AA");
        let (code, text) = msa(&inbound_ack(
            ADT,
            &InboundResult::Failed(Failure::permanent("no-route", "no rule matched ADT^A99")),
        ));
        assert_eq!(code, "AE");
        assert!(text.unwrap().contains("no-route"));
        let refused = InboundResult::Refused(Failure::transient(QUEUE_FULL, "router queue is full"));
        assert_eq!(msa(&inbound_ack(ADT, &refused)).0, "AR");
        assert_eq!(msa(&inbound_ack(b"garbage", &InboundResult::Accepted)).0, "AR");
    }
}
