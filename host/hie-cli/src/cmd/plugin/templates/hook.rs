//! `{{name}}`: an HIE message hook.
//!
//! Before an item processes a message, stamps it with the property
//! `checked-by` (the hook's setting `stamp`, default `{{name}}`), and skips
//! messages that have an empty body.

use hie_sdk::prelude::*;

/// The hook: one value per instance, made with `Default`, set up by `on_init`.
#[derive(Default)]
pub struct {{type}} {
    stamp: String,
}

impl Hook for {{type}} {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.stamp = settings.get("stamp").unwrap_or("{{name}}").to_owned();
        Ok(())
    }

    fn on_before_process(&mut self, item: &str, msg: Message) -> BeforeAction {
        if msg.body().is_empty() {
            return BeforeAction::Skip(format!("empty message for {item}"));
        }
        BeforeAction::Continue(msg.with_property("checked-by", self.stamp.clone()))
    }
}

hie_sdk::export_hook!({{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_skips() {
        let mut hook = {{type}}::default();
        hook.on_init(&Settings::new([("stamp", "qa")])).unwrap();
        let BeforeAction::Continue(msg) = hook.on_before_process("router", Message::hl7("MSH|")) else {
            panic!("expected continue");
        };
        assert_eq!(msg.property("checked-by"), Some("qa"));
        let skipped = hook.on_before_process("router", Message::hl7(""));
        assert_eq!(skipped, BeforeAction::Skip("empty message for router".into()));
    }
}
