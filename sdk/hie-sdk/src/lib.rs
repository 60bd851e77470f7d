//! Rust SDK for HIE plugins.
//!
//! A plugin is a WebAssembly component that the HIE host runs as the business
//! logic of an item. With this crate a plugin is a type that implements
//! [`Plugin`] — only [`Plugin::on_message`] is required — and one line,
//! [`export!`], that makes it the component's `hie:plugin/item` export.
//!
//! ```
//! use hie_sdk::prelude::*;
//!
//! /// Sends ADT messages to `adt` and everything else to `other`.
//! #[derive(Default)]
//! struct AdtSplitter;
//!
//! impl Plugin for AdtSplitter {
//!     fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
//!         let hl7 = msg.parse_hl7()?;
//!         let target = if hl7.get("MSH-9.1") == Some("ADT".into()) { "adt" } else { "other" };
//!         hie_sdk::host::counter_add("routed", 1);
//!         Ok(Outcome::forward(target, msg))
//!     }
//! }
//!
//! hie_sdk::export!(AdtSplitter);
//!
//! // The same plugin, tested natively (plain `cargo test`):
//! let mut h = Harness::<AdtSplitter>::new();
//! let out = h.hl7("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||42\r").unwrap();
//! assert_eq!(out.targets(), ["adt"]);
//! assert_eq!(h.counter("routed"), 1);
//! ```
//!
//! Build the component with `hie plugin build` (or `cargo build --release
//! --target wasm32-wasip2` in a `cdylib` crate) and test it in the real host
//! with `hie plugin test`.
//!
//! What is where:
//! - [`Message`], [`Outcome`], [`Failure`], [`Settings`]: the values a plugin handles.
//! - [`host`]: log, settings, lookup tables, send and request/reply, counters, the adapter.
//! - [`hl7`]: parse an HL7 v2 body, read and write fields by path (`PID-3(1).1`), build ACKs.
//! - [`testing`] (native only): [`Harness`] runs a plugin under `cargo test` with
//!   settings and lookups you give it and records what it sent and logged.
//! - [`Hook`] and [`export_hook!`]: message hooks (the `message-hook` world).
//!
//! A component exports either an item or hooks, so a crate calls exactly one of
//! [`export!`] and [`export_hook!`]. Host imports the plugin does not use are
//! left out of the component: a plugin that never calls [`host::adapter_call`]
//! fits the `business-service` and `business-process` worlds as well as
//! `business-operation`.
#![deny(missing_docs)]

// Lets the generated bindings name this crate as `hie_sdk` from inside it too.
#[cfg(target_arch = "wasm32")]
extern crate self as hie_sdk;

pub mod hl7;
mod hook;
pub mod host;
mod message;
mod plugin;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use hook::{BeforeAction, ErrorAction, Hook};
pub use message::{
    CONTENT_TYPE_HL7V2, CONTENT_TYPE_JSON, Failure, LogLevel, Message, Outcome, Routed, Settings, SyntaxError,
};
pub use plugin::Plugin;
#[cfg(not(target_arch = "wasm32"))]
pub use testing::Harness;

/// Everything a plugin usually needs, for `use hie_sdk::prelude::*`.
pub mod prelude {
    pub use crate::hl7::Hl7;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::Harness;
    pub use crate::{
        BeforeAction, ErrorAction, Failure, Hook, LogLevel, Message, Outcome, Plugin, Routed, Settings,
        SyntaxError,
    };
}

/// Glue used by [`export!`] and [`export_hook!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::hook::HookExport;
    pub use crate::plugin::{ItemExport, assert_hook, assert_plugin};
    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{hook_bindings, item_bindings};
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
}

/// Makes `$plugin` (a type implementing [`Plugin`]) the component's item export.
///
/// Call it once, at the root of a `cdylib` crate. In a native build it only
/// checks that the type implements [`Plugin`], so the crate's tests build too.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            type HieItemExport = $crate::__private::ItemExport<$plugin>;
            $crate::__private::item_bindings::export_item!(
                HieItemExport with_types_in $crate::__private::item_bindings
            );
        };
    };
}

/// Makes `$plugin` (a type implementing [`Plugin`]) the component's item export.
///
/// Call it once, at the root of a `cdylib` crate. In a native build it only
/// checks that the type implements [`Plugin`], so the crate's tests build too.
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: fn() = $crate::__private::assert_plugin::<$plugin>;
    };
}

/// Makes `$hook` (a type implementing [`Hook`]) the component's hooks export
/// (world `message-hook`).
///
/// Call it once, at the root of a `cdylib` crate, instead of [`export!`].
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! export_hook {
    ($hook:ty) => {
        const _: () = {
            type HieHookExport = $crate::__private::HookExport<$hook>;
            $crate::__private::hook_bindings::export_hook!(
                HieHookExport with_types_in $crate::__private::hook_bindings
            );
        };
    };
}

/// Makes `$hook` (a type implementing [`Hook`]) the component's hooks export
/// (world `message-hook`).
///
/// Call it once, at the root of a `cdylib` crate, instead of [`export!`].
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! export_hook {
    ($hook:ty) => {
        const _: fn() = $crate::__private::assert_hook::<$hook>;
    };
}
