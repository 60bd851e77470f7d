//! The fuzz entry point run as a bounded property test: random bytes and mutated valid
//! messages must never panic the parser, readers, editor or ACK builder.

use std::fs;

use hie_hl7::fuzz_parse;
use proptest::prelude::*;

/// 20,000 cases per property unless `HL7_FUZZ_CASES` asks for more (or fewer).
fn fuzz_cases() -> u32 {
    std::env::var("HL7_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn samples() -> Vec<Vec<u8>> {
    // read at run time: a build cache shared by two checkouts may hold this test
    // compiled in the other one
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let dir = format!("{root}/tests/corpus");
    let mut out = Vec::new();
    for sub in ["valid", "malformed"] {
        for entry in fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "hl7") {
                out.push(fs::read(path).unwrap());
            }
        }
    }
    out
}

/// One edit to a sample: overwrite, insert or delete bytes, biased to bytes HL7 cares about.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(b"|^~\\&#\r\n\x00\x0b\x1cMSHX0".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Set(at, b) => {
                if let Some(slot) = bytes.get_mut(at % len) {
                    *slot = b;
                }
            }
            Mutation::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            Mutation::Delete(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz_parse(&data);
    }

    #[test]
    fn random_bytes_after_an_msh_prefix_never_panic(data in proptest::collection::vec(interesting_byte(), 0..256)) {
        let mut input = b"MSH|^~\\&|".to_vec();
        input.extend(data);
        fuzz_parse(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_samples_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let samples = samples_cache();
        let sample = pick.get(samples).clone();
        fuzz_parse(&apply(sample, &mutations));
    }
}

fn samples_cache() -> &'static [Vec<u8>] {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(samples)
}
