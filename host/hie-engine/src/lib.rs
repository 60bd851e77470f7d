//! The HIE engine: a production's items with their queues and workers, routing
//! by outcome, the request/reply broker, lifecycle control, and the inbound and
//! outbound adapters.
//!
//! The engine sees business logic only through [`PluginFactory`] and
//! [`hie_core::Plugin`], so it runs WebAssembly plugins (`hie-wasm`) and native
//! test doubles alike.
#![forbid(unsafe_code)]

pub mod adapters;
mod dead_letter;
mod delivery;
mod engine;
mod error;
mod executor;
mod hooks;
pub mod messages;
pub mod metrics;
pub mod outward;
mod persist;
mod plugin;
pub mod process;
mod queue;
mod reload;
mod wasm;
mod worker;

pub use dead_letter::{DEAD_LETTER_LIMIT, DeadLetter, DeadLetterQueue};
pub use delivery::{Delivery, InboundResult, InboundWaiter, ReplyTo, Work};
pub use engine::{Engine, ItemState, ItemStatus, preflight};
pub use error::EngineError;
pub use executor::{Executor, WorkerJoin};
pub use hooks::{BeforeAction, ErrorAction, HookChain, MessageHook};
pub use messages::{MessageDetail, PurgeReport, StoreStatus, field_filter};
pub use persist::{FAULT_FILE_ENV, STORAGE_UNAVAILABLE};
pub use plugin::{ItemInstance, OutboundAdapter, PassThrough, PluginFactory};
pub use queue::{ItemQueue, Lease, PushError, QueueStats, Ticket};
pub use reload::{
    CanaryStatus, ConfigReload, ConfigReloadError, ItemReconfigured, PluginReload, PluginVersion,
    ReloadError, VersionChange, VersionStatus, WorkerVersion, short,
};
pub use wasm::{WasmFactory, check_world, world_fits};
pub use worker::{MessageContext, current_message};
