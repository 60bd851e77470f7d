//! Opening the database file: identity and integrity checks, pragmas, migrations.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::StoreError;

/// `PRAGMA application_id` of a HIE store ("HIE1"), so a foreign SQLite file is refused.
pub const APPLICATION_ID: i32 = 0x4849_4531;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "hie-store.sqlite";

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Ordered schema migrations; migration `i` brings `user_version` from `i` to `i + 1`.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: messages, their per-item state, the event log, the ACK cache
    "
    CREATE TABLE messages (
        seq              INTEGER PRIMARY KEY,
        id               BLOB NOT NULL UNIQUE,
        session_id       BLOB NOT NULL,
        correlation_id   BLOB,
        parent_id        BLOB,
        source           TEXT NOT NULL,
        target           TEXT NOT NULL,
        priority         INTEGER NOT NULL,
        created_at_ms    INTEGER NOT NULL,
        stored_at_ms     INTEGER NOT NULL,
        content_type     TEXT NOT NULL,
        control_id       TEXT,
        message_type     TEXT,
        sending_app      TEXT,
        sending_facility TEXT,
        patient_id       TEXT,
        properties       BLOB NOT NULL,
        attempt          INTEGER NOT NULL,
        body             BLOB NOT NULL
    );
    CREATE INDEX messages_control_id ON messages (control_id, sending_app, sending_facility);
    CREATE INDEX messages_patient_id ON messages (patient_id);
    CREATE INDEX messages_session_id ON messages (session_id);
    CREATE INDEX messages_created_at ON messages (created_at_ms);

    -- current state of a message at an item; qseq is the queue order
    CREATE TABLE queue (
        qseq          INTEGER PRIMARY KEY,
        message_seq   INTEGER NOT NULL,
        item          TEXT NOT NULL,
        status        INTEGER NOT NULL,
        attempt       INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        UNIQUE (message_seq, item)
    );
    -- open work (queued, in-flight, failed) per item in queue order
    CREATE INDEX queue_open ON queue (item, qseq) WHERE status IN (0, 1, 3);
    CREATE INDEX queue_status ON queue (status, item);

    -- one row per status change, for trace
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY,
        message_seq    INTEGER NOT NULL,
        item           TEXT NOT NULL,
        status         INTEGER NOT NULL,
        at_ms          INTEGER NOT NULL,
        attempt        INTEGER NOT NULL,
        plugin_version TEXT,
        error          TEXT
    );
    CREATE INDEX events_message ON events (message_seq);

    CREATE TABLE acks (
        sending_app      TEXT NOT NULL,
        sending_facility TEXT NOT NULL,
        control_id       TEXT NOT NULL,
        ack              BLOB NOT NULL,
        message_id       BLOB,
        at_ms            INTEGER NOT NULL,
        PRIMARY KEY (sending_app, sending_facility, control_id)
    ) WITHOUT ROWID;
    CREATE INDEX acks_at ON acks (at_ms);

    -- written by probe writes while the store is faulted
    CREATE TABLE probe (
        id    INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        pad   BLOB NOT NULL
    );
    ",
    // 2: less work per hop. `queue_status` (an entry moved on every status
    // change) becomes a partial index of the dead letters only; events are keyed by
    // (message, seq) in one b-tree instead of a rowid table plus an index, their
    // order kept by a counter the writer stores once per transaction.
    "
    DROP INDEX queue_status;
    CREATE INDEX queue_dead ON queue (qseq) WHERE status = 4;
    -- `IN (0, 1, 3)` made every insert into and update of `queue` build an
    -- ephemeral table to test the index's condition; the same set as ORs does not.
    -- Queries meant to use this index must spell the condition the same way.
    DROP INDEX queue_open;
    CREATE INDEX queue_open ON queue (item, qseq) WHERE status = 0 OR status = 1 OR status = 3;

    CREATE TABLE events_by_message (
        message_seq    INTEGER NOT NULL,
        seq            INTEGER NOT NULL,
        item           TEXT NOT NULL,
        status         INTEGER NOT NULL,
        at_ms          INTEGER NOT NULL,
        attempt        INTEGER NOT NULL,
        plugin_version TEXT,
        error          TEXT,
        PRIMARY KEY (message_seq, seq)
    ) WITHOUT ROWID;
    INSERT INTO events_by_message
        SELECT message_seq, seq, item, status, at_ms, attempt, plugin_version, error FROM events;

    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO counters (name, value) SELECT 'event_seq', coalesce(max(seq), 0) FROM events;

    DROP TABLE events;
    ALTER TABLE events_by_message RENAME TO events;
    ",
    // 3: a routed copy whose body is its parent's, byte for byte, stores no body of
    // its own: `body_of` is the `seq` of the row holding it (NULL: the row's own).
    // Purge gives such a copy its body back before it deletes the row holding it.
    "
    ALTER TABLE messages ADD COLUMN body_of INTEGER;
    ",
    // 4: the ACK sent for an inbound message is kept in its own row, found for a
    // re-send through `messages_control_id`, instead of a second, randomly placed
    // b-tree written for every message. `acks` keeps only the ACKs whose message
    // is gone (purged inside the de-duplication window) or was never found.
    "
    ALTER TABLE messages ADD COLUMN ack BLOB;
    UPDATE messages SET ack = a.ack FROM acks a
        WHERE messages.control_id = a.control_id AND messages.parent_id IS NULL
        AND coalesce(messages.sending_app, '') = a.sending_app
        AND coalesce(messages.sending_facility, '') = a.sending_facility;
    DELETE FROM acks WHERE EXISTS (SELECT 1 FROM messages m
        WHERE m.control_id = acks.control_id AND m.parent_id IS NULL AND m.ack IS NOT NULL
        AND coalesce(m.sending_app, '') = acks.sending_app
        AND coalesce(m.sending_facility, '') = acks.sending_facility);
    ",
];

/// Name of the row of `counters` that holds the last event `seq` written.
pub(crate) const EVENT_SEQ: &str = "event_seq";

/// The last event `seq` committed.
pub(crate) fn last_event_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM counters WHERE name = ?1", [EVENT_SEQ], |r| {
        r.get(0)
    })
}

/// Newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Open (creating if needed) the writer connection: refuse foreign, corrupt and too
/// new files, set WAL + `synchronous=FULL`, and migrate to the newest schema.
pub(crate) fn open_writer(path: &Path, check: bool) -> Result<Connection, StoreError> {
    check_header(path)?;
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| open_error(path, e))?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let fresh = app_id == 0 && version == 0 && tables == 0;
    if !fresh && app_id != APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            detail: format!(
                "application id {app_id:#x} instead of {APPLICATION_ID:#x}, {tables} schema objects"
            ),
        });
    }
    if version > schema_version() {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: schema_version(),
        });
    }
    if !fresh && check {
        quick_check(&conn, path)?;
    }
    if fresh {
        // must happen before the first table exists, or vacuum can never give space back
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| open_error(path, e))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| open_error(path, e))?;
    }
    set_pragmas(&conn, path)?;
    migrate(&conn, path, version)?;
    Ok(conn)
}

/// Open a read-only connection to an existing store.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| open_error(path, e))?;
    conn.pragma_update(None, "cache_size", -16_384)
        .map_err(|e| open_error(path, e))?;
    Ok(conn)
}

fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Open {
                path: path.to_owned(),
                detail: e.to_string(),
            });
        }
    };
    let mut head = Vec::with_capacity(16);
    file.by_ref()
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Open {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if head.is_empty() || head.as_slice() == SQLITE_MAGIC {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_owned(),
        detail: "the file does not start with the SQLite header, it is not a database".to_owned(),
    })
}

fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| open_error(path, e))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| open_error(path, e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_owned(),
        detail: format!("quick_check: {}", lines.join("; ")),
    })
}

/// Per-connection settings of the writer; also used when it reconnects after a fault.
pub(crate) fn set_pragmas(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_owned(),
            detail: format!("the file system refused WAL mode (journal mode is {mode})"),
        });
    }
    for (name, value) in [
        // an ACK means the transaction is fsynced, WAL included
        ("synchronous", "FULL"),
        ("temp_store", "MEMORY"),
        ("cache_size", "-8192"),
        ("journal_size_limit", "67108864"),
        // checkpoint every 16 MiB of WAL rather than 4 MiB: a page changed by many
        // commits in between is copied to the database once
        ("wal_autocheckpoint", "4096"),
    ] {
        conn.pragma_update(None, name, value)
            .map_err(|e| open_error(path, e))?;
    }
    Ok(())
}

fn migrate(conn: &Connection, path: &Path, from: i64) -> Result<(), StoreError> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = i as i64 + 1;
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", to)?;
            conn.execute_batch("COMMIT")
        };
        if let Err(e) = run() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(StoreError::Open {
                path: path.to_owned(),
                detail: format!("schema migration to version {to} failed: {e}"),
            });
        }
        tracing::info!(version = to, "store schema migrated");
    }
    Ok(())
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_owned(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageStore, SqliteStore, Status, StoreConfig, TraceKey};

    /// A version 1 store with one message: queued then in flight at `router`, and a
    /// dead letter at `out` whose reason is in its event.
    fn version_1_store(path: &Path, id: uuid::Uuid) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO messages (seq, id, session_id, source, target, priority, created_at_ms, \
             stored_at_ms, content_type, properties, attempt, body) \
             VALUES (1, ?1, ?1, 'in', 'router', 0, 1000, 1000, 'hl7', x'80', 1, 'MSH|')",
            [id.as_bytes()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO queue (qseq, message_seq, item, status, attempt, updated_at_ms) VALUES
                 (1, 1, 'router', 1, 1, 1001), (2, 1, 'out', 4, 1, 1003);
             INSERT INTO events (seq, message_seq, item, status, at_ms, attempt, error) VALUES
                 (7, 1, 'router', 0, 1000, 1, NULL), (8, 1, 'router', 1, 1001, 1, NULL),
                 (9, 1, 'out', 4, 1003, 1, 'boom: down');",
        )
        .unwrap();
    }

    /// Fingerprints of the released migrations' texts.
    const RELEASED_1: u64 = 0xe906_6fdd_0102_ba0c;
    const RELEASED_2: u64 = 0x560e_a310_f67e_ed97;
    const RELEASED_3: u64 = 0x3fd6_c267_daa3_2d37;
    const RELEASED_4: u64 = 0x378e_ee74_92f8_dc82;

    /// FNV-1a of a migration's text.
    fn fingerprint(sql: &str) -> u64 {
        sql.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn released_migrations_are_never_edited() {
        // a store already at version N never runs migration N again, so an edit to a
        // released entry reaches only new stores: append a migration instead
        let released: [u64; 4] = [RELEASED_1, RELEASED_2, RELEASED_3, RELEASED_4];
        for (i, want) in released.iter().enumerate() {
            assert_eq!(
                fingerprint(MIGRATIONS[i]),
                *want,
                "migration {} was edited",
                i + 1
            );
        }
    }

    #[test]
    fn a_version_1_store_keeps_its_trace_queues_and_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::now_v7();
        version_1_store(&dir.path().join(DB_FILE), id);
        let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        // a new event follows the migrated ones
        store.mark(id, "router", Status::Done, 1, None, None).unwrap();
        let trace = store.trace(TraceKey::Message(id)).unwrap();
        let seen: Vec<(&str, Status, u64)> = trace
            .iter()
            .map(|e| (e.item.as_str(), e.status, e.at_ms))
            .collect();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(
            seen[..3],
            [
                ("router", Status::Queued, 1000),
                ("router", Status::InFlight, 1001),
                ("out", Status::DeadLettered, 1003)
            ]
        );
        assert_eq!((seen[3].0, seen[3].1), ("router", Status::Done));
        let dead = store.dead_letters(None, 10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].error.as_deref(), Some("boom: down"));
        // the counter went on from the highest migrated seq and survives a reopen
        drop(store);
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        assert_eq!(last_event_seq(&conn).unwrap(), 10);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema_version());
    }
}
