//! MLLP: framing codec, inbound listener, outbound client with ACK wait.
//!
//! - [`codec`]: the `0x0B … 0x1C 0x0D` framing as a tokio-util codec.
//! - [`server`]: the listener ([`server::Listener`], [`server::serve`]) calling a
//!   [`server::FrameHandler`] per frame, in order, with bounded read-ahead.
//! - [`client`]: [`client::MllpClient`] (request/reply with reconnect and ACK
//!   timeout) and the pipelining [`client::Connection`].
//! - [`error`]: [`MllpError`] and its [`ErrorKind`].
#![forbid(unsafe_code)]

pub mod blocking;
pub mod client;
pub mod codec;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod tls;
pub mod tools;

pub use error::{ErrorKind, MllpError};
