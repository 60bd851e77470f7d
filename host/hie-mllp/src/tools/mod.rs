//! The library behind `hie send` and `hie listen`: load or generate messages, send them
//! pipelined over several connections and report ACKs and latency; run an ACKing sink.

mod listen;
mod messages;
mod send;

pub use listen::{ListenOptions, ListenReport, ListenSession, Sink, SinkStats};
pub use messages::{LoadError, Outgoing, generate_adt_a01, load_messages};
pub use send::{LatencySummary, SendOptions, SendProgress, SendReport, send};
