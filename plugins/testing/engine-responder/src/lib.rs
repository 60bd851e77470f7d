//! Test plugin: replies to each message with its body plus `ZRS|<setting tag>`.

use hie_sdk::prelude::*;

/// The responder.
#[derive(Default)]
pub struct Responder {
    tag: String,
}

impl Plugin for Responder {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.tag = settings.get("tag").unwrap_or("replied").to_string();
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        let mut body = msg.body().to_vec();
        body.extend_from_slice(format!("ZRS|{}\r", self.tag).as_bytes());
        Ok(Outcome::reply(msg.with_body(body)))
    }
}

hie_sdk::export!(Responder);
