//! The durable message store of HIE: "ACK means stored".
//!
//! [`MessageStore`] is the backend trait; [`SqliteStore`] is the default backend,
//! one SQLite file (`hie-store.sqlite`) in the production's data directory, in WAL
//! mode with `synchronous=FULL`. All writes go through one writer thread that
//! drains every pending [`WriteBatch`] into one transaction (group commit), so many
//! callers share each fsync; each caller is answered only after that transaction
//! committed. A failed write or fsync answers every caller of the transaction with
//! [`StoreError::Unavailable`] and refuses intake until a probe write succeeds.
//!
//! The store never parses message bodies: callers pass the header values to index
//! in an [`Indexed`].
//!
//! ```
//! use hie_core::Envelope;
//! use hie_store::{Indexed, MessageStore, SqliteStore, Status, StoreConfig, WriteBatch};
//!
//! # fn main() -> Result<(), hie_store::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path(), StoreConfig::default())?;
//! let msg = Envelope::hl7("adt-in", "MSH|^~\\&|LAB|HOSP|||20260101||ADT^A01|C1|P|2.5\r");
//! let idx = Indexed { control_id: Some("C1".into()), ..Indexed::default() };
//! store.ingest(&msg, &idx, "router")?; // durable now: safe to ACK
//!
//! // a hop finishing and the messages it derived commit together
//! let child = msg.derive("router", "...");
//! let mut batch = WriteBatch::new();
//! batch
//!     .enqueue(&child, &idx, "lab-out")
//!     .mark(msg.id, "router", Status::Done, 1, Some("sha256:..."), None);
//! store.write(batch)?; // from async code: `store.submit(batch).await?`
//!
//! // after a restart, everything not done comes back in queue order per item
//! let open = store.recover()?;
//! assert_eq!(open[0].item, "lab-out");
//! # Ok(())
//! # }
//! ```
//!
//! # Using it from the engine
//!
//! - **Start**: open the store, then [`MessageStore::recover`] and put each entry
//!   back on its item's queue in the order returned (FIFO per item); entries with
//!   `was_in_flight` already carry the next attempt number.
//! - **Commit-ACK mode**: extract MSH-3/4/9/10 and PID-3 into an [`Indexed`], build
//!   the ACK, call [`MessageStore::ingest_dedup`] with it, and send the ACK only on
//!   `Ok`. On `Ingested::Duplicate { ack: Some(a) }` send `a` again; on
//!   `Duplicate { ack: None }` the first copy is still being processed. On `Err`
//!   send a NAK or nothing: the message is not stored.
//! - **Application mode**: `ingest_dedup(.., None)`, route, then
//!   [`MessageStore::record_ack`] with the ACK the route produced.
//! - **Hops**: mark `InFlight` before calling a plugin and `Done`/`Failed`/`DeadLettered`
//!   after, with the plugin version; put the messages a route derives and the
//!   parent's `Done` in one [`WriteBatch`] so they commit together.
//! - **Async**: `store.submit(batch).await`; the other write methods and all reads block
//!   the calling thread.
//! - **`/ready`**: [`MessageStore::is_writable`]; after a write error intake is refused
//!   until a probe write (of [`StoreConfig::probe_bytes`]) commits.
//! - **Retention**: [`SqliteStore::spawn_retention`] purges done messages older than
//!   the policy allows and gives the space back to the file system.
#![forbid(unsafe_code)]

mod batch;
mod completion;
mod config;
mod error;
mod model;
mod read;
mod rows;
pub mod schema;
mod sqlite;
mod store;
mod writer;

pub use batch::{Applied, BatchOutcome, WriteBatch};
pub use completion::Pending;
pub use config::{Clock, FaultInjector, ManualClock, StoreConfig};
pub use error::StoreError;
pub use model::{
    AckKey, Commit, DeadLetter, Indexed, Ingested, ItemState, MessageSummary, Recovered, SearchQuery, Status,
    StoredMessage, TraceEvent, TraceKey,
};
pub use sqlite::{RetentionPolicy, RetentionReport, RetentionTask, SqliteStore, StoreStats};
pub use store::MessageStore;
