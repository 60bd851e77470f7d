//! The component side: WIT bindings, conversions to the SDK's types, and the
//! exports that drive a [`Plugin`] or a [`Hook`].

use crate::hook::{BeforeAction, ErrorAction, Hook, HookExport};
use crate::message::{Failure, LogLevel, Message, Outcome, Routed, Settings};
use crate::plugin::{ItemExport, Plugin, instance};

/// Bindings for the `business-operation` world: it imports everything an item
/// may use (`host`, `adapter`) and exports `item`; imports a plugin does not
/// call are dropped from its component, so it also fits service and process.
// Generated code: the canonical ABI glue is `unsafe` by nature and written by wit-bindgen.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod item_bindings {
    wit_bindgen::generate!({
        world: "business-operation",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_item",
        default_bindings_module: "hie_sdk::__private::item_bindings",
        runtime_path: "hie_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings for the `message-hook` world, sharing the item bindings' types and host imports.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod hook_bindings {
    wit_bindgen::generate!({
        world: "message-hook",
        path: "../../wit",
        with: {
            "hie:plugin/types@0.1.0": hie_sdk::__private::item_bindings::hie::plugin::types,
            "hie:plugin/host@0.1.0": hie_sdk::__private::item_bindings::hie::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_hook",
        default_bindings_module: "hie_sdk::__private::hook_bindings",
        runtime_path: "hie_sdk::__private::wit_bindgen::rt",
    });
}

use hook_bindings::exports::hie::plugin::hooks as wit_hooks;
use item_bindings::exports::hie::plugin::item as wit_item;
use item_bindings::hie::plugin::{adapter as wit_adapter, host as wit_host, types as wit};

impl From<wit::Message> for Message {
    fn from(m: wit::Message) -> Message {
        Message {
            id: m.id,
            session_id: m.session_id,
            correlation_id: m.correlation_id,
            source: m.source,
            content_type: m.content_type,
            priority: m.priority,
            properties: m.properties,
            attempt: m.attempt,
            body: m.body,
        }
    }
}

impl From<Message> for wit::Message {
    fn from(m: Message) -> wit::Message {
        wit::Message {
            id: m.id,
            session_id: m.session_id,
            correlation_id: m.correlation_id,
            source: m.source,
            content_type: m.content_type,
            priority: m.priority,
            properties: m.properties,
            attempt: m.attempt,
            body: m.body,
        }
    }
}

impl From<wit::Failure> for Failure {
    fn from(f: wit::Failure) -> Failure {
        Failure {
            code: f.code,
            text: f.text,
            retryable: f.retryable,
        }
    }
}

impl From<Failure> for wit::Failure {
    fn from(f: Failure) -> wit::Failure {
        wit::Failure {
            code: f.code,
            text: f.text,
            retryable: f.retryable,
        }
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> wit::Outcome {
        match o {
            Outcome::Done => wit::Outcome::Done,
            Outcome::Pass(m) => wit::Outcome::Pass(m.into()),
            Outcome::Forward(routed) => wit::Outcome::Forward(
                routed
                    .into_iter()
                    .map(|r| wit::Routed {
                        target: r.target,
                        message: r.message.into(),
                    })
                    .collect(),
            ),
            Outcome::Reply(m) => wit::Outcome::Reply(m.into()),
            Outcome::Drop(reason) => wit::Outcome::Drop(reason),
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Outcome {
        match o {
            wit::Outcome::Done => Outcome::Done,
            wit::Outcome::Pass(m) => Outcome::Pass(m.into()),
            wit::Outcome::Forward(routed) => Outcome::Forward(
                routed
                    .into_iter()
                    .map(|r| Routed {
                        target: r.target,
                        message: r.message.into(),
                    })
                    .collect(),
            ),
            wit::Outcome::Reply(m) => Outcome::Reply(m.into()),
            wit::Outcome::Drop(reason) => Outcome::Drop(reason),
        }
    }
}

fn wit_result(r: Result<Outcome, Failure>) -> Result<wit::Outcome, wit::Failure> {
    r.map(Into::into).map_err(Into::into)
}

/// Host calls through the WIT imports.
pub(crate) mod backend {
    use super::*;

    pub(crate) fn log(level: LogLevel, text: &str) {
        let level = match level {
            LogLevel::Trace => wit::LogLevel::Trace,
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Error => wit::LogLevel::Error,
        };
        wit_host::log(level, text);
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        wit_host::setting(key)
    }

    pub(crate) fn lookup(table: &str, key: &str) -> Option<String> {
        wit_host::lookup(table, key)
    }

    pub(crate) fn send(target: &str, msg: &Message) -> Result<(), Failure> {
        wit_host::send(target, &msg.clone().into()).map_err(Into::into)
    }

    pub(crate) fn send_request_sync(
        target: &str,
        msg: &Message,
        timeout_ms: u32,
    ) -> Result<Message, Failure> {
        wit_host::send_request_sync(target, &msg.clone().into(), timeout_ms)
            .map(Into::into)
            .map_err(Into::into)
    }

    pub(crate) fn send_request_async(target: &str, msg: &Message) -> Result<String, Failure> {
        wit_host::send_request_async(target, &msg.clone().into()).map_err(Into::into)
    }

    pub(crate) fn counter_add(name: &str, value: u64) {
        wit_host::counter_add(name, value);
    }

    pub(crate) fn histogram_record(name: &str, value: f64) {
        wit_host::histogram_record(name, value);
    }

    pub(crate) fn adapter_call(request: &[u8]) -> Result<Vec<u8>, Failure> {
        wit_adapter::call(request).map_err(Into::into)
    }
}

impl<P: Plugin> wit_item::Guest for ItemExport<P> {
    fn on_init(settings: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::new(settings);
        instance::with(|p: &mut P| p.on_init(&settings))
    }

    fn on_start() -> Result<(), String> {
        instance::with(|p: &mut P| p.on_start())
    }

    fn on_stop() {
        instance::with(|p: &mut P| p.on_stop());
    }

    fn on_teardown() {
        instance::with(|p: &mut P| p.on_teardown());
        instance::clear();
    }

    fn on_message(msg: wit::Message) -> Result<wit::Outcome, wit::Failure> {
        wit_result(instance::with(|p: &mut P| p.on_message(msg.into())))
    }

    fn on_reply(
        correlation_id: String,
        reply: Result<wit::Message, wit::Failure>,
    ) -> Result<wit::Outcome, wit::Failure> {
        let reply = reply.map(Into::into).map_err(Into::into);
        wit_result(instance::with(|p: &mut P| p.on_reply(&correlation_id, reply)))
    }
}

fn wit_before(action: BeforeAction) -> wit_hooks::BeforeAction {
    match action {
        BeforeAction::Continue(m) => wit_hooks::BeforeAction::Continue(m.into()),
        BeforeAction::Skip(reason) => wit_hooks::BeforeAction::Skip(reason),
        BeforeAction::Reject(f) => wit_hooks::BeforeAction::Reject(f.into()),
    }
}

impl<H: Hook> wit_hooks::Guest for HookExport<H> {
    fn init(settings: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::new(settings);
        instance::with(|h: &mut H| h.on_init(&settings))
    }

    fn on_before_process(item: String, msg: wit::Message) -> wit_hooks::BeforeAction {
        wit_before(instance::with(|h: &mut H| h.on_before_process(&item, msg.into())))
    }

    fn on_after_process(item: String, msg: wit::Message, result: wit::Outcome) -> wit::Outcome {
        let msg = Message::from(msg);
        instance::with(|h: &mut H| h.on_after_process(&item, &msg, result.into())).into()
    }

    fn on_process_error(item: String, msg: wit::Message, error: wit::Failure) -> wit_hooks::ErrorAction {
        let (msg, error) = (Message::from(msg), Failure::from(error));
        match instance::with(|h: &mut H| h.on_process_error(&item, &msg, &error)) {
            ErrorAction::Default => wit_hooks::ErrorAction::Default,
            ErrorAction::Retry => wit_hooks::ErrorAction::Retry,
            ErrorAction::DeadLetter => wit_hooks::ErrorAction::DeadLetter,
            ErrorAction::Suppress => wit_hooks::ErrorAction::Suppress,
        }
    }

    fn on_before_send(item: String, target: String, msg: wit::Message) -> wit_hooks::BeforeAction {
        wit_before(instance::with(|h: &mut H| {
            h.on_before_send(&item, &target, msg.into())
        }))
    }

    fn on_after_send(item: String, target: String, msg: wit::Message, delivery: Result<(), wit::Failure>) {
        let msg = Message::from(msg);
        let delivery = delivery.map_err(Failure::from);
        instance::with(|h: &mut H| h.on_after_send(&item, &target, &msg, delivery));
    }
}
