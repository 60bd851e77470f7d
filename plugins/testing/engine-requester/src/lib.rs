//! Test plugin: sends each message to the item in setting `target` as a request
//! (`mode = "sync"`, the default, or `"async"`) and passes the reply on to the
//! item's targets.

use hie_sdk::prelude::*;

/// The requester.
#[derive(Default)]
pub struct Requester {
    target: String,
    asynchronous: bool,
    timeout_ms: u32,
}

impl Plugin for Requester {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.target = settings.require("target")?.to_string();
        self.asynchronous = settings.get("mode") == Some("async");
        self.timeout_ms = settings.parse_or("timeout_ms", 2_000)?;
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        if self.asynchronous {
            hie_sdk::host::send_request_async(&self.target, &msg)?;
            return Ok(Outcome::done());
        }
        let reply = hie_sdk::host::send_request_sync(&self.target, &msg, self.timeout_ms)?;
        Ok(Outcome::pass(reply))
    }

    fn on_reply(
        &mut self,
        _correlation_id: &str,
        reply: Result<Message, Failure>,
    ) -> Result<Outcome, Failure> {
        Ok(Outcome::pass(reply?))
    }
}

hie_sdk::export!(Requester);
