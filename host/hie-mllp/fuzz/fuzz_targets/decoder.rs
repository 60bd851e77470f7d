//! Fuzz the MLLP decoder: `cargo +nightly fuzz run decoder` (from host/hie-mllp).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hie_mllp::codec::fuzz_decode(data);
});
