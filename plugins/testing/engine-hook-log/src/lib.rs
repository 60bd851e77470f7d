//! Test hook: logs `hook-call <name> <call> <item>[-><target>]` at info level for
//! every call (name from setting `name`) and changes nothing.

use hie_sdk::prelude::*;

/// The logging hook.
#[derive(Default)]
pub struct HookLog {
    name: String,
}

impl HookLog {
    fn note(&self, call: &str, place: &str) {
        hie_sdk::host::info(&format!("hook-call {} {call} {place}", self.name));
    }
}

impl Hook for HookLog {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.name = settings.get("name").unwrap_or("hook").to_string();
        Ok(())
    }

    fn on_before_process(&mut self, item: &str, msg: Message) -> BeforeAction {
        self.note("before-process", item);
        BeforeAction::Continue(msg)
    }

    fn on_after_process(&mut self, item: &str, _msg: &Message, outcome: Outcome) -> Outcome {
        self.note("after-process", item);
        outcome
    }

    fn on_process_error(&mut self, item: &str, _msg: &Message, error: &Failure) -> ErrorAction {
        self.note("process-error", &format!("{item} {}", error.code));
        ErrorAction::Default
    }

    fn on_before_send(&mut self, item: &str, target: &str, msg: Message) -> BeforeAction {
        self.note("before-send", &format!("{item}->{target}"));
        BeforeAction::Continue(msg)
    }

    fn on_after_send(&mut self, item: &str, target: &str, _msg: &Message, delivery: Result<(), Failure>) {
        let how = if delivery.is_ok() { "ok" } else { "err" };
        self.note("after-send", &format!("{item}->{target} {how}"));
    }
}

hie_sdk::export_hook!(HookLog);
