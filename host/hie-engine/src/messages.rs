//! Operator methods on stored messages: search, show with trace, resend, purge,
//! store status and readiness. The admin API and `hie messages` serve these; every
//! result type is serde-serialisable.
//!
//! They read or write the store and block the calling thread until it answers: from
//! async code, call them inside `tokio::task::spawn_blocking`.

use std::time::Duration;

use hie_core::{MessageId, now_ms};
use hie_store::{Indexed, ItemState as HopState, MessageStore, SearchQuery, Status, TraceEvent, TraceKey};
use serde::Serialize;

use crate::delivery::Delivery;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::persist::Persist;

pub use hie_store::{MessageSummary, SearchQuery as MessageQuery, Status as MessageStatus};

/// A stored message with everything `hie messages show` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDetail {
    /// Message id.
    pub id: MessageId,
    /// Session id (the inbound message and everything it caused).
    pub session_id: MessageId,
    /// The message it was derived from, if any.
    pub parent_id: Option<MessageId>,
    /// Request/reply pairing, if any.
    pub correlation_id: Option<MessageId>,
    /// Producing item.
    pub source: String,
    /// Addressed item.
    pub target: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Content type of the body.
    pub content_type: String,
    /// Envelope properties (e.g. `mllp.peer`).
    pub properties: std::collections::BTreeMap<String, String>,
    /// Indexed header values (control id, type, sender, patient).
    pub indexed: Indexed,
    /// The body as text (invalid UTF-8 replaced); HL7 segments end with `\r`.
    pub body: String,
    /// Its current state at every item it was queued for.
    pub states: Vec<HopState>,
    /// Every status change, oldest first, with times, attempts, plugin versions, errors.
    pub trace: Vec<TraceEvent>,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Messages deleted.
    pub purged: u64,
    /// Bytes given back to the file system (the store file shrank by this much).
    pub reclaimed_bytes: u64,
}

/// The store as `/ready`, metrics and `hie messages` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    /// The database file.
    pub path: String,
    /// Bytes on disk (database plus WAL).
    pub disk_bytes: u64,
    /// Transactions committed since start (each one fsync).
    pub transactions: u64,
    /// Write batches committed; `batches / transactions` is the group-commit factor.
    pub batches: u64,
    /// Transactions that failed.
    pub failed_transactions: u64,
    /// Whether intake is refused after a write error.
    pub faulted: bool,
}

impl Engine {
    fn persist(&self) -> Result<&Persist, EngineError> {
        self.shared().store.as_deref().ok_or(EngineError::NoStore)
    }

    /// Whether the engine can take messages: the store (if any) accepts writes. After
    /// a storage fault this tries a probe write. For `/ready`.
    pub fn is_ready(&self) -> bool {
        self.shared()
            .store
            .as_ref()
            .is_none_or(|p| p.store().is_writable())
    }

    /// The store's file, size and writer counters; `None` without a store.
    pub fn store_status(&self) -> Option<StoreStatus> {
        let persist = self.shared().store.as_ref()?;
        let store = persist.store();
        let stats = store.stats();
        Some(StoreStatus {
            path: store.path().display().to_string(),
            disk_bytes: store.disk_usage(),
            transactions: stats.transactions,
            batches: stats.batches,
            failed_transactions: stats.failed_transactions,
            faulted: stats.faulted,
        })
    }

    /// Stored messages matching every set filter of `query`, newest first. Use
    /// [`field_filter`] to turn `PID-3=123`-style filters into a query.
    pub fn search_messages(&self, query: &SearchQuery) -> Result<Vec<MessageSummary>, EngineError> {
        Ok(self.persist()?.store().search(query)?)
    }

    /// One stored message with its header, body, states and trace; `None` if unknown.
    pub fn show_message(&self, id: MessageId) -> Result<Option<MessageDetail>, EngineError> {
        let store = self.persist()?.store();
        let Some(stored) = store.get(id)? else {
            return Ok(None);
        };
        let trace = store.trace(TraceKey::Message(id))?;
        let e = stored.envelope;
        Ok(Some(MessageDetail {
            id: e.id,
            session_id: e.session_id,
            parent_id: e.parent_id,
            correlation_id: e.correlation_id,
            source: e.source,
            target: e.target,
            created_at_ms: e.created_at_ms,
            content_type: e.content_type,
            properties: e.properties.into_iter().collect(),
            indexed: stored.indexed,
            body: String::from_utf8_lossy(&e.body).into_owned(),
            states: stored.states,
            trace,
        }))
    }

    /// Every status change of every message of a session (one inbound message and
    /// everything it caused), oldest first.
    pub fn trace_session(&self, session: MessageId) -> Result<Vec<TraceEvent>, EngineError> {
        Ok(self.persist()?.store().trace(TraceKey::Session(session))?)
    }

    /// Queue a copy of stored message `id` (fresh id, parent = `id`) at `to`, or at the
    /// item it was addressed to; returns the copy's id.
    pub fn resend(&self, id: MessageId, to: Option<&str>) -> Result<MessageId, EngineError> {
        let shared = self.shared();
        let store = self.persist()?.store();
        let item = match to {
            Some(item) => item.to_owned(),
            None => {
                let stored = store.get(id)?.ok_or(hie_store::StoreError::NotFound { id })?;
                let addressed = stored.envelope.target.clone();
                match stored.states.first() {
                    _ if shared.item(&addressed).is_some() => addressed,
                    Some(state) => state.item.clone(),
                    None => addressed,
                }
            }
        };
        if shared.item(&item).is_none() {
            return Err(EngineError::UnknownItem(item));
        }
        let copy = store.resend(id, &item)?;
        let envelope = store
            .get(copy)?
            .ok_or(hie_store::StoreError::NotFound { id: copy })?
            .envelope;
        if let Err(e) = shared.deliver(&item, Delivery::message(envelope), Some(Duration::from_secs(5))) {
            if let Some(m) = e.message {
                shared.dead_letters.put(&item, *m, e.failure.clone());
            }
            return Err(EngineError::State {
                item,
                message: format!(
                    "refused the resent copy {copy} ({}); it is a dead letter now",
                    e.failure
                ),
            });
        }
        tracing::info!(message_id = %id, copy = %copy, item = %item, "message resent");
        Ok(copy)
    }

    /// Delete messages created more than `older_than` ago whose state at every item is
    /// one of `statuses` (only done, dead-lettered and discarded can be purged), then
    /// give the space back to the file system.
    pub fn purge(&self, older_than: Duration, statuses: &[Status]) -> Result<PurgeReport, EngineError> {
        let store = self.persist()?.store();
        let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
        let purged = store.purge(cutoff, statuses)?;
        let reclaimed_bytes = store.reclaim_space()?;
        tracing::info!(purged, reclaimed_bytes, "messages purged");
        Ok(PurgeReport {
            purged,
            reclaimed_bytes,
        })
    }

    /// Dead letters of `item` (or all), oldest first, at most `limit`.
    pub fn dead_letters_of(
        &self,
        item: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::DeadLetter>, EngineError> {
        self.shared().dead_letters.list_some(item, limit)
    }
}

/// Add a `FIELD=VALUE` filter to `query`. The store indexes `MSH-10` (control id),
/// `MSH-9` (message type, e.g. `ADT^A01`) and `PID-3` (patient id, first
/// repetition's first component); other fields are refused with what to use instead.
pub fn field_filter(query: &mut SearchQuery, field: &str, value: &str) -> Result<(), EngineError> {
    let value = value.to_owned();
    match field.trim().to_ascii_uppercase().as_str() {
        "MSH-10" => query.control_id = Some(value),
        "MSH-9" => query.message_type = Some(value),
        "PID-3" | "PID-3.1" | "PID-3(1).1" => query.patient_id = Some(value),
        other => {
            return Err(EngineError::Store(hie_store::StoreError::Invalid(format!(
                "field {other} is not indexed; search by MSH-10, MSH-9 or PID-3, or by time, status, item or session"
            ))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_filters_map_to_indexed_columns() {
        let mut q = SearchQuery::default();
        field_filter(&mut q, "pid-3", "P1").unwrap();
        field_filter(&mut q, "MSH-10", "C1").unwrap();
        field_filter(&mut q, "MSH-9", "ADT^A01").unwrap();
        assert_eq!(q.patient_id.as_deref(), Some("P1"));
        assert_eq!(q.control_id.as_deref(), Some("C1"));
        assert_eq!(q.message_type.as_deref(), Some("ADT^A01"));
        let err = field_filter(&mut q, "PV1-3", "W1").unwrap_err().to_string();
        assert!(err.contains("PV1-3 is not indexed"), "{err}");
    }
}
