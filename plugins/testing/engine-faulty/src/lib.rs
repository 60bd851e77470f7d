//! Test plugin: passes each message to the item's targets after `delay_ms`
//! (setting, default 0) and traps (panics) on a body containing `CRASH`.
//! `on-start` and `on-stop` are logged so a test can count instances.

use hie_sdk::prelude::*;

/// The faulty plugin.
#[derive(Default)]
pub struct Faulty {
    delay_ms: u64,
}

impl Plugin for Faulty {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.delay_ms = settings.parse_or("delay_ms", 0)?;
        Ok(())
    }

    fn on_start(&mut self) -> Result<(), String> {
        hie_sdk::host::info("faulty instance started");
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        if msg.body().windows(5).any(|w| w == b"CRASH") {
            panic!("asked to crash");
        }
        if self.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
        }
        Ok(Outcome::pass(msg))
    }
}

hie_sdk::export!(Faulty);
