//! Character sets named by MSH-18 (HL7 table 0211) and their decoding to UTF-8.

use std::borrow::Cow;

use encoding_rs::Encoding;

use crate::error::ParseError;

/// The character set of a message, from MSH-18 (first repetition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charset {
    kind: Kind,
    hl7_name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// MSH-18 empty: UTF-8 when the bytes are valid UTF-8, else ISO 8859-1.
    Unspecified,
    Ascii,
    Latin1,
    Utf8,
    /// Single-byte ISO 8859 parts and EUC-KR: every byte of a multi-byte character is
    /// >= 0x80, so delimiters can never appear inside a character.
    Legacy(&'static Encoding),
}

/// MSH-18 values (and ISO-IR aliases) this crate decodes, the most used first.
const SUPPORTED: &[(&str, &str, Kind)] = &[
    ("UNICODE UTF-8", "UNICODE UTF-8", Kind::Utf8),
    ("ASCII", "ASCII", Kind::Ascii),
    ("ISO IR6", "ASCII", Kind::Ascii),
    ("8859/1", "8859/1", Kind::Latin1),
    ("ISO IR100", "8859/1", Kind::Latin1),
    ("8859/2", "8859/2", Kind::Legacy(encoding_rs::ISO_8859_2)),
    ("ISO IR101", "8859/2", Kind::Legacy(encoding_rs::ISO_8859_2)),
    ("8859/3", "8859/3", Kind::Legacy(encoding_rs::ISO_8859_3)),
    ("ISO IR109", "8859/3", Kind::Legacy(encoding_rs::ISO_8859_3)),
    ("8859/4", "8859/4", Kind::Legacy(encoding_rs::ISO_8859_4)),
    ("ISO IR110", "8859/4", Kind::Legacy(encoding_rs::ISO_8859_4)),
    ("8859/5", "8859/5", Kind::Legacy(encoding_rs::ISO_8859_5)),
    ("ISO IR144", "8859/5", Kind::Legacy(encoding_rs::ISO_8859_5)),
    ("8859/6", "8859/6", Kind::Legacy(encoding_rs::ISO_8859_6)),
    ("ISO IR127", "8859/6", Kind::Legacy(encoding_rs::ISO_8859_6)),
    ("8859/7", "8859/7", Kind::Legacy(encoding_rs::ISO_8859_7)),
    ("ISO IR126", "8859/7", Kind::Legacy(encoding_rs::ISO_8859_7)),
    ("8859/8", "8859/8", Kind::Legacy(encoding_rs::ISO_8859_8)),
    ("ISO IR138", "8859/8", Kind::Legacy(encoding_rs::ISO_8859_8)),
    // encoding_rs maps latin5 to windows-1254, identical to 8859-9 outside 0x80..0x9f
    ("8859/9", "8859/9", Kind::Legacy(encoding_rs::WINDOWS_1254)),
    ("ISO IR148", "8859/9", Kind::Legacy(encoding_rs::WINDOWS_1254)),
    ("8859/15", "8859/15", Kind::Legacy(encoding_rs::ISO_8859_15)),
    ("ISO IR192", "UNICODE UTF-8", Kind::Utf8),
    // pre-2.6 "UNICODE" is sent by most systems meaning UTF-8; UCS-2 would fail on NUL bytes
    ("UNICODE", "UNICODE UTF-8", Kind::Utf8),
    ("UTF-8", "UNICODE UTF-8", Kind::Utf8),
    ("KS X 1001", "KS X 1001", Kind::Legacy(encoding_rs::EUC_KR)),
];

/// Known MSH-18 values refused on purpose, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "UNICODE UTF-16",
        "utf-16 bytes contain NUL and delimiter bytes inside characters",
    ),
    (
        "UNICODE UTF-32",
        "utf-32 bytes contain NUL and delimiter bytes inside characters",
    ),
    ("BIG-5", "its second bytes can equal delimiter characters"),
    ("GB 18030-2000", "its second bytes can equal delimiter characters"),
    ("CNS 11643-1992", "iso 2022 code switching is not supported"),
    ("ISO IR87", "iso 2022 code switching is not supported"),
    ("ISO IR159", "iso 2022 code switching is not supported"),
    ("ISO IR13", "jis x 0201 katakana is not supported"),
];

impl Default for Charset {
    fn default() -> Self {
        Charset {
            kind: Kind::Unspecified,
            hl7_name: "",
        }
    }
}

impl Charset {
    /// UTF-8 (`UNICODE UTF-8`).
    pub const UTF8: Charset = Charset {
        kind: Kind::Utf8,
        hl7_name: "UNICODE UTF-8",
    };
    /// ISO 8859-1 (`8859/1`).
    pub const LATIN1: Charset = Charset {
        kind: Kind::Latin1,
        hl7_name: "8859/1",
    };
    /// US-ASCII (`ASCII`).
    pub const ASCII: Charset = Charset {
        kind: Kind::Ascii,
        hl7_name: "ASCII",
    };

    /// Looks up an MSH-18 value (case-insensitive, surrounding spaces ignored; empty means unspecified).
    pub fn from_msh18(value: &str) -> Result<Charset, ParseError> {
        let wanted = value.trim();
        if wanted.is_empty() {
            return Ok(Charset::default());
        }
        if let Some((_, name, kind)) = SUPPORTED.iter().find(|(n, ..)| n.eq_ignore_ascii_case(wanted)) {
            return Ok(Charset {
                kind: *kind,
                hl7_name: name,
            });
        }
        let reason = REFUSED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map_or("not an HL7 table 0211 value this parser knows", |(_, r)| r);
        Err(ParseError::UnsupportedCharset {
            charset: crate::util::printable(wanted.as_bytes()),
            reason,
        })
    }

    /// The canonical MSH-18 name (empty when MSH-18 was empty).
    pub fn hl7_name(&self) -> &'static str {
        self.hl7_name
    }

    /// A name for messages: the MSH-18 name, or `unspecified`.
    pub(crate) fn label(&self) -> &'static str {
        if self.hl7_name.is_empty() {
            "unspecified charset"
        } else {
            self.hl7_name
        }
    }

    /// Decodes bytes of this charset to UTF-8. Invalid bytes become U+FFFD; with MSH-18
    /// empty (or ASCII holding 8-bit bytes) non-UTF-8 text is read as ISO 8859-1.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Cow<'a, str> {
        match self.kind {
            Kind::Unspecified | Kind::Ascii => match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(decode_latin1(bytes)),
            },
            Kind::Latin1 => match std::str::from_utf8(bytes) {
                Ok(s) if bytes.is_ascii() => Cow::Borrowed(s),
                _ => Cow::Owned(decode_latin1(bytes)),
            },
            Kind::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(bytes),
            },
            Kind::Legacy(enc) => enc.decode_without_bom_handling(bytes).0,
        }
    }

    /// Encodes UTF-8 text into this charset; `None` if a character cannot be represented.
    pub fn encode<'a>(&self, text: &'a str) -> Option<Cow<'a, [u8]>> {
        match self.kind {
            Kind::Unspecified | Kind::Utf8 => Some(Cow::Borrowed(text.as_bytes())),
            Kind::Ascii => text.is_ascii().then_some(Cow::Borrowed(text.as_bytes())),
            Kind::Latin1 => {
                if text.is_ascii() {
                    return Some(Cow::Borrowed(text.as_bytes()));
                }
                text.chars()
                    .map(|c| u8::try_from(c).ok())
                    .collect::<Option<Vec<u8>>>()
                    .map(Cow::Owned)
            }
            Kind::Legacy(enc) => {
                let (bytes, _, unmappable) = enc.encode(text);
                (!unmappable).then_some(bytes)
            }
        }
    }

    /// Checks that `bytes` are valid in this charset; returns the offset of the first bad byte.
    pub(crate) fn validate(&self, bytes: &[u8]) -> Result<(), usize> {
        match self.kind {
            Kind::Unspecified | Kind::Latin1 => Ok(()),
            Kind::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                Some(at) => Err(at),
                None => Ok(()),
            },
            Kind::Utf8 => std::str::from_utf8(bytes)
                .map(|_| ())
                .map_err(|e| e.valid_up_to()),
            Kind::Legacy(enc) => {
                let mut decoder = enc.new_decoder_without_bom_handling();
                let mut out = String::with_capacity(bytes.len() * 3 + 16);
                let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
                match result {
                    encoding_rs::DecoderResult::Malformed(bad, pending) => {
                        Err(read.saturating_sub(usize::from(bad) + usize::from(pending)))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}
