//! Conversions between the WIT `message`/`outcome`/`failure` and the engine's
//! [`Envelope`], [`Outcome`] and [`Failure`].
//!
//! On the way out the host, not the guest, decides identity: a message a plugin
//! produces gets a fresh id, the session of the message being processed, that
//! message as its parent, and the item as its source. Body, properties, content
//! type, priority and correlation id are the guest's.

use hie_core::{Envelope, Failure, MessageId, Outcome, Routed, now_ms};
use uuid::Uuid;

use crate::bindings::hie::plugin::types as wit;

/// Highest message priority.
const MAX_PRIORITY: u8 = 9;

/// The message being processed when a plugin produces new ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parent {
    pub id: MessageId,
    pub session_id: MessageId,
}

impl Parent {
    pub fn of(env: &Envelope) -> Self {
        Parent {
            id: env.id,
            session_id: env.session_id,
        }
    }
}

/// A UUID as text in one exact allocation (`to_string` goes through the formatter
/// and grows its string).
fn uuid_text(id: &Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// An envelope as the guest sees it.
pub(crate) fn message_to_wit(env: &Envelope) -> wit::Message {
    wit::Message {
        id: uuid_text(&env.id),
        session_id: uuid_text(&env.session_id),
        correlation_id: env.correlation_id.as_ref().map(uuid_text),
        source: env.source.clone(),
        content_type: env.content_type.clone(),
        priority: env.priority,
        properties: env
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        attempt: env.attempt,
        body: env.body.to_vec(),
    }
}

/// A message the guest produced, as a new envelope from `item` (see the module docs).
pub(crate) fn message_from_wit(
    msg: wit::Message,
    item: &str,
    target: &str,
    parent: Option<Parent>,
) -> Result<Envelope, Failure> {
    let correlation_id = correlation_from_wit(msg.correlation_id.as_deref(), item)?;
    let id = Uuid::now_v7();
    Ok(Envelope {
        id,
        session_id: parent.map_or(id, |p| p.session_id),
        correlation_id,
        parent_id: parent.map(|p| p.id),
        source: item.to_owned(),
        target: target.to_owned(),
        priority: msg.priority.min(MAX_PRIORITY),
        created_at_ms: now_ms(),
        content_type: msg.content_type,
        properties: msg.properties.into_iter().collect(),
        attempt: 1,
        body: msg.body.into(),
    })
}

/// `original` with the fields a hook may change taken from the hook's `msg`; the
/// identity (id, session, parent, source, target, attempt) stays the original's.
pub(crate) fn apply_changes(original: &Envelope, msg: wit::Message) -> Result<Envelope, Failure> {
    Ok(Envelope {
        correlation_id: correlation_from_wit(msg.correlation_id.as_deref(), &original.source)?,
        priority: msg.priority.min(MAX_PRIORITY),
        content_type: msg.content_type,
        properties: msg.properties.into_iter().collect(),
        body: msg.body.into(),
        ..original.clone()
    })
}

fn correlation_from_wit(text: Option<&str>, item: &str) -> Result<Option<MessageId>, Failure> {
    text.map(|text| {
        Uuid::parse_str(text).map_err(|_| {
            Failure::permanent(
                "bad-message",
                format!("correlation id {text:?} produced by {item} is not a UUID"),
            )
        })
    })
    .transpose()
}

/// Bytes a produced message costs against the output cap.
pub(crate) fn message_size(msg: &wit::Message) -> u64 {
    let properties: usize = msg.properties.iter().map(|(k, v)| k.len() + v.len()).sum();
    (msg.body.len() + msg.content_type.len() + properties) as u64
}

/// Bytes a returned outcome costs against the output cap.
pub(crate) fn outcome_size(outcome: &wit::Outcome) -> u64 {
    match outcome {
        wit::Outcome::Done => 0,
        wit::Outcome::Drop(reason) => reason.len() as u64,
        wit::Outcome::Pass(m) | wit::Outcome::Reply(m) => message_size(m),
        wit::Outcome::Forward(routed) => routed
            .iter()
            .map(|r| r.target.len() as u64 + message_size(&r.message))
            .sum(),
    }
}

/// The guest's outcome as the engine's.
pub(crate) fn outcome_from_wit(
    outcome: wit::Outcome,
    item: &str,
    parent: Option<Parent>,
) -> Result<Outcome, Failure> {
    Ok(match outcome {
        wit::Outcome::Done => Outcome::Done,
        wit::Outcome::Drop(reason) => Outcome::Drop(reason),
        wit::Outcome::Pass(m) => Outcome::Pass(message_from_wit(m, item, "", parent)?),
        wit::Outcome::Reply(m) => Outcome::Reply(message_from_wit(m, item, "", parent)?),
        wit::Outcome::Forward(routed) => Outcome::Forward(
            routed
                .into_iter()
                .map(|r| {
                    let message = message_from_wit(r.message, item, &r.target, parent)?;
                    Ok(Routed {
                        target: r.target,
                        message,
                    })
                })
                .collect::<Result<_, Failure>>()?,
        ),
    })
}

/// The engine's outcome as the guest sees it (for `on-after-process` hooks).
pub(crate) fn outcome_to_wit(outcome: &Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Done => wit::Outcome::Done,
        Outcome::Drop(reason) => wit::Outcome::Drop(reason.clone()),
        Outcome::Pass(m) => wit::Outcome::Pass(message_to_wit(m)),
        Outcome::Reply(m) => wit::Outcome::Reply(message_to_wit(m)),
        Outcome::Forward(routed) => wit::Outcome::Forward(
            routed
                .iter()
                .map(|r| wit::Routed {
                    target: r.target.clone(),
                    message: message_to_wit(&r.message),
                })
                .collect(),
        ),
    }
}

pub(crate) fn failure_to_wit(f: &Failure) -> wit::Failure {
    wit::Failure {
        code: f.code.clone(),
        text: f.text.clone(),
        retryable: f.retryable,
    }
}

pub(crate) fn failure_from_wit(f: wit::Failure) -> Failure {
    Failure {
        code: f.code,
        text: f.text,
        retryable: f.retryable,
    }
}

pub(crate) fn log_level_from_wit(level: wit::LogLevel) -> hie_core::LogLevel {
    match level {
        wit::LogLevel::Trace => hie_core::LogLevel::Trace,
        wit::LogLevel::Debug => hie_core::LogLevel::Debug,
        wit::LogLevel::Info => hie_core::LogLevel::Info,
        wit::LogLevel::Warn => hie_core::LogLevel::Warn,
        wit::LogLevel::Error => hie_core::LogLevel::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_identity_comes_from_the_host() {
        let input = Envelope::hl7("mllp-in", "MSH|in");
        let mut guest = message_to_wit(&input);
        guest.id = "forged".into();
        guest.source = "someone-else".into();
        guest.priority = 200;
        guest.body = b"MSH|out".to_vec();
        let out = message_from_wit(guest, "router", "a", Some(Parent::of(&input))).unwrap();
        assert_ne!(out.id, input.id);
        assert_eq!(out.session_id, input.session_id);
        assert_eq!(out.parent_id, Some(input.id));
        assert_eq!(out.source, "router");
        assert_eq!(out.target, "a");
        assert_eq!(out.priority, 9);
        assert_eq!(&out.body[..], b"MSH|out");
    }

    #[test]
    fn ids_are_hyphenated_lowercase() {
        let mut input = Envelope::hl7("mllp-in", "MSH|in");
        input.correlation_id = Some(input.id);
        let guest = message_to_wit(&input);
        assert_eq!(guest.id, input.id.to_string());
        assert_eq!(guest.session_id, input.session_id.to_string());
        assert_eq!(guest.correlation_id, Some(input.id.to_string()));
        assert_eq!(guest.id.len(), 36);
    }

    #[test]
    fn a_bad_correlation_id_is_a_failure() {
        let mut guest = message_to_wit(&Envelope::hl7("in", "x"));
        guest.correlation_id = Some("nope".into());
        let err = message_from_wit(guest, "router", "", None).unwrap_err();
        assert_eq!(err.code, "bad-message");
    }
}
