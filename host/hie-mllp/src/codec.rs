//! The MLLP framing codec: `0x0B` payload `0x1C 0x0D`.
//!
//! The decoder is lenient where real senders are sloppy and strict where leniency
//! would cost memory: bytes before a start block are skipped and counted, a missing
//! `0x0D` after `0x1C` is tolerated unless [`CodecConfig::require_trailing_cr`] is set,
//! a new `0x0B` inside a frame abandons the partial frame (a sender that restarted),
//! and a frame is refused as soon as it grows past [`CodecConfig::max_frame_len`],
//! without waiting for its end.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::MllpError;

/// Start block: the byte before every frame.
pub const START_BLOCK: u8 = 0x0B;
/// End block: the first of the two bytes after every frame.
pub const END_BLOCK: u8 = 0x1C;
/// Carriage return: the last byte of every frame.
pub const CARRIAGE_RETURN: u8 = 0x0D;
/// Default largest payload accepted: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// How strict the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// Largest payload (bytes between `0x0B` and `0x1C`) accepted.
    pub max_frame_len: usize,
    /// Refuse a frame whose `0x1C` is not followed by `0x0D` (default: tolerate).
    pub require_trailing_cr: bool,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            require_trailing_cr: false,
        }
    }
}

/// MLLP decoder and encoder (see the module docs for what it tolerates).
#[derive(Debug, Clone, Default)]
pub struct MllpCodec {
    config: CodecConfig,
    in_frame: bool,
    /// Bytes of the current partial frame already searched for an end block.
    scanned: usize,
    /// The previous frame ended at a buffer's last byte with `0x1C` alone: a `0x0D`
    /// that arrives next belongs to it and is not junk.
    pending_cr: bool,
    junk_bytes: u64,
}

impl MllpCodec {
    /// A codec with the given limits.
    pub fn new(config: CodecConfig) -> Self {
        MllpCodec {
            config,
            ..MllpCodec::default()
        }
    }

    /// The codec's limits.
    pub fn config(&self) -> &CodecConfig {
        &self.config
    }

    /// True while a frame has started (`0x0B` seen) but not ended.
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Bytes skipped outside frames (or of abandoned partial frames) since the last call.
    pub fn take_junk_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.junk_bytes)
    }

    /// Skip to the next start block; false if there is none in `buf` yet.
    fn seek_start(&mut self, buf: &mut BytesMut) -> bool {
        if self.pending_cr && !buf.is_empty() {
            self.pending_cr = false;
            if buf[0] == CARRIAGE_RETURN {
                buf.advance(1);
            }
        }
        match memchr::memchr(START_BLOCK, buf) {
            Some(at) => {
                self.junk_bytes += at as u64;
                buf.advance(at + 1);
                self.in_frame = true;
                self.scanned = 0;
                true
            }
            None => {
                self.junk_bytes += buf.len() as u64;
                buf.clear();
                false
            }
        }
    }

    fn too_large(&self) -> MllpError {
        MllpError::FrameTooLarge {
            limit: self.config.max_frame_len,
        }
    }

    /// Take the payload `buf[..end]` and the end block (plus `trailer` more bytes).
    fn take_frame(&mut self, buf: &mut BytesMut, end: usize, trailer: usize) -> Bytes {
        let payload = buf.split_to(end).freeze();
        buf.advance(1 + trailer);
        self.in_frame = false;
        self.scanned = 0;
        payload
    }
}

impl Decoder for MllpCodec {
    type Item = Bytes;
    type Error = MllpError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, MllpError> {
        loop {
            if !self.in_frame && !self.seek_start(buf) {
                return Ok(None);
            }
            let Some(offset) = memchr::memchr2(END_BLOCK, START_BLOCK, &buf[self.scanned..]) else {
                self.scanned = buf.len();
                if buf.len() > self.config.max_frame_len {
                    return Err(self.too_large());
                }
                return Ok(None);
            };
            let at = self.scanned + offset;
            if buf[at] == START_BLOCK {
                // The sender started over: what came before is an abandoned fragment.
                self.junk_bytes += at as u64 + 1;
                buf.advance(at);
                self.in_frame = false;
                continue;
            }
            if at > self.config.max_frame_len {
                return Err(self.too_large());
            }
            return match buf.get(at + 1) {
                Some(&CARRIAGE_RETURN) => Ok(Some(self.take_frame(buf, at, 1))),
                Some(&other) if self.config.require_trailing_cr => Err(MllpError::Framing {
                    detail: format!("byte 0x{other:02x} after end block 0x1c instead of 0x0d"),
                }),
                Some(_) => Ok(Some(self.take_frame(buf, at, 0))),
                None if self.config.require_trailing_cr => {
                    self.scanned = at;
                    Ok(None)
                }
                None => {
                    // Answer now rather than wait for a 0x0D that may never come.
                    self.pending_cr = true;
                    Ok(Some(self.take_frame(buf, at, 0)))
                }
            };
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, MllpError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if self.in_frame {
            let partial = buf.len();
            buf.clear();
            self.in_frame = false;
            self.scanned = 0;
            return Err(MllpError::Framing {
                detail: format!("connection closed inside a frame after {partial} bytes"),
            });
        }
        Ok(None)
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        if payload.len() > self.config.max_frame_len {
            return Err(self.too_large());
        }
        encode_frame(payload, dst);
        Ok(())
    }
}

impl Encoder<Bytes> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), MllpError> {
        self.encode(payload.as_ref(), dst)
    }
}

/// Append `payload` framed as MLLP to `dst` (no size check).
pub fn encode_frame(payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(payload.len() + 3);
    dst.put_u8(START_BLOCK);
    dst.put_slice(payload);
    dst.put_slice(&[END_BLOCK, CARRIAGE_RETURN]);
}

/// `payload` framed as MLLP, as a new buffer.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(payload.len() + 3);
    encode_frame(payload, &mut out);
    out.to_vec()
}

/// The fuzz entry point: decode `data` and assert the decoder's invariants; a panic is a bug.
///
/// The first byte picks the limit (bits 0–6) and strictness (bit 7), the second the size
/// of the chunks the rest is fed in, so one input covers frames split across reads.
/// Invariants: frames respect the limit and hold no framing bytes, no byte is invented
/// (frames + framing + junk ≤ input), and errors are only the framing kinds.
pub fn fuzz_decode(data: &[u8]) {
    let [control, chunk, wire @ ..] = data else {
        return;
    };
    let config = CodecConfig {
        max_frame_len: 1 + usize::from(control & 0x7f) * 8,
        require_trailing_cr: control & 0x80 != 0,
    };
    let mut codec = MllpCodec::new(config);
    let mut buf = BytesMut::new();
    let mut accounted = 0u64;
    for piece in wire.chunks(1 + usize::from(*chunk % 64)) {
        buf.put_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= config.max_frame_len, "frame over the limit");
                    assert!(
                        !frame.contains(&START_BLOCK) && !frame.contains(&END_BLOCK),
                        "framing byte inside a frame"
                    );
                    accounted += frame.len() as u64 + 2;
                }
                Ok(None) => break,
                Err(err) => {
                    let kind = err.kind();
                    assert!(
                        kind == crate::ErrorKind::FrameTooLarge
                            || (kind == crate::ErrorKind::Framing && config.require_trailing_cr),
                        "unexpected error {err}"
                    );
                    return;
                }
            }
            accounted += codec.take_junk_bytes();
        }
        accounted += codec.take_junk_bytes();
        assert!(accounted <= wire.len() as u64, "decoder invented bytes");
    }
    let _ = codec.decode_eof(&mut buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut MllpCodec, buf: &mut BytesMut) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(f) = codec.decode(buf).expect("decode") {
            out.push(f);
        }
        out
    }

    #[test]
    fn frame_split_across_reads() {
        let wire = frame(b"MSH|^~\\&|A\rPID|1\r");
        let mut codec = MllpCodec::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            frames.extend(decode_all(&mut codec, &mut buf));
        }
        assert_eq!(frames, vec![Bytes::from_static(b"MSH|^~\\&|A\rPID|1\r")]);
        assert_eq!(codec.take_junk_bytes(), 0);
        assert!(!codec.in_frame());
    }

    #[test]
    fn many_frames_in_one_read() {
        let mut wire = Vec::new();
        for i in 0..100 {
            wire.extend(frame(format!("MSH|{i}").as_bytes()));
        }
        let mut codec = MllpCodec::default();
        let mut buf = BytesMut::from(&wire[..]);
        let frames = decode_all(&mut codec, &mut buf);
        assert_eq!(frames.len(), 100);
        assert_eq!(frames[42], Bytes::from("MSH|42"));
        assert!(buf.is_empty());
    }

    #[test]
    fn junk_before_start_is_skipped_and_counted() {
        let mut wire = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        wire.extend(frame(b"MSH|1"));
        wire.extend(b"\n\n");
        wire.extend(frame(b"MSH|2"));
        let mut codec = MllpCodec::default();
        let frames = decode_all(&mut codec, &mut BytesMut::from(&wire[..]));
        assert_eq!(frames, vec![Bytes::from("MSH|1"), Bytes::from("MSH|2")]);
        assert_eq!(codec.take_junk_bytes(), 18 + 2);
        assert_eq!(codec.take_junk_bytes(), 0);
    }

    #[test]
    fn missing_trailing_cr_is_tolerated_by_default() {
        let wire = b"\x0bMSH|1\x1c\x0bMSH|2\x1c";
        let mut codec = MllpCodec::default();
        let mut buf = BytesMut::from(&wire[..]);
        let frames = decode_all(&mut codec, &mut buf);
        assert_eq!(frames, vec![Bytes::from("MSH|1"), Bytes::from("MSH|2")]);
        // The late CR of the last frame is not junk.
        buf.put_u8(CARRIAGE_RETURN);
        assert!(decode_all(&mut codec, &mut buf).is_empty());
        assert_eq!(codec.take_junk_bytes(), 0);
    }

    #[test]
    fn missing_trailing_cr_is_refused_when_required() {
        let mut codec = MllpCodec::new(CodecConfig {
            require_trailing_cr: true,
            ..CodecConfig::default()
        });
        let mut buf = BytesMut::from(&b"\x0bMSH|1\x1c"[..]);
        assert_eq!(codec.decode(&mut buf).expect("waits"), None);
        buf.put_u8(b'X');
        let err = codec.decode(&mut buf).expect_err("framing");
        assert_eq!(err.kind(), crate::ErrorKind::Framing);
        assert!(err.to_string().contains("0x58"), "{err}");
    }

    #[test]
    fn oversize_frame_is_refused_before_its_end_arrives() {
        let mut codec = MllpCodec::new(CodecConfig {
            max_frame_len: 10,
            ..CodecConfig::default()
        });
        let mut buf = BytesMut::from(&b"\x0b0123456789"[..]);
        assert_eq!(codec.decode(&mut buf).expect("at the limit"), None);
        buf.put_u8(b'a');
        let err = codec.decode(&mut buf).expect_err("too large");
        assert_eq!(err.kind(), crate::ErrorKind::FrameTooLarge);
    }

    #[test]
    fn frame_at_the_limit_is_accepted() {
        let mut codec = MllpCodec::new(CodecConfig {
            max_frame_len: 10,
            ..CodecConfig::default()
        });
        let frames = decode_all(&mut codec, &mut BytesMut::from(&frame(b"0123456789")[..]));
        assert_eq!(frames, vec![Bytes::from("0123456789")]);
        let err = codec
            .decode(&mut BytesMut::from(&frame(b"0123456789a")[..]))
            .expect_err("too large");
        assert_eq!(err.kind(), crate::ErrorKind::FrameTooLarge);
    }

    #[test]
    fn restarted_frame_abandons_the_fragment() {
        let mut wire = b"\x0bMSH|trunc".to_vec();
        wire.extend(frame(b"MSH|whole"));
        let mut codec = MllpCodec::default();
        let frames = decode_all(&mut codec, &mut BytesMut::from(&wire[..]));
        assert_eq!(frames, vec![Bytes::from("MSH|whole")]);
        assert_eq!(codec.take_junk_bytes(), 10);
    }

    #[test]
    fn zero_length_frame_is_a_frame() {
        let mut codec = MllpCodec::default();
        let frames = decode_all(&mut codec, &mut BytesMut::from(&b"\x0b\x1c\x0d"[..]));
        assert_eq!(frames, vec![Bytes::new()]);
    }

    #[test]
    fn eof_inside_a_frame_is_a_framing_error() {
        let mut codec = MllpCodec::default();
        let mut buf = BytesMut::from(&b"\x0bMSH|1"[..]);
        let err = codec.decode_eof(&mut buf).expect_err("truncated");
        assert_eq!(err.kind(), crate::ErrorKind::Framing);
        assert_eq!(
            codec.decode_eof(&mut BytesMut::from(&b"junk"[..])).expect("ok"),
            None
        );
    }

    #[test]
    fn encoder_frames_and_checks_size() {
        let mut codec = MllpCodec::new(CodecConfig {
            max_frame_len: 4,
            ..CodecConfig::default()
        });
        let mut out = BytesMut::new();
        codec.encode(&b"MSH|"[..], &mut out).expect("fits");
        assert_eq!(&out[..], b"\x0bMSH|\x1c\x0d");
        assert!(codec.encode(&b"MSH|1"[..], &mut out).is_err());
    }
}
