//! Why a component could not be loaded, and how wasmtime failures become
//! [`hie_core::PluginError`]s.

use std::fmt;

use hie_core::PluginError;
use wasmtime::Trap;

use crate::config::Limits;

/// Why a `.wasm` file could not be loaded. Its `Display` is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("{file}: not a WebAssembly component (no wasm header)")]
    NotWasm {
        /// The file.
        file: String,
    },
    /// A core module rather than a component.
    #[error("{file}: a core wasm module, not a component (build with --target wasm32-wasip2)")]
    CoreModule {
        /// The file.
        file: String,
    },
    /// Built against another major/minor version of `hie:plugin`.
    #[error("{file}: built for hie:plugin@{found}, this host speaks {host}")]
    Version {
        /// The file.
        file: String,
        /// The version the component names.
        found: String,
        /// The versions this host accepts, e.g. `0.1.x`.
        host: String,
    },
    /// Neither `hie:plugin/item` nor `hie:plugin/hooks` is exported (or both are).
    #[error("{file}: {problem}")]
    Exports {
        /// The file.
        file: String,
        /// What is wrong with the exports.
        problem: String,
    },
    /// wasmtime could not parse, validate or compile the component.
    #[error("{file}: invalid component: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// wasmtime's reason, on one line.
        reason: String,
    },
    /// The component's imports or exports do not match what this host provides.
    #[error("{file}: does not fit this host: {reason}")]
    Link {
        /// The file.
        file: String,
        /// wasmtime's reason, on one line.
        reason: String,
    },
    /// The wasmtime engine could not be built from the [`crate::HostConfig`].
    #[error("cannot configure the wasm engine: {reason}")]
    Engine {
        /// wasmtime's reason, on one line.
        reason: String,
    },
}

/// A wasmtime error (with its causes) as one line.
pub(crate) fn one_line(err: &wasmtime::Error) -> String {
    let text = format!("{err:#}");
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The limiter refused to grow linear memory past the item's cap.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub limit: u64,
    pub requested: u64,
}

/// A call ran past its wall-clock deadline.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

/// A call produced more output bytes than its cap.
#[derive(Debug)]
pub(crate) struct OutputLimitExceeded {
    pub size: u64,
    pub limit: u64,
}

impl fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory cap of {} bytes exceeded (wanted {})",
            self.limit, self.requested
        )
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("call deadline exceeded")
    }
}

impl fmt::Display for OutputLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output of {} bytes exceeds the cap of {} bytes",
            self.size, self.limit
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}
impl std::error::Error for DeadlineExceeded {}
impl std::error::Error for OutputLimitExceeded {}

/// Classifies a failed wasmtime call. `stderr_tail` is the guest's last stderr line
/// (a Rust panic message, say), added to trap messages.
pub(crate) fn classify(err: &wasmtime::Error, limits: &Limits, stderr_tail: Option<String>) -> PluginError {
    if let Some(m) = err.downcast_ref::<MemoryLimitExceeded>() {
        return PluginError::MemoryLimit {
            limit_bytes: m.limit,
            requested_bytes: m.requested,
        };
    }
    if err.downcast_ref::<DeadlineExceeded>().is_some() {
        return deadline_error(limits);
    }
    if let Some(o) = err.downcast_ref::<OutputLimitExceeded>() {
        return PluginError::OutputTooLarge {
            size_bytes: o.size,
            limit_bytes: o.limit,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
            fuel: limits.fuel.unwrap_or(u64::MAX),
        },
        Some(Trap::Interrupt) => deadline_error(limits),
        _ => {
            let mut message = one_line(err);
            if let Some(tail) = stderr_tail {
                message.push_str(" (guest stderr: ");
                message.push_str(&tail);
                message.push(')');
            }
            PluginError::Trap { message }
        }
    }
}

fn deadline_error(limits: &Limits) -> PluginError {
    PluginError::Deadline {
        deadline_ms: limits.deadline.as_millis() as u64,
    }
}
