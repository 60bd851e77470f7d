//! Read-only queries on a small pool of read-only connections.

use std::path::PathBuf;

use hie_core::MessageId;
use parking_lot::Mutex;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::rows::{
    ENVELOPE_COLUMNS, SUMMARY_COLUMNS, envelope_from_row, load_message, opt_uuid_col, status_col,
    summary_from_row, uuid_col,
};
use crate::{
    DeadLetter, ItemState, MessageSummary, Recovered, SearchQuery, Status, StoreError, StoredMessage,
    TraceEvent, TraceKey, schema,
};

/// Read-only connections, opened on demand and kept up to `keep` idle ones.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, keep: usize) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            keep: keep.max(1),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let conn = match self.idle.lock().pop() {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock();
        if idle.len() < self.keep {
            idle.push(conn);
        }
        result
    }

    pub(crate) fn get(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.with(|conn| {
            let Some((envelope, indexed)) = load_message(conn, id)? else {
                return Ok(None);
            };
            let states = conn
                .prepare_cached(
                    "SELECT q.item, q.status, q.attempt, q.updated_at_ms FROM queue q \
                     JOIN messages m ON m.seq = q.message_seq WHERE m.id = ?1 ORDER BY q.qseq",
                )?
                .query_map([id.as_bytes()], |r| {
                    Ok(ItemState {
                        item: r.get(0)?,
                        status: status_col(r, 1)?,
                        attempt: r.get(2)?,
                        updated_at_ms: r.get::<_, i64>(3)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(StoredMessage {
                envelope,
                indexed,
                states,
            }))
        })
    }

    pub(crate) fn recover(&self) -> Result<Vec<Recovered>, StoreError> {
        self.with(|conn| {
            let sql = format!("SELECT q.item, q.status, q.attempt, {ENVELOPE_COLUMNS} {RECOVER_SQL_FILTER}");
            let rows = conn
                .prepare(&sql)?
                .query_map([], |r| {
                    let item: String = r.get(0)?;
                    let status = status_col(r, 1)?;
                    let attempt: u32 = r.get(2)?;
                    Ok((item, status, attempt, envelope_from_row(r, 3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(item, status, attempt, raw)| {
                    let (mut envelope, _) = raw.decode()?;
                    let was_in_flight = status != Status::Queued;
                    envelope.attempt = if was_in_flight { attempt + 1 } else { attempt };
                    Ok(Recovered {
                        item,
                        envelope,
                        was_in_flight,
                    })
                })
                .collect()
        })
    }

    pub(crate) fn trace(&self, key: TraceKey) -> Result<Vec<TraceEvent>, StoreError> {
        let (filter, id) = match key {
            TraceKey::Message(id) => ("m.id = ?1", id),
            TraceKey::Session(id) => ("m.session_id = ?1", id),
        };
        let sql = format!(
            "SELECT m.id, m.parent_id, e.item, e.status, e.at_ms, e.attempt, e.plugin_version, e.error \
             FROM messages m JOIN events e ON e.message_seq = m.seq WHERE {filter} ORDER BY e.seq"
        );
        self.with(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_map([id.as_bytes()], |r| {
                    Ok(TraceEvent {
                        message_id: uuid_col(r, 0)?,
                        parent_id: opt_uuid_col(r, 1)?,
                        item: r.get(2)?,
                        status: status_col(r, 3)?,
                        at_ms: r.get::<_, i64>(4)? as u64,
                        attempt: r.get(5)?,
                        plugin_version: r.get(6)?,
                        error: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(crate) fn search(&self, q: &SearchQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let (sql, values) = search_sql(q, SUMMARY_COLUMNS);
        self.with(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(values), |r| summary_from_row(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(crate) fn explain_search(&self, q: &SearchQuery) -> Result<Vec<String>, StoreError> {
        let (sql, values) = search_sql(q, SUMMARY_COLUMNS);
        self.with(|conn| {
            Ok(conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
                .query_map(params_from_iter(values), |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(crate) fn dead_letters(
        &self,
        item: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let sql = dead_letters_sql();
        self.with(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(params![item, limit as i64], |r| {
                    Ok(DeadLetter {
                        item: r.get(0)?,
                        attempt: r.get(1)?,
                        at_ms: r.get::<_, i64>(2)? as u64,
                        error: r.get(3)?,
                        summary: summary_from_row(r, 4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Messages stored, for stats and benches.
    pub(crate) fn count_messages(&self) -> Result<u64, StoreError> {
        self.with(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }
}

/// What recovery reads: the open entries of every queue in queue order. The status
/// test is spelled as the partial index `queue_open`'s condition so SQLite uses it.
pub(crate) const RECOVER_SQL_FILTER: &str = "FROM queue q JOIN messages m ON m.seq = q.message_seq \
     WHERE (q.status = 0 OR q.status = 1 OR q.status = 3) ORDER BY q.item, q.qseq";

/// The dead letters of one item (`?1`) or all (`?1` NULL), oldest first, at most `?2`.
pub(crate) fn dead_letters_sql() -> String {
    format!(
        "SELECT q.item, q.attempt, q.updated_at_ms, \
         (SELECT e.error FROM events e WHERE e.message_seq = q.message_seq AND e.item = q.item \
          AND e.error IS NOT NULL ORDER BY e.seq DESC LIMIT 1), {SUMMARY_COLUMNS} \
         FROM queue q JOIN messages m ON m.seq = q.message_seq \
         WHERE q.status = {dead} AND (?1 IS NULL OR q.item = ?1) ORDER BY q.qseq LIMIT ?2",
        // written in, not bound, so SQLite can use the partial index `queue_dead`
        dead = Status::DeadLettered.code()
    )
}

/// The search statement and its parameters; only fixed SQL text is formatted in.
fn search_sql(q: &SearchQuery, columns: &str) -> (String, Vec<Value>) {
    let mut values: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    let mut clauses: Vec<String> = Vec::new();
    if let Some(v) = &q.control_id {
        clauses.push(format!("m.control_id = {}", bind(Value::Text(v.clone()))));
    }
    if let Some(v) = &q.patient_id {
        clauses.push(format!("m.patient_id = {}", bind(Value::Text(v.clone()))));
    }
    if let Some(v) = &q.message_type {
        clauses.push(format!("m.message_type = {}", bind(Value::Text(v.clone()))));
    }
    if let Some(v) = &q.session {
        clauses.push(format!(
            "m.session_id = {}",
            bind(Value::Blob(v.as_bytes().to_vec()))
        ));
    }
    if let Some(v) = q.since_ms {
        clauses.push(format!("m.created_at_ms >= {}", bind(Value::Integer(v as i64))));
    }
    if let Some(v) = q.until_ms {
        clauses.push(format!("m.created_at_ms < {}", bind(Value::Integer(v as i64))));
    }
    let mut queue: Vec<String> = Vec::new();
    if let Some(v) = &q.item {
        queue.push(format!("q.item = {}", bind(Value::Text(v.clone()))));
    }
    if let Some(v) = q.status {
        queue.push(format!("q.status = {}", bind(Value::Integer(v.code()))));
    }
    if !queue.is_empty() {
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM queue q WHERE q.message_seq = m.seq AND {})",
            queue.join(" AND ")
        ));
    }
    let limit = bind(Value::Integer(q.limit as i64));
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (
        format!("SELECT {columns} FROM messages m {filter} ORDER BY m.seq DESC LIMIT {limit}"),
        values,
    )
}
