//! Core types shared by every HIE crate: the message [`Envelope`], what a plugin
//! decides about a message ([`Outcome`], [`Failure`]), the error a plugin call can
//! end with ([`PluginError`]), and the two traits that keep the engine and the
//! WebAssembly host apart ([`Plugin`], [`HostApi`]).
//!
//! No I/O happens here, and the crate builds for `wasm32-wasip2` too.
#![forbid(unsafe_code)]

mod envelope;
mod error;
mod plugin;

pub use envelope::{
    CONTENT_TYPE_HL7V2, CONTENT_TYPE_JSON, DEFAULT_PRIORITY, Envelope, MessageId, Properties, now_ms,
};
pub use error::{Failure, PluginError};
pub use plugin::{BeforeAction, ErrorAction, HostApi, LogLevel, NoHost, Outcome, Plugin, Routed};
