//! Test operation for the hie-wasm host: `on-message` hands the body to
//! `adapter.call` and replies with the adapter's answer (or returns its failure).

wit_bindgen::generate!({ world: "business-operation", path: "../../../wit" });

use exports::hie::plugin::item::Guest;
use hie::plugin::adapter;
use hie::plugin::types::{Failure, Message, Outcome};

struct Component;

impl Guest for Component {
    fn on_init(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn on_start() -> Result<(), String> {
        Ok(())
    }

    fn on_stop() {}

    fn on_teardown() {}

    fn on_message(msg: Message) -> Result<Outcome, Failure> {
        let answer = adapter::call(&msg.body)?;
        Ok(Outcome::Reply(Message { body: answer, ..msg }))
    }

    fn on_reply(_correlation_id: String, _reply: Result<Message, Failure>) -> Result<Outcome, Failure> {
        Ok(Outcome::Done)
    }
}

export!(Component);
