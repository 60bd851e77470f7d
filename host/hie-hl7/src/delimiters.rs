//! The separator and escape characters of one message, read from MSH-1 and MSH-2.

use crate::error::ParseError;
use crate::util::printable;

/// The delimiters of a message: MSH-1 (field separator) and MSH-2 (encoding characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Field separator, MSH-1 (usually `|`).
    pub field: u8,
    /// Component separator, first character of MSH-2 (usually `^`).
    pub component: u8,
    /// Repetition separator, second character of MSH-2 (usually `~`).
    pub repetition: u8,
    /// Escape character, third character of MSH-2 (usually `\`).
    pub escape: u8,
    /// Subcomponent separator, fourth character of MSH-2 (usually `&`).
    pub subcomponent: u8,
    /// Truncation character, optional fifth character of MSH-2 (v2.7+, usually `#`).
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: b'~',
            escape: b'\\',
            subcomponent: b'&',
            truncation: None,
        }
    }
}

impl Delimiters {
    /// The MSH-2 value these delimiters serialize to, e.g. `^~\&`.
    pub fn encoding_characters(&self) -> String {
        let mut s: String = [self.component, self.repetition, self.escape, self.subcomponent]
            .iter()
            .map(|b| char::from(*b))
            .collect();
        if let Some(t) = self.truncation {
            s.push(char::from(t));
        }
        s
    }

    /// True if `b` is one of the separators or the escape character.
    pub fn is_special(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || b == self.repetition
            || b == self.escape
            || b == self.subcomponent
            || Some(b) == self.truncation
    }

    /// Reads delimiters from the start of a header segment (`MSH`, `FHS` or `BHS`).
    ///
    /// `segment` is the header segment without its terminator. Returns the delimiters.
    pub(crate) fn from_header(segment: &[u8]) -> Result<Delimiters, ParseError> {
        let len = segment.len();
        let Some(&field) = segment.get(3) else {
            return Err(ParseError::TruncatedMsh {
                len,
                missing: "MSH-1 (field separator)",
            });
        };
        check_delimiter_byte(field).map_err(|reason| ParseError::InvalidFieldSeparator {
            found: printable(&[field]),
            reason,
        })?;
        let rest = segment.get(4..).unwrap_or_default();
        let (enc, terminated) = match rest.iter().position(|b| *b == field) {
            Some(end) => (rest.get(..end).unwrap_or_default(), true),
            None => (rest, false),
        };
        if enc.len() < 4 {
            if !terminated {
                return Err(ParseError::TruncatedMsh {
                    len,
                    missing: "MSH-2 (encoding characters)",
                });
            }
            return Err(ParseError::InvalidEncodingCharacters {
                found: printable(enc),
                reason: format!("expected 4 or 5 characters, found {}", enc.len()),
            });
        }
        if enc.len() > 5 {
            return Err(ParseError::InvalidEncodingCharacters {
                found: printable(enc),
                reason: format!("expected 4 or 5 characters, found {}", enc.len()),
            });
        }
        for &b in enc {
            check_delimiter_byte(b).map_err(|reason| ParseError::InvalidEncodingCharacters {
                found: printable(enc),
                reason: format!("\"{}\" {reason}", printable(&[b])),
            })?;
        }
        for (i, &b) in enc.iter().enumerate() {
            let earlier = enc.get(..i).unwrap_or_default();
            if b == field || earlier.contains(&b) {
                return Err(ParseError::InvalidEncodingCharacters {
                    found: printable(enc),
                    reason: format!(
                        "\"{}\" is used twice (MSH-1 and MSH-2 must all differ)",
                        printable(&[b])
                    ),
                });
            }
        }
        let at = |i: usize| enc.get(i).copied().unwrap_or_default();
        Ok(Delimiters {
            field,
            component: at(0),
            repetition: at(1),
            escape: at(2),
            subcomponent: at(3),
            truncation: enc.get(4).copied(),
        })
    }
}

/// Delimiters must be visible ASCII punctuation: letters, digits, spaces, controls and
/// non-ASCII bytes would collide with data or with segment terminators.
fn check_delimiter_byte(b: u8) -> Result<(), &'static str> {
    if b.is_ascii_punctuation() {
        Ok(())
    } else if b == b'\r' || b == b'\n' {
        Err("is a segment terminator (the segment ends where a delimiter is expected)")
    } else if b.is_ascii_alphanumeric() {
        Err("is a letter or digit, not a delimiter")
    } else {
        Err("is not a printable ascii punctuation character")
    }
}
