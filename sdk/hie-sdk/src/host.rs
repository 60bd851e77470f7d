//! Functions the host offers to a plugin.
//!
//! Inside a component they call the WIT `host` imports; in a native `cargo test`
//! they go to the thread's [`testing`](crate::testing) host, which records them.

use crate::message::{Failure, LogLevel, Message};

#[cfg(target_arch = "wasm32")]
use crate::wasm::backend;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::backend;

/// Writes a log line attributed to the calling item. Bodies only at [`LogLevel::Trace`].
pub fn log(level: LogLevel, text: &str) {
    backend::log(level, text);
}

/// Logs at debug level.
pub fn debug(text: &str) {
    log(LogLevel::Debug, text);
}

/// Logs at info level.
pub fn info(text: &str) {
    log(LogLevel::Info, text);
}

/// Logs at warn level.
pub fn warn(text: &str) {
    log(LogLevel::Warn, text);
}

/// Logs at error level.
pub fn error(text: &str) {
    log(LogLevel::Error, text);
}

/// One of the item's settings.
pub fn setting(key: &str) -> Option<String> {
    backend::setting(key)
}

/// Looks `key` up in the production's lookup table `table`.
pub fn lookup(table: &str, key: &str) -> Option<String> {
    backend::lookup(table, key)
}

/// Sends `msg` to the item `target` without waiting for it to be processed.
pub fn send(target: &str, msg: &Message) -> Result<(), Failure> {
    backend::send(target, msg)
}

/// Sends `msg` to `target` and waits at most `timeout_ms` for its reply; a timeout
/// is a retryable failure with code `timeout`.
pub fn send_request_sync(target: &str, msg: &Message, timeout_ms: u32) -> Result<Message, Failure> {
    backend::send_request_sync(target, msg, timeout_ms)
}

/// Sends `msg` to `target` and returns its correlation id at once; the reply
/// arrives later through [`Plugin::on_reply`](crate::Plugin::on_reply).
pub fn send_request_async(target: &str, msg: &Message) -> Result<String, Failure> {
    backend::send_request_async(target, msg)
}

/// Adds `value` to the plugin-defined counter `name` (no patient data in names).
pub fn counter_add(name: &str, value: u64) {
    backend::counter_add(name, value);
}

/// Records `value` in the plugin-defined histogram `name`.
pub fn histogram_record(name: &str, value: f64) {
    backend::histogram_record(name, value);
}

/// Hands `request` to the item's outbound adapter (operations only: MLLP, file,
/// HTTP) and returns the peer's reply bytes, e.g. the ACK.
///
/// Using this makes the component import `hie:plugin/adapter`, so it only fits
/// the `business-operation` world.
pub fn adapter_call(request: &[u8]) -> Result<Vec<u8>, Failure> {
    backend::adapter_call(request)
}
