use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Content type of an HL7 v2 ER7 body.
pub const CONTENT_TYPE_HL7V2: &str = "application/hl7-v2";
/// Content type of a JSON body.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Identifier of a message, a session or a correlation: a UUIDv7 (time ordered).
pub type MessageId = Uuid;

/// Free-form string properties carried with a message (sorted for stable output).
pub type Properties = BTreeMap<String, String>;

/// A message moving through a production: header fields plus an opaque body.
///
/// The body is the source of truth and is never re-encoded unless a plugin
/// changes it; HL7 is parsed lazily by whoever needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id of this message (UUIDv7).
    pub id: MessageId,
    /// Id shared by one inbound message and everything it causes.
    pub session_id: MessageId,
    /// Pairs a request with its reply.
    pub correlation_id: Option<MessageId>,
    /// The message this one was derived from, if any.
    pub parent_id: Option<MessageId>,
    /// Name of the item that produced this message.
    pub source: String,
    /// Name of the item this message is addressed to (empty until routed).
    pub target: String,
    /// Priority 0 (lowest) to 9 (highest); 4 by default.
    pub priority: u8,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// MIME-like content type of the body, e.g. [`CONTENT_TYPE_HL7V2`].
    pub content_type: String,
    /// String properties (adapter metadata, plugin annotations).
    pub properties: Properties,
    /// Delivery attempt, starting at 1; incremented on every redelivery.
    pub attempt: u32,
    /// The message body, byte for byte as received or as a plugin set it.
    #[serde(with = "serde_bytes_compat")]
    pub body: Bytes,
}

/// Default priority of a new message.
pub const DEFAULT_PRIORITY: u8 = 4;

impl Envelope {
    /// A new inbound message: fresh id, its own session, attempt 1.
    pub fn new(source: impl Into<String>, content_type: impl Into<String>, body: impl Into<Bytes>) -> Self {
        let id = Uuid::now_v7();
        Envelope {
            id,
            session_id: id,
            correlation_id: None,
            parent_id: None,
            source: source.into(),
            target: String::new(),
            priority: DEFAULT_PRIORITY,
            created_at_ms: now_ms(),
            content_type: content_type.into(),
            properties: Properties::new(),
            attempt: 1,
            body: body.into(),
        }
    }

    /// A new inbound HL7 v2 message.
    pub fn hl7(source: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new(source, CONTENT_TYPE_HL7V2, body)
    }

    /// A message caused by this one: fresh id, same session, `parent_id` set to this id.
    pub fn derive(&self, source: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            session_id: self.session_id,
            correlation_id: self.correlation_id,
            parent_id: Some(self.id),
            source: source.into(),
            target: String::new(),
            priority: self.priority,
            created_at_ms: now_ms(),
            content_type: self.content_type.clone(),
            properties: self.properties.clone(),
            attempt: 1,
            body: body.into(),
        }
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serialize `Bytes` as a byte string (msgpack bin), not as a sequence of integers.
mod serde_bytes_compat {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::copy_from_slice(v))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes::copy_from_slice(v.as_bytes()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes::from(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_round_trip_keeps_body_bytes() {
        let mut e = Envelope::hl7("in", &b"MSH|^~\\&|A\r\xff"[..]);
        e.properties.insert("k".into(), "v".into());
        let bytes = rmp_serde::to_vec_named(&e).unwrap();
        let back: Envelope = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, e);
        // a bin body costs its length plus a small header, not one int per byte
        assert!(bytes.len() < 200 + e.body.len(), "encoded size {}", bytes.len());
    }

    #[test]
    fn derive_keeps_session_and_links_parent() {
        let a = Envelope::hl7("in", "x");
        let b = a.derive("router", "y");
        assert_eq!(b.session_id, a.session_id);
        assert_eq!(b.parent_id, Some(a.id));
        assert_ne!(b.id, a.id);
        assert_eq!(b.attempt, 1);
    }
}
