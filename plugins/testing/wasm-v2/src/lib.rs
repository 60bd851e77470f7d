//! Test plugin for the hie-wasm host's version check: built against a
//! `hie:plugin@0.2.0` (see `wit/`), which a 0.1.x host must refuse by name.

wit_bindgen::generate!({ world: "business-process", path: "wit" });

use exports::hie::plugin::item::Guest;

struct Component;

impl Guest for Component {
    fn on_message(body: Vec<u8>) -> Vec<u8> {
        body
    }
}

export!(Component);
