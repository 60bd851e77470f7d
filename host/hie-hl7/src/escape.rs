//! HL7 escape sequences: `\F\ \S\ \T\ \R\ \E\ \P\ \Xhh\`; formatting escapes pass through.

use std::borrow::Cow;

use crate::delimiters::Delimiters;

/// Escapes `text` so it can be placed in a field: delimiters become `\F\ \S\ \T\ \R\ \E\`
/// (and `\P\` for the v2.7 truncation character); control characters other than tab
/// (CR, LF, NUL…) become `\Xhh\`.
pub fn escape(text: &str, d: &Delimiters) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let esc = char::from(d.escape);
    for ch in text.chars() {
        let Some(b) = u8::try_from(ch).ok().filter(u8::is_ascii) else {
            out.push(ch);
            continue;
        };
        if let Some(code) = delimiter_code(b, d) {
            out.push(esc);
            out.push_str(code);
            out.push(esc);
        } else if b.is_ascii_control() && b != b'\t' {
            // a raw CR would end the segment; NUL and MLLP framing bytes are refused by the parser
            out.push(esc);
            out.push_str(&format!("X{b:02X}"));
            out.push(esc);
        } else {
            out.push(ch);
        }
    }
    out
}

fn delimiter_code(b: u8, d: &Delimiters) -> Option<&'static str> {
    if b == d.field {
        Some("F")
    } else if b == d.component {
        Some("S")
    } else if b == d.subcomponent {
        Some("T")
    } else if b == d.repetition {
        Some("R")
    } else if b == d.escape {
        Some("E")
    } else if Some(b) == d.truncation {
        Some("P")
    } else {
        None
    }
}

/// Resolves escape sequences in a raw value, giving bytes in the message's character set.
///
/// `\F\ \S\ \T\ \R\ \E\` (and `\P\` when MSH-2 has a truncation character) become the
/// delimiter, `\Xhh…\` the bytes it spells. Formatting escapes (`\.br\`, `\H\`, `\N\`…),
/// charset switches and malformed sequences are kept unchanged. Borrows when `raw` holds
/// no escape character.
pub fn unescape<'a>(raw: &'a [u8], d: &Delimiters) -> Cow<'a, [u8]> {
    if !raw.contains(&d.escape) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.iter().position(|b| *b == d.escape) {
        out.extend_from_slice(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 1..).unwrap_or_default();
        let Some(len) = after.iter().position(|b| *b == d.escape) else {
            // no closing escape character: keep the remainder literally
            out.extend_from_slice(rest.get(start..).unwrap_or_default());
            return Cow::Owned(out);
        };
        let seq = after.get(..len).unwrap_or_default();
        match decode_sequence(seq, d) {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => {
                out.push(d.escape);
                out.extend_from_slice(seq);
                out.push(d.escape);
            }
        }
        rest = after.get(len + 1..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

fn decode_sequence(seq: &[u8], d: &Delimiters) -> Option<Vec<u8>> {
    match seq {
        b"F" => Some(vec![d.field]),
        b"S" => Some(vec![d.component]),
        b"T" => Some(vec![d.subcomponent]),
        b"R" => Some(vec![d.repetition]),
        b"E" => Some(vec![d.escape]),
        // only defined (v2.7+) when MSH-2 declares a truncation character
        b"P" => d.truncation.map(|t| vec![t]),
        [b'X' | b'x', hex @ ..] => decode_hex(hex),
        _ => None,
    }
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}
