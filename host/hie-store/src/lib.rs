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
