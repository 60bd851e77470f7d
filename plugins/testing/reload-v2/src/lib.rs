//! Test plugin for hot reload: stamps each message with `ZRV|v2|<instance id>`

//! (see `reload-v1/src/stamp.rs`).

#[path = "../../reload-v1/src/stamp.rs"]
mod stamp;

use hie_sdk::prelude::*;

/// This build's version.
struct Version(stamp::Stamp);

impl Default for Version {
    fn default() -> Self {
        Version(stamp::Stamp::new("v2", false))
    }
}

impl Plugin for Version {
    fn on_init(&mut self, _settings: &Settings) -> Result<(), String> {
        self.0.init()
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        self.0.message(msg)
    }
}

hie_sdk::export!(Version);
