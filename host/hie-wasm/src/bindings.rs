//! Host bindings generated from `wit/`: one synthetic world that imports every host
//! interface and exports both `item` and `hooks`, so one linker serves every plugin
//! world. Exports are loaded per interface (`GuestIndices`), never as a whole world.

wasmtime::component::bindgen!({
    path: "../../wit",
    inline: "
        package hie:host-side;
        world everything {
            import hie:plugin/host@0.1.0;
            import hie:plugin/adapter@0.1.0;
            export hie:plugin/item@0.1.0;
            export hie:plugin/hooks@0.1.0;
        }
    ",
    world: "hie:host-side/everything",
    imports: { default: trappable },
});
