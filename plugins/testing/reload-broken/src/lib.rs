//! Test plugin for hot reload: traps (panics) in `on-init`, so a reload to it
//! must be rejected while the running version goes on.

use hie_sdk::prelude::*;

/// Never gets a message.
#[derive(Default)]
pub struct Broken;

impl Plugin for Broken {
    fn on_init(&mut self, _settings: &Settings) -> Result<(), String> {
        panic!("reload-broken traps in on-init");
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        Ok(Outcome::pass(msg))
    }
}

hie_sdk::export!(Broken);
