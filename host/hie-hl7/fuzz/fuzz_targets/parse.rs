//! cargo-fuzz target: every hie-hl7 reader on arbitrary bytes (see `hie_hl7::fuzz_parse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hie_hl7::fuzz_parse(data);
});
