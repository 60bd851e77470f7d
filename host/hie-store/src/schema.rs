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
];

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
        ("cache_size", "-65536"),
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
