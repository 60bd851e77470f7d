//! Turning rows into values and values into rows, shared by the writer and readers.

use hie_core::{Envelope, MessageId, Properties};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{Indexed, MessageSummary, Status, StoreError};

/// Columns of `messages` read by [`envelope_from_row`], prefixed with `m.`.
pub(crate) const ENVELOPE_COLUMNS: &str = "m.id, m.session_id, m.correlation_id, m.parent_id, m.source, \
     m.target, m.priority, m.created_at_ms, m.content_type, m.properties, m.attempt, \
     CASE WHEN m.body_of IS NULL THEN m.body ELSE (SELECT b.body FROM messages b WHERE b.seq = m.body_of) END, \
     m.control_id, m.message_type, m.sending_app, m.sending_facility, m.patient_id";

/// Columns of `messages` read by [`summary_from_row`], prefixed with `m.`.
pub(crate) const SUMMARY_COLUMNS: &str = "m.id, m.session_id, m.parent_id, m.source, m.target, \
     m.created_at_ms, m.content_type, \
     CASE WHEN m.body_of IS NULL THEN length(m.body) ELSE (SELECT length(b.body) FROM messages b WHERE b.seq = m.body_of) END, \
     m.control_id, m.message_type, m.sending_app, \
     m.sending_facility, m.patient_id";

pub(crate) fn uuid_col(row: &Row<'_>, i: usize) -> rusqlite::Result<MessageId> {
    let bytes: [u8; 16] = row.get(i)?;
    Ok(Uuid::from_bytes(bytes))
}

pub(crate) fn opt_uuid_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<MessageId>> {
    let bytes: Option<[u8; 16]> = row.get(i)?;
    Ok(bytes.map(Uuid::from_bytes))
}

pub(crate) fn status_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Status> {
    let code: i64 = row.get(i)?;
    Status::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(i, code))
}

fn indexed_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Indexed> {
    Ok(Indexed {
        control_id: row.get(first)?,
        message_type: row.get(first + 1)?,
        sending_app: row.get(first + 2)?,
        sending_facility: row.get(first + 3)?,
        patient_id: row.get(first + 4)?,
    })
}

/// An envelope whose properties are still encoded, so decoding errors can name the message.
pub(crate) struct RawEnvelope {
    pub(crate) envelope: Envelope,
    pub(crate) properties: Vec<u8>,
    pub(crate) indexed: Indexed,
}

impl RawEnvelope {
    pub(crate) fn decode(mut self) -> Result<(Envelope, Indexed), StoreError> {
        self.envelope.properties = decode_properties(self.envelope.id, &self.properties)?;
        Ok((self.envelope, self.indexed))
    }
}

/// Reads [`ENVELOPE_COLUMNS`] starting at column `first`.
pub(crate) fn envelope_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<RawEnvelope> {
    let c = |i: usize| first + i;
    let body: Vec<u8> = row.get(c(11))?;
    Ok(RawEnvelope {
        envelope: Envelope {
            id: uuid_col(row, c(0))?,
            session_id: uuid_col(row, c(1))?,
            correlation_id: opt_uuid_col(row, c(2))?,
            parent_id: opt_uuid_col(row, c(3))?,
            source: row.get(c(4))?,
            target: row.get(c(5))?,
            priority: row.get(c(6))?,
            created_at_ms: row.get::<_, i64>(c(7))? as u64,
            content_type: row.get(c(8))?,
            properties: Properties::new(),
            attempt: row.get(c(10))?,
            body: body.into(),
        },
        properties: row.get(c(9))?,
        indexed: indexed_at(row, c(12))?,
    })
}

/// Reads [`SUMMARY_COLUMNS`] starting at column `first`.
pub(crate) fn summary_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<MessageSummary> {
    let c = |i: usize| first + i;
    Ok(MessageSummary {
        id: uuid_col(row, c(0))?,
        session_id: uuid_col(row, c(1))?,
        parent_id: opt_uuid_col(row, c(2))?,
        source: row.get(c(3))?,
        target: row.get(c(4))?,
        created_at_ms: row.get::<_, i64>(c(5))? as u64,
        content_type: row.get(c(6))?,
        body_len: row.get::<_, i64>(c(7))? as u64,
        indexed: indexed_at(row, c(8))?,
    })
}

pub(crate) fn encode_properties(props: &Properties) -> Vec<u8> {
    // a string map always encodes; an empty vector would be a bug caught on read
    rmp_serde::to_vec(props).unwrap_or_default()
}

fn decode_properties(id: MessageId, bytes: &[u8]) -> Result<Properties, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Decode {
        id,
        detail: format!("properties: {e}"),
    })
}

/// Insert a message row and return its `seq`.
/// `body_of`: the `seq` of a stored message with the same body, which this row then
/// refers to instead of holding a copy. `ack`: the ACK sent upstream for it, cached
/// for re-sends.
pub(crate) fn insert_message(
    conn: &Connection,
    msg: &Envelope,
    idx: &Indexed,
    now_ms: u64,
    body_of: Option<i64>,
    ack: Option<&[u8]>,
) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (id, session_id, correlation_id, parent_id, source, target, priority, \
         created_at_ms, stored_at_ms, content_type, control_id, message_type, sending_app, \
         sending_facility, patient_id, properties, attempt, body, body_of, ack) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?;
    let body: &[u8] = if body_of.is_some() { &[] } else { &msg.body[..] };
    stmt.execute(params![
        msg.id.as_bytes(),
        msg.session_id.as_bytes(),
        msg.correlation_id.as_ref().map(|u| u.as_bytes()),
        msg.parent_id.as_ref().map(|u| u.as_bytes()),
        msg.source,
        msg.target,
        msg.priority,
        msg.created_at_ms as i64,
        now_ms as i64,
        msg.content_type,
        idx.control_id,
        idx.message_type,
        idx.sending_app,
        idx.sending_facility,
        idx.patient_id,
        encode_properties(&msg.properties),
        msg.attempt,
        body,
        body_of,
        ack,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// `seq` of message `id`, if stored.
pub(crate) fn message_seq(conn: &Connection, id: MessageId) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM messages WHERE id = ?1")?
        .query_row([id.as_bytes()], |r| r.get(0))
        .optional()
}

/// The stored message `id`, envelope and indexed values.
pub(crate) fn load_message(
    conn: &Connection,
    id: MessageId,
) -> Result<Option<(Envelope, Indexed)>, StoreError> {
    let sql = format!("SELECT {ENVELOPE_COLUMNS} FROM messages m WHERE m.id = ?1");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([id.as_bytes()], |r| envelope_from_row(r, 0))
        .optional()?;
    raw.map(RawEnvelope::decode).transpose()
}
