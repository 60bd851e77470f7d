//! Test plugin for the hie-wasm host's load errors: it imports `hie:plugin/host`
//! like a plugin but exports a plain `run` function instead of `item` or `hooks`.

wit_bindgen::generate!({
    inline: "
        package test:wrong;
        world wrong {
            import hie:plugin/host@0.1.0;
            export run: func();
        }
    ",
    path: "../../../wit",
    world: "test:wrong/wrong",
    generate_all,
});

struct Component;

impl Guest for Component {
    fn run() {
        hie::plugin::host::log(hie::plugin::types::LogLevel::Info, "running");
    }
}

export!(Component);
