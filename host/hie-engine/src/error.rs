//! Errors of building and controlling a running production.

/// Why the engine could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The production asks for something this engine does not do yet.
    #[error("item {item}: {what} is not supported yet")]
    Unsupported {
        /// The item.
        item: String,
        /// What it asked for.
        what: String,
    },
    /// A setting only checked when the production is built is invalid.
    #[error("{file}:{line}: items[{item}].{field}: {message}")]
    Invalid {
        /// The production file.
        file: String,
        /// Line of the field.
        line: usize,
        /// The item.
        item: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No item has this name.
    #[error("no item named {0:?}")]
    UnknownItem(String),
    /// The item's state does not allow what was asked.
    #[error("item {item} {message}")]
    State {
        /// The item.
        item: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// A listener could not bind its address.
    #[error("item {item}: cannot listen on {addr}: {source}")]
    Bind {
        /// The item.
        item: String,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("item {item}: cannot start a worker: {source}")]
    Spawn {
        /// The item.
        item: String,
        /// Why.
        source: std::io::Error,
    },
    /// Any other I/O failure while starting (directories of file adapters, …).
    #[error("item {item}: {source}")]
    Io {
        /// The item.
        item: String,
        /// Why.
        source: std::io::Error,
    },
    /// The message store refused or failed a request (see the store error for what to do).
    #[error(transparent)]
    Store(#[from] hie_store::StoreError),
    /// The production runs without a store (`[store] backend = "none"`).
    #[error(
        "the production runs without a message store (backend \"none\"); set [store] backend = \"sqlite\" to keep messages"
    )]
    NoStore,
    /// The engine must run inside a tokio runtime.
    #[error("the engine must be started inside a tokio runtime")]
    NoRuntime,
}
