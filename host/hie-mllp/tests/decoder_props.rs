//! Bounded property tests of the decoder: random payloads, random chunking, random bytes.
//! (The unbounded search is the `cargo fuzz` target in `fuzz/`, which needs nightly.)

use bytes::{BufMut, Bytes, BytesMut};
use hie_mllp::ErrorKind;
use hie_mllp::codec::{CodecConfig, END_BLOCK, MllpCodec, START_BLOCK, frame};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Feed `wire` to a fresh decoder in chunks of the given sizes; collect frames until an error.
fn feed(config: CodecConfig, wire: &[u8], chunks: &[usize]) -> (Vec<Bytes>, Option<ErrorKind>, u64) {
    let mut codec = MllpCodec::new(config);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.put_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.kind()), codec.take_junk_bytes()),
            }
        }
    }
    (frames, None, codec.take_junk_bytes())
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no framing bytes", |b| *b != START_BLOCK && *b != END_BLOCK),
        0..300,
    )
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn framed_payloads_come_back_whole_however_they_are_chunked(
        payloads in prop::collection::vec(payload(), 0..20),
        chunks in chunks(),
        junk in prop::collection::vec(any::<u8>().prop_filter("not a start block", |b| *b != START_BLOCK && *b != b'\r'), 0..20),
    ) {
        let mut wire = junk.clone();
        for p in &payloads {
            wire.extend(frame(p));
        }
        let (frames, err, junk_count) = feed(CodecConfig::default(), &wire, &chunks);
        prop_assert_eq!(err, None);
        prop_assert_eq!(frames, payloads.into_iter().map(Bytes::from).collect::<Vec<_>>());
        prop_assert_eq!(junk_count, junk.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_respect_the_limit(
        control in any::<u8>(),
        chunk in any::<u8>(),
        wire in prop::collection::vec(prop_oneof![Just(START_BLOCK), Just(END_BLOCK), Just(b'\r'), any::<u8>()], 0..2000),
    ) {
        let mut input = vec![control, chunk];
        input.extend(wire);
        hie_mllp::codec::fuzz_decode(&input);
    }
}
