//! Test plugin for `hie plugin build` and the hie-wasm linker: it exports
//! `hie:plugin/item@0.1.0`, so it looks like a business process from the outside,
//! but its `item` lacks `on-stop` and every function after it.

wit_bindgen::generate!({ world: "truncated-process", path: "wit" });

use exports::hie::plugin::item::Guest;

struct Component;

impl Guest for Component {
    fn on_init(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn on_start() -> Result<(), String> {
        Ok(())
    }
}

export!(Component);
