use serde::{Deserialize, Serialize};

/// A business failure reported by a plugin or the host: a code, a human text,
/// and whether trying again may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {text}")]
pub struct Failure {
    /// Short machine-readable code, e.g. `no-route`, `timeout`, `bad-message`.
    pub code: String,
    /// What went wrong, for a person.
    pub text: String,
    /// Whether the same message may succeed if tried again.
    pub retryable: bool,
}

impl Failure {
    /// A failure that will not go away by retrying.
    pub fn permanent(code: impl Into<String>, text: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            text: text.into(),
            retryable: false,
        }
    }

    /// A failure that may go away by retrying.
    pub fn transient(code: impl Into<String>, text: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            text: text.into(),
            retryable: true,
        }
    }
}

/// Why a call into a plugin did not produce an outcome. Every variant fails only
/// the one call; the host replaces a broken instance before the next call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PluginError {
    /// The plugin ran and returned a failure of its own.
    #[error("plugin failed: {0}")]
    Failed(Failure),
    /// The guest trapped (panic, unreachable, out-of-bounds access, …).
    #[error("plugin trapped: {message}")]
    Trap {
        /// The trap reason and guest backtrace as wasmtime reported it.
        message: String,
    },
    /// The call ran past its wall-clock deadline and was interrupted.
    #[error("plugin call exceeded its deadline of {deadline_ms} ms")]
    Deadline {
        /// The deadline that was hit.
        deadline_ms: u64,
    },
    /// The call ran out of fuel (instruction budget).
    #[error("plugin call ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The fuel budget per call.
        fuel: u64,
    },
    /// The guest tried to grow its linear memory past the item's cap.
    #[error("plugin exceeded its memory cap of {limit_bytes} bytes (wanted {requested_bytes})")]
    MemoryLimit {
        /// The cap.
        limit_bytes: u64,
        /// The size the guest asked for.
        requested_bytes: u64,
    },
    /// The guest returned more bytes than the item allows.
    #[error("plugin output of {size_bytes} bytes exceeds the cap of {limit_bytes} bytes")]
    OutputTooLarge {
        /// Bytes returned.
        size_bytes: u64,
        /// The cap.
        limit_bytes: u64,
    },
    /// The plugin could not be loaded or instantiated.
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin's process (multi_process execution) died during the call.
    #[error("plugin worker died during the call: {0}")]
    WorkerDied(String),
}

impl PluginError {
    /// Whether the message may succeed on another attempt.
    pub fn is_retryable(&self) -> bool {
        match self {
            PluginError::Failed(f) => f.retryable,
            PluginError::WorkerDied(_) | PluginError::Instantiate(_) => true,
            _ => false,
        }
    }

    /// A short stable code for metrics and ERR segments.
    pub fn code(&self) -> &str {
        match self {
            PluginError::Failed(f) => &f.code,
            PluginError::Trap { .. } => "trap",
            PluginError::Deadline { .. } => "deadline",
            PluginError::OutOfFuel { .. } => "out-of-fuel",
            PluginError::MemoryLimit { .. } => "memory-limit",
            PluginError::OutputTooLarge { .. } => "output-too-large",
            PluginError::Instantiate(_) => "instantiate",
            PluginError::WorkerDied(_) => "worker-died",
        }
    }
}
