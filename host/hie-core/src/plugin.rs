use serde::{Deserialize, Serialize};

use crate::{Envelope, Failure, PluginError};

/// What a plugin decided to do with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Processed; nothing further to send.
    Done,
    /// Send this message to the item's configured targets.
    Pass(Envelope),
    /// Send each message to the named target item.
    Forward(Vec<Routed>),
    /// Reply to whoever sent the message (request/reply, or the inbound ACK).
    Reply(Envelope),
    /// Deliberately discarded, with the reason (recorded in the trace).
    Drop(String),
}

/// A message addressed to one target item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    /// Name of the target item.
    pub target: String,
    /// The message to send.
    pub message: Envelope,
}

/// What a message hook decided before a message is processed or sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BeforeAction {
    /// Go on with this message (the hook may have changed body, properties, content
    /// type, priority or correlation id; identity is kept).
    Continue(Envelope),
    /// Do not process or send it; not an error. The text is recorded.
    Skip(String),
    /// Refuse it as an error (a NAK for an inbound message).
    Reject(Failure),
}

/// What a message hook decided after processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorAction {
    /// Let the engine's normal error handling decide (retry policy, dead-letter).
    Default,
    /// Try the message again (within the retry policy's attempts).
    Retry,
    /// Move it to the dead-letter queue now.
    DeadLetter,
    /// Treat it as done; the failure is recorded but not acted on.
    Suppress,
}

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Very detailed; may include message bodies.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not fail the message.
    Warn,
    /// A failure.
    Error,
}

/// One instance of business logic as the engine sees it. Implemented by the
/// WebAssembly host (`hie-wasm`), by the multi-process proxy, and by test doubles.
pub trait Plugin: Send {
    /// Process one message. An `Err` fails this message only.
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError>;

    /// Deliver the reply (or failure) of an earlier `send-request-async`.
    fn on_reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Envelope, Failure>,
    ) -> Result<Outcome, PluginError> {
        let _ = (correlation_id, reply);
        Ok(Outcome::Done)
    }
}

/// What the engine offers to business logic while it runs: the host imports of
/// the WIT `host` interface, implemented once by the engine (or proxied to it).
///
/// Every method is called from the thread running the plugin and may block it
/// (`send_request_sync` waits for a reply up to its timeout).
pub trait HostApi: Send + Sync {
    /// Write a log line on behalf of `item`.
    fn log(&self, item: &str, level: LogLevel, text: &str);
    /// Look a value up in a named lookup table.
    fn lookup(&self, table: &str, key: &str) -> Option<String>;
    /// Fire and forget `msg` to `target`.
    fn send(&self, from: &str, target: &str, msg: Envelope) -> Result<(), Failure>;
    /// Send `msg` to `target` and wait for its reply, at most `timeout_ms`.
    fn send_request_sync(
        &self,
        from: &str,
        target: &str,
        msg: Envelope,
        timeout_ms: u32,
    ) -> Result<Envelope, Failure>;
    /// Send `msg` to `target`; the reply comes back later through
    /// [`Plugin::on_reply`] with the returned correlation id.
    fn send_request_async(&self, from: &str, target: &str, msg: Envelope) -> Result<String, Failure>;
    /// Add to a plugin-defined counter.
    fn counter_add(&self, item: &str, name: &str, value: u64);
    /// Record a value in a plugin-defined histogram.
    fn histogram_record(&self, item: &str, name: &str, value: f64);
}

/// A [`HostApi`] with nowhere to send: logs are dropped, lookups find nothing,
/// sends fail with `no-engine`. For tools that run a plugin alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHost;

impl HostApi for NoHost {
    fn log(&self, _item: &str, _level: LogLevel, _text: &str) {}
    fn lookup(&self, _table: &str, _key: &str) -> Option<String> {
        None
    }
    fn send(&self, _from: &str, target: &str, _msg: Envelope) -> Result<(), Failure> {
        Err(no_engine(target))
    }
    fn send_request_sync(
        &self,
        _from: &str,
        target: &str,
        _msg: Envelope,
        _timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        Err(no_engine(target))
    }
    fn send_request_async(&self, _from: &str, target: &str, _msg: Envelope) -> Result<String, Failure> {
        Err(no_engine(target))
    }
    fn counter_add(&self, _item: &str, _name: &str, _value: u64) {}
    fn histogram_record(&self, _item: &str, _name: &str, _value: f64) {}
}

fn no_engine(target: &str) -> Failure {
    Failure::permanent(
        "no-engine",
        format!("cannot send to {target}: this plugin runs outside a production"),
    )
}
