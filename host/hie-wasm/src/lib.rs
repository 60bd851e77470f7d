//! The WebAssembly plugin host: the only crate that names wasmtime types.
//!
//! A [`WasmHost`] owns one wasmtime engine (Cranelift, pooling allocator, epoch
//! interruption, optional fuel), a linker that offers every `hie:plugin` host
//! interface plus WASI to every component, an epoch ticker thread, and an on-disk
//! cache of compiled components. [`WasmHost::load`] turns a `.wasm` into a
//! [`Component`]; [`Component::instantiate`] turns that into a [`WasmPlugin`], which
//! the engine drives through [`hie_core::Plugin`] (hooks: [`WasmHook`]).
//!
//! # Execution model
//!
//! Execution is synchronous: a call runs on the caller's thread and returns when the
//! guest does. Host imports run on that thread too, so `send-request-sync` and
//! `adapter.call` block it (their waiting time does not count against the call's
//! deadline). Run plugins on threads the engine owns (`thread_pool`,
//! `single_process`), not on an async executor's worker threads.
//!
//! # Limits and failures
//!
//! Every call runs under the item's [`Limits`]: a linear-memory cap, a wall-clock
//! deadline (epochs; the ticker period is the granularity), optional fuel, the
//! engine's wasm stack cap, and a cap on output bytes. A trap or limit hit fails
//! that call with a typed [`hie_core::PluginError`] and the instance is replaced
//! before the next call. Plugins see no network, files or environment variables
//! unless the item's [`Grants`] say so; their stdout and stderr go to the log.
//!
//! # Fuel
//!
//! wasmtime turns fuel metering on for a whole engine. [`HostConfig::fuel_metering`]
//! is on by default so any item may set [`Limits::fuel`]; items without a limit run
//! with an unlimited budget and pay only the metering (see `benches/benches/wasm.rs`
//! for the measured cost). Turn it off for hosts that never limit fuel.
//!
//! Set `RUST_BACKTRACE=0` in production: with backtraces on, every trap captures a
//! native backtrace.

#![warn(missing_docs)]

mod bindings;
mod cache;
mod component;
mod config;
mod convert;
mod error;
mod host;
mod inspect;
mod instance;
mod state;
mod stdio;

pub use cache::WASMTIME_VERSION;
pub use component::{Component, ItemContext, LoadStats};
pub use config::{DirGrant, Grants, HostConfig, Limits, default_cache_dir};
pub use error::LoadError;
pub use host::WasmHost;
pub use inspect::{
    ComponentInfo, PLUGIN_PACKAGE_VERSION, PluginWorld, TargetWorld, inspect, inspect_as, inspect_bytes,
};
pub use instance::{BeforeAction, ErrorAction, WasmHook, WasmPlugin};
pub use state::Adapter;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    /// The engine shares hosts and components across threads and moves instances.
    #[test]
    fn shared_types_cross_threads() {
        send_sync::<WasmHost>();
        send_sync::<Component>();
        send::<WasmPlugin>();
        send::<WasmHook>();
    }
}
