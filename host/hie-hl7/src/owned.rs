//! An editable message: segments as owned bytes, edited in place so untouched parts stay byte-exact.

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::{ParseError, PathError};
use crate::escape::escape;
use crate::message::{
    CharsetState, Message, ParseOptions, Segment, field_piece_index, is_delimiter_field, locate, serialize,
};
use crate::path::Path;
use crate::util::splice_piece;

/// An owned, editable HL7 v2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    segments: Vec<Vec<u8>>,
    delimiters: Delimiters,
    charset: CharsetState,
    final_terminator: bool,
}

/// What a write puts at a path.
struct Write<'v> {
    bytes: &'v [u8],
    /// Clearing drops the trailing empty pieces it leaves behind.
    trim: bool,
}

impl OwnedMessage {
    /// Parses with default options and copies the result.
    pub fn parse(input: &[u8]) -> Result<OwnedMessage, ParseError> {
        Ok(Message::parse(input)?.to_owned_message())
    }

    /// Parses with the given options and copies the result.
    pub fn parse_with(input: &[u8], opts: &ParseOptions) -> Result<OwnedMessage, ParseError> {
        Ok(Message::parse_with(input, opts)?.to_owned_message())
    }

    pub(crate) fn from_parts(
        segments: Vec<Vec<u8>>,
        delimiters: Delimiters,
        charset: CharsetState,
        final_terminator: bool,
    ) -> OwnedMessage {
        OwnedMessage {
            segments,
            delimiters,
            charset,
            final_terminator,
        }
    }

    /// The delimiters of the message.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// The character set from MSH-18, or `None` if it is not supported.
    pub fn charset(&self) -> Option<Charset> {
        self.charset.known()
    }

    /// The segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> + '_ {
        self.segments.iter().map(|raw| Segment::new(raw, self.delimiters))
    }

    /// Decoded text at `path`; `None` if absent (see [`Message::get`]).
    pub fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        let path = Path::parse(path)?;
        match self.raw_at(&path) {
            Some(raw) => self.charset.decode(raw, &path, &self.delimiters).map(Some),
            None => Ok(None),
        }
    }

    /// Raw bytes at `path`, escapes intact.
    pub fn get_raw(&self, path: &str) -> Result<Option<&[u8]>, PathError> {
        Ok(self.raw_at(&Path::parse(path)?))
    }

    fn raw_at(&self, path: &Path) -> Option<&[u8]> {
        locate(self.segments.iter().map(Vec::as_slice), path, &self.delimiters)
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<String> {
        self.get("MSH-10").ok().flatten().filter(|s| !s.is_empty())
    }

    /// The message type as `MSH-9.1^MSH-9.2`, e.g. `ADT^A01`.
    pub fn message_type(&self) -> Option<String> {
        crate::message::message_type_of(|field, component| {
            let path = Path::msh(field, component);
            let raw = self.raw_at(&path)?;
            self.charset
                .decode(raw, &path, &self.delimiters)
                .ok()
                .filter(|s| !s.is_empty())
        })
    }

    /// Sets text at `path`, escaping delimiters and encoding it in the message's charset.
    /// Missing segments, fields, repetitions and components are created.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), PathError> {
        let path = Path::parse(path)?;
        let escaped = escape(value, &self.delimiters);
        let bytes = self.encode(&path, &escaped)?;
        self.write(
            &path,
            Write {
                bytes: &bytes,
                trim: false,
            },
        )
    }

    /// Sets a raw value at `path` (escapes and lower-level separators kept as given).
    /// Separators of the path's level or above are refused, as are CR and LF.
    pub fn set_raw(&mut self, path: &str, raw: &str) -> Result<(), PathError> {
        let path = Path::parse(path)?;
        self.check_raw(&path, raw)?;
        let bytes = self.encode(&path, raw)?;
        self.write(
            &path,
            Write {
                bytes: &bytes,
                trim: false,
            },
        )
    }

    /// Empties the value at `path` and drops the trailing empty separators that leaves;
    /// a path that does not exist is left alone.
    pub fn clear(&mut self, path: &str) -> Result<(), PathError> {
        let path = Path::parse(path)?;
        if self.raw_at(&path).is_none() {
            return Ok(());
        }
        self.write(
            &path,
            Write {
                bytes: b"",
                trim: true,
            },
        )
    }

    /// Serializes with `\r` terminators; unchanged segments are byte-exact.
    pub fn to_bytes(&self) -> Vec<u8> {
        let capacity = self.segments.iter().map(|s| s.len() + 1).sum();
        serialize(
            self.segments.iter().map(Vec::as_slice),
            capacity,
            self.final_terminator,
        )
    }

    fn encode(&self, path: &Path, text: &str) -> Result<Vec<u8>, PathError> {
        let charset = match &self.charset {
            CharsetState::Known(c) => c,
            CharsetState::Unsupported(name) => {
                return Err(PathError::UnsupportedCharset {
                    path: path.to_string(),
                    charset: name.clone(),
                });
            }
        };
        match charset.encode(text) {
            Some(bytes) => Ok(bytes.into_owned()),
            None => Err(PathError::Unencodable {
                path: path.to_string(),
                charset: charset.label(),
            }),
        }
    }

    fn check_raw(&self, path: &Path, raw: &str) -> Result<(), PathError> {
        let d = &self.delimiters;
        let mut forbidden = vec![
            (b'\r', "a carriage return"),
            (b'\n', "a line feed"),
            (d.field, "the field separator"),
        ];
        if path.repetition().is_some() {
            forbidden.push((d.repetition, "the repetition separator"));
        }
        if path.component().is_some() {
            forbidden.push((d.component, "the component separator"));
        }
        if path.subcomponent().is_some() {
            forbidden.push((d.subcomponent, "the subcomponent separator"));
        }
        match forbidden.iter().find(|(b, _)| raw.as_bytes().contains(b)) {
            Some((_, what)) => Err(PathError::InvalidRaw {
                path: path.to_string(),
                what: (*what).to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn write(&mut self, path: &Path, write: Write<'_>) -> Result<(), PathError> {
        if is_delimiter_field(path) {
            return Err(PathError::ReadOnly {
                path: path.to_string(),
                reason: "MSH-1 and MSH-2 hold the delimiters of the whole message",
            });
        }
        if path.segment_bytes() == b"MSH" && path.segment_index() > 1 {
            return Err(PathError::ReadOnly {
                path: path.to_string(),
                reason: "a message has one MSH segment",
            });
        }
        let position = self.segment_position(path);
        let d = self.delimiters;
        let Some(segment) = self.segments.get_mut(position) else {
            return Ok(());
        };
        let is_msh = segment.starts_with(b"MSH");
        let trim = write.trim.then_some(if is_msh { 2 } else { 1 });
        let piece = field_piece_index(is_msh, path.field());
        *segment = splice_piece(segment, d.field, piece, trim, |field| {
            edit_field(field, path, &write, &d)
        });
        if path.segment_bytes() == b"MSH" && path.field() == 18 {
            self.refresh_charset();
        }
        Ok(())
    }

    /// Index of the segment `path` names, appending empty segments of that name as needed
    /// (after the last existing one, or at the end).
    fn segment_position(&mut self, path: &Path) -> usize {
        let name = path.segment_bytes();
        let existing: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments.get(i).and_then(|s| s.get(..3)) == Some(name.as_slice()))
            .collect();
        let wanted = path.segment_index();
        if let Some(&at) = existing.get(wanted - 1) {
            return at;
        }
        let mut at = existing.last().map_or(self.segments.len(), |&i| i + 1);
        for _ in existing.len()..wanted {
            self.segments.insert(at, name.to_vec());
            at += 1;
        }
        at - 1
    }

    fn refresh_charset(&mut self) {
        let msh18 = self.get_raw("MSH-18.1").ok().flatten().unwrap_or_default();
        let value = String::from_utf8_lossy(msh18).into_owned();
        self.charset = match Charset::from_msh18(&value) {
            Ok(c) => CharsetState::Known(c),
            Err(_) => CharsetState::Unsupported(value),
        };
    }
}

/// Applies a write to one field's raw bytes, descending to the path's level.
fn edit_field(field: &[u8], path: &Path, write: &Write<'_>, d: &Delimiters) -> Vec<u8> {
    let trim = write.trim.then_some(1);
    let Some(rep) = path.repetition() else {
        return write.bytes.to_vec();
    };
    splice_piece(field, d.repetition, rep - 1, trim, |repetition| {
        let Some(comp) = path.component() else {
            return write.bytes.to_vec();
        };
        splice_piece(repetition, d.component, comp - 1, trim, |component| {
            let Some(sub) = path.subcomponent() else {
                return write.bytes.to_vec();
            };
            splice_piece(component, d.subcomponent, sub - 1, trim, |_| write.bytes.to_vec())
        })
    })
}
