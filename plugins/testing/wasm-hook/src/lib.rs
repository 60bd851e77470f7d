//! Test hook for the hie-wasm host. Before processing: body `skip` is skipped,
//! `reject` is rejected, anything else continues with property `hooked` set to the
//! hook's `tag` setting. After processing, a `reply` outcome gets ` (seen)` appended
//! to its body. A processing error asks for a retry if retryable, else dead-letter.

use std::cell::RefCell;

wit_bindgen::generate!({ world: "message-hook", path: "../../../wit" });

use exports::hie::plugin::hooks::{BeforeAction, ErrorAction, Guest};
use hie::plugin::types::{Failure, Message, Outcome};

struct Component;

thread_local! {
    static TAG: RefCell<String> = const { RefCell::new(String::new()) };
}

fn before(item: &str, mut msg: Message) -> BeforeAction {
    match msg.body.as_slice() {
        b"skip" => BeforeAction::Skip(format!("{item}: skipped")),
        b"reject" => BeforeAction::Reject(Failure {
            code: "rejected".into(),
            text: "the hook said no".into(),
            retryable: false,
        }),
        b"panic" => panic!("hook asked to panic"),
        _ => {
            let tag = TAG.with(|t| t.borrow().clone());
            msg.properties.retain(|(k, _)| k != "hooked");
            msg.properties.push(("hooked".into(), tag));
            BeforeAction::Continue(msg)
        }
    }
}

impl Guest for Component {
    fn init(settings: Vec<(String, String)>) -> Result<(), String> {
        let tag = settings.into_iter().find(|(k, _)| k == "tag").map(|(_, v)| v);
        TAG.with(|t| *t.borrow_mut() = tag.unwrap_or_else(|| "yes".into()));
        Ok(())
    }

    fn on_before_process(item: String, msg: Message) -> BeforeAction {
        before(&item, msg)
    }

    fn on_after_process(_item: String, _msg: Message, result: Outcome) -> Outcome {
        match result {
            Outcome::Reply(mut m) => {
                m.body.extend_from_slice(b" (seen)");
                Outcome::Reply(m)
            }
            other => other,
        }
    }

    fn on_process_error(_item: String, _msg: Message, error: Failure) -> ErrorAction {
        if error.retryable {
            ErrorAction::Retry
        } else {
            ErrorAction::DeadLetter
        }
    }

    fn on_before_send(item: String, _target: String, msg: Message) -> BeforeAction {
        before(&item, msg)
    }

    fn on_after_send(_item: String, _target: String, _msg: Message, _delivery: Result<(), Failure>) {}
}

export!(Component);
