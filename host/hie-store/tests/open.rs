//! Opening: a new store is set up fully, and files that are not a healthy HIE store are refused.

mod common;

use common::{adt, open};
use hie_store::schema::{APPLICATION_ID, DB_FILE, schema_version};
use hie_store::{MessageStore, SqliteStore, StoreConfig, StoreError};

fn open_err(dir: &std::path::Path) -> StoreError {
    match SqliteStore::open(dir, StoreConfig::default()) {
        Ok(_) => panic!("the store opened"),
        Err(e) => e,
    }
}

#[test]
fn an_empty_file_is_migrated_to_the_newest_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    store.ingest(&msg, &idx, "in").unwrap();
    drop(store);

    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let pragma = |name: &str| -> i64 { conn.pragma_query_value(None, name, |r| r.get(0)).unwrap() };
    assert_eq!(pragma("user_version"), schema_version());
    assert_eq!(pragma("application_id"), APPLICATION_ID as i64);
    assert_eq!(pragma("auto_vacuum"), 2, "auto_vacuum is not incremental");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn reopening_keeps_messages_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (msg, idx) = adt("C1", "P1");
    open(dir.path()).ingest(&msg, &idx, "in").unwrap();
    let store = open(dir.path());
    assert_eq!(store.get(msg.id).unwrap().unwrap().envelope, msg);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(DB_FILE),
        b"this is a text file, not a database\n".repeat(200),
    )
    .unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("is corrupt") && text.contains("not a database"),
        "{text}"
    );
}

#[test]
fn a_damaged_store_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..300 {
            let (msg, idx) = adt(&format!("C{i}"), "P1");
            store.ingest(&msg, &idx, "in").unwrap();
        }
    }
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 6 * 4096,
        "store too small to damage: {}",
        bytes.len()
    );
    for b in &mut bytes[2 * 4096..6 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("restore it from a backup"), "{err}");
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch("CREATE TABLE patients (id TEXT); INSERT INTO patients VALUES ('x');")
        .unwrap();
    drop(conn);
    let err = open_err(dir.path());
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a HIE store"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", schema_version() + 1)
        .unwrap();
    drop(conn);
    let err = open_err(dir.path());
    assert_eq!(
        err,
        StoreError::TooNew {
            path: dir.path().join(DB_FILE),
            found: schema_version() + 1,
            supported: schema_version()
        }
    );
    assert!(err.to_string().contains("run a newer hie"));
}
