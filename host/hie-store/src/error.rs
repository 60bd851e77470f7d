use std::path::PathBuf;

use hie_core::MessageId;

/// Why a store operation did not happen. Every write that returns an error was
/// not committed, so the caller must not acknowledge the message it carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk refused a write or an fsync (I/O error, full disk): nothing in the
    /// failing batch was committed and intake stays refused until a probe write succeeds.
    #[error(
        "store is unavailable and nothing was committed ({reason}); free disk space or fix the disk under \
         the data directory, intake resumes once a probe write succeeds"
    )]
    Unavailable {
        /// What the disk or SQLite reported.
        reason: String,
    },
    /// The file is an SQLite database of another program.
    #[error("{} is not a HIE store ({detail}); choose another data directory or move the file away", path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file is damaged or not a database at all.
    #[error(
        "{} is corrupt ({detail}); restore it from a backup, or move it away to start an empty store",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the integrity check reported.
        detail: String,
    },
    /// The file was written by a newer build with a schema this build does not know.
    #[error(
        "{} has schema version {found} but this build knows versions up to {supported}; run a newer hie \
         against it",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Schema version in the file.
        found: i64,
        /// Newest schema version this build can migrate to.
        supported: i64,
    },
    /// The database file could not be opened or set up.
    #[error("cannot open the store in {}: {detail}; check that the directory exists and is writable", path.display())]
    Open {
        /// The data directory or file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// No message with this id is stored.
    #[error("message {id} is not in the store; it may have been purged")]
    NotFound {
        /// The id looked up.
        id: MessageId,
    },
    /// A message with this id is stored already.
    #[error("message {id} is already stored; give a derived or resent message a fresh id")]
    AlreadyStored {
        /// The id that collided.
        id: MessageId,
    },
    /// The message has no queue entry in the state the request needs.
    #[error("message {id} at item {item} is {found}, not {expected}; list it again and retry")]
    WrongState {
        /// The message.
        id: MessageId,
        /// The item whose queue entry was looked at.
        item: String,
        /// The state the request needs.
        expected: String,
        /// The state found (`absent` if there is no entry).
        found: String,
    },
    /// The request itself is malformed.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// A stored row could not be turned back into a message.
    #[error(
        "stored message {id} cannot be decoded ({detail}); the row may be damaged, restore from a backup"
    )]
    Decode {
        /// The message.
        id: MessageId,
        /// What failed to decode.
        detail: String,
    },
    /// A read query failed.
    #[error("store query failed ({0}); retry, and check the store file if it persists")]
    Query(String),
    /// The store was shut down, or its writer thread stopped.
    #[error("store writer is stopped, nothing was committed; reopen the store")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Query(e.to_string())
    }
}
