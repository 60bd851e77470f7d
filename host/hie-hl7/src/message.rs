//! The borrowed, zero-copy message view and the parser that builds it.

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::{ParseError, PathError};
use crate::escape::unescape;
use crate::owned::OwnedMessage;
use crate::path::{Path, is_segment_name};
use crate::util::{nth_piece, printable};

/// How lenient the parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept `\n` and `\r\n` as segment terminators besides `\r` (default true).
    pub accept_lf: bool,
    /// Refuse an unsupported MSH-18 character set, and bytes invalid in the declared one,
    /// at parse time (default false: parsing succeeds, decoded reads of an unsupported
    /// charset fail and invalid bytes decode to U+FFFD).
    pub strict_charset: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            accept_lf: true,
            strict_charset: false,
        }
    }
}

/// A parsed HL7 v2 message borrowing its input: segments are slices of it.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    input: &'a [u8],
    spans: Vec<(usize, usize)>,
    delimiters: Delimiters,
    charset: CharsetState,
    final_terminator: bool,
}

/// The charset of a message, or the MSH-18 value it could not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CharsetState {
    Known(Charset),
    Unsupported(String),
}

impl CharsetState {
    /// The charset, unless MSH-18 named an unsupported one.
    pub(crate) fn known(&self) -> Option<Charset> {
        match self {
            CharsetState::Known(c) => Some(*c),
            CharsetState::Unsupported(_) => None,
        }
    }

    /// From the raw MSH-18 field: its first repetition's first component.
    fn from_msh18(msh18: &[u8], d: &Delimiters, strict: bool) -> Result<CharsetState, ParseError> {
        let value = nth_piece(msh18, d.repetition, 0)
            .and_then(|r| nth_piece(r, d.component, 0))
            .unwrap_or_default();
        let value = String::from_utf8_lossy(value);
        match Charset::from_msh18(&value) {
            Ok(charset) => Ok(CharsetState::Known(charset)),
            Err(e) if strict => Err(e),
            Err(_) => Ok(CharsetState::Unsupported(value.trim().to_owned())),
        }
    }

    /// Decodes a raw value at `path` to UTF-8 text.
    pub(crate) fn decode(&self, raw: &[u8], path: &Path, d: &Delimiters) -> Result<String, PathError> {
        if is_delimiter_field(path) {
            // validated ASCII punctuation, readable whatever the charset
            return Ok(String::from_utf8_lossy(raw).into_owned());
        }
        match self {
            CharsetState::Known(charset) => Ok(charset.decode(&unescape(raw, d)).into_owned()),
            CharsetState::Unsupported(name) => Err(PathError::UnsupportedCharset {
                path: path.to_string(),
                charset: printable(name.as_bytes()),
            }),
        }
    }
}

/// MSH-1 and MSH-2 hold the delimiters themselves: no escapes, no inner structure.
pub(crate) fn is_delimiter_field(path: &Path) -> bool {
    path.segment_bytes() == b"MSH" && path.field() <= 2
}

impl<'a> Message<'a> {
    /// Parses with default options (LF accepted, lenient charset).
    pub fn parse(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Message::parse_with(input, &ParseOptions::default())
    }

    /// Parses with the given options.
    pub fn parse_with(input: &'a [u8], opts: &ParseOptions) -> Result<Message<'a>, ParseError> {
        Message::parse_checked(input, opts, true)
    }

    /// Parses without requiring MSH-9 and MSH-12, for reading replies from lax peers.
    pub(crate) fn parse_reply(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Message::parse_checked(input, &ParseOptions::default(), false)
    }

    fn parse_checked(
        input: &'a [u8],
        opts: &ParseOptions,
        require_msh_fields: bool,
    ) -> Result<Message<'a>, ParseError> {
        check_start(input)?;
        let (spans, final_terminator) = split_segments(input, opts.accept_lf)?;
        let msh = spans
            .first()
            .and_then(|&(s, e)| input.get(s..e))
            .ok_or(ParseError::Empty)?;
        let delimiters = Delimiters::from_header(msh)?;
        for (i, &(s, e)) in spans.iter().enumerate() {
            check_segment(input.get(s..e).unwrap_or_default(), i + 1, &delimiters)?;
        }
        let facts = MshFacts::read(msh, &delimiters);
        if require_msh_fields {
            facts.check_required()?;
        }
        let charset = CharsetState::from_msh18(facts.charset, &delimiters, opts.strict_charset)?;
        if let (true, CharsetState::Known(cs)) = (opts.strict_charset, &charset) {
            validate_charset(input, &spans, cs)?;
        }
        Ok(Message {
            input,
            spans,
            delimiters,
            charset,
            final_terminator,
        })
    }

    /// The delimiters read from MSH-1 and MSH-2.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// The character set from MSH-18, or `None` if MSH-18 names one this crate does not support.
    pub fn charset(&self) -> Option<Charset> {
        self.charset.known()
    }

    /// The input bytes this message borrows.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.input
    }

    /// Decoded text at `path` (escapes resolved, charset converted to UTF-8).
    ///
    /// `None` if the segment, field, repetition or component does not exist;
    /// `Some("")` if it exists but is empty.
    pub fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        self.get_at(&Path::parse(path)?)
    }

    /// [`Message::get`] with a pre-parsed path.
    pub fn get_at(&self, path: &Path) -> Result<Option<String>, PathError> {
        match self.get_raw_at(path) {
            Some(raw) => self.charset.decode(raw, path, &self.delimiters).map(Some),
            None => Ok(None),
        }
    }

    /// Raw bytes at `path`, escapes intact, borrowed from the input.
    pub fn get_raw(&self, path: &str) -> Result<Option<&'a [u8]>, PathError> {
        Ok(self.get_raw_at(&Path::parse(path)?))
    }

    /// [`Message::get_raw`] with a pre-parsed path.
    pub fn get_raw_at(&self, path: &Path) -> Option<&'a [u8]> {
        let input = self.input;
        let segments = self.spans.iter().filter_map(move |&(s, e)| input.get(s..e));
        locate(segments, path, &self.delimiters)
    }

    /// The segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        let input = self.input;
        let delimiters = self.delimiters;
        self.spans
            .iter()
            .filter_map(move |&(s, e)| input.get(s..e))
            .map(move |raw| Segment { raw, delimiters })
    }

    /// The `n`th (1-based) segment called `name`.
    pub fn segment(&self, name: &str, n: usize) -> Option<Segment<'a>> {
        self.segments()
            .filter(|s| s.name() == name)
            .nth(n.checked_sub(1)?)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.spans.len()
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<String> {
        self.msh_text(10, None)
    }

    /// The message type as `MSH-9.1^MSH-9.2` (e.g. `ADT^A01`), or just MSH-9.1 without a trigger.
    pub fn message_type(&self) -> Option<String> {
        message_type_of(|f, c| self.msh_text(f, c))
    }

    /// MSH-12.1, the version id (e.g. `2.5.1`).
    pub fn version(&self) -> Option<String> {
        self.msh_text(12, Some(1))
    }

    fn msh_text(&self, field: usize, component: Option<usize>) -> Option<String> {
        self.get_at(&Path::msh(field, component))
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    }

    /// Serializes with `\r` terminators; byte-exact for input that used `\r` and no blank lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let segments = self.segments().map(|s| s.raw);
        serialize(segments, self.input.len() + 1, self.final_terminator)
    }

    /// An editable copy.
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage::from_parts(
            self.segments().map(|s| s.raw.to_vec()).collect(),
            self.delimiters,
            self.charset.clone(),
            self.final_terminator,
        )
    }
}

/// Segments joined by `\r`, plus a final `\r` if the message had one.
pub(crate) fn serialize<'s>(
    segments: impl Iterator<Item = &'s [u8]>,
    capacity: usize,
    final_terminator: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    for (i, segment) in segments.enumerate() {
        if i > 0 {
            out.push(b'\r');
        }
        out.extend_from_slice(segment);
    }
    if final_terminator {
        out.push(b'\r');
    }
    out
}

/// `MSH-9.1^MSH-9.2` from a field reader.
pub(crate) fn message_type_of(read: impl Fn(usize, Option<usize>) -> Option<String>) -> Option<String> {
    let code = read(9, Some(1))?;
    match read(9, Some(2)) {
        Some(trigger) => Some(format!("{code}^{trigger}")),
        None => Some(code),
    }
}

/// Finds the raw bytes at `path` among raw segments.
pub(crate) fn locate<'s>(
    segments: impl Iterator<Item = &'s [u8]>,
    path: &Path,
    d: &Delimiters,
) -> Option<&'s [u8]> {
    let name = path.segment_bytes();
    let segment = segments
        .filter(|s| s.get(..3) == Some(name))
        .nth(path.segment_index().checked_sub(1)?)?;
    locate_in_segment(segment, path, d)
}

/// The index of field `field` among the pieces of a segment split on the field separator.
pub(crate) fn field_piece_index(is_msh: bool, field: usize) -> usize {
    // MSH-1 is the separator itself, so MSH-n is piece n-1
    if is_msh { field.saturating_sub(1) } else { field }
}

fn locate_in_segment<'s>(segment: &'s [u8], path: &Path, d: &Delimiters) -> Option<&'s [u8]> {
    let is_msh = segment.starts_with(b"MSH");
    let field = if is_msh && path.field() == 1 {
        segment.get(3..4)?
    } else {
        nth_piece(segment, d.field, field_piece_index(is_msh, path.field()))?
    };
    if is_msh && path.field() <= 2 {
        let whole = [path.repetition(), path.component(), path.subcomponent()]
            .iter()
            .all(|i| i.unwrap_or(1) == 1);
        return whole.then_some(field);
    }
    let Some(rep) = path.repetition() else {
        return Some(field);
    };
    let repetition = nth_piece(field, d.repetition, rep.checked_sub(1)?)?;
    let Some(comp) = path.component() else {
        return Some(repetition);
    };
    let component = nth_piece(repetition, d.component, comp.checked_sub(1)?)?;
    let Some(sub) = path.subcomponent() else {
        return Some(component);
    };
    nth_piece(component, d.subcomponent, sub.checked_sub(1)?)
}

const MLLP_HINT: &str = " (an MLLP framing byte: strip the frame before parsing)";

fn check_start(input: &[u8]) -> Result<(), ParseError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if let Some(&byte @ (0x0b | 0x1c)) = input.first() {
        return Err(ParseError::ControlByte {
            index: 1,
            byte,
            offset: 0,
            hint: MLLP_HINT,
        });
    }
    match input.get(..3) {
        Some(b"MSH") => Ok(()),
        Some(h @ (b"FHS" | b"BHS")) => Err(ParseError::BatchHeader { header: printable(h) }),
        _ => Err(ParseError::NotMsh {
            found: printable(input.get(..8).unwrap_or(input)),
        }),
    }
}

/// Splits on segment terminators; returns the non-blank segment spans and whether the
/// last one was followed by a terminator.
fn split_segments(input: &[u8], accept_lf: bool) -> Result<(Vec<(usize, usize)>, bool), ParseError> {
    let mut spans = Vec::with_capacity(input.len() / 48 + 4);
    let bad = first_forbidden_byte(input);
    let scanned = input.get(..bad.unwrap_or(input.len())).unwrap_or_default();
    let mut start = 0;
    let mut end_segment = |i: usize, spans: &mut Vec<(usize, usize)>| {
        push_span(spans, input, start, i);
        start = i + 1;
    };
    if accept_lf {
        memchr::memchr2_iter(b'\r', b'\n', scanned).for_each(|i| end_segment(i, &mut spans));
    } else {
        memchr::memchr_iter(b'\r', scanned).for_each(|i| end_segment(i, &mut spans));
    }
    if let Some(offset) = bad {
        let byte = input.get(offset).copied().unwrap_or_default();
        let hint = if byte == 0 { "" } else { MLLP_HINT };
        return Err(ParseError::ControlByte {
            index: spans.len() + 1,
            byte,
            offset,
            hint,
        });
    }
    push_span(&mut spans, input, start, input.len());
    let final_terminator = spans.last().is_some_and(|&(_, end)| end < input.len());
    Ok((spans, final_terminator))
}

/// Offset of the first NUL or MLLP framing byte (VT, FS): never part of an ER7 message.
fn first_forbidden_byte(input: &[u8]) -> Option<usize> {
    let nul = memchr::memchr(0, input);
    let framing = memchr::memchr2(
        0x0b,
        0x1c,
        input.get(..nul.unwrap_or(input.len())).unwrap_or_default(),
    );
    framing.or(nul)
}

fn push_span(spans: &mut Vec<(usize, usize)>, input: &[u8], start: usize, end: usize) {
    let blank = input
        .get(start..end)
        .is_none_or(|s| s.iter().all(u8::is_ascii_whitespace));
    if !blank {
        spans.push((start, end));
    }
}

fn check_segment(segment: &[u8], index: usize, d: &Delimiters) -> Result<(), ParseError> {
    let name = segment.get(..3).unwrap_or(segment);
    let invalid = |reason: &str| ParseError::InvalidSegment {
        index,
        name: printable(name),
        reason: reason.to_owned(),
    };
    if !is_segment_name(name) {
        return Err(invalid("segment name must be 3 uppercase letters or digits"));
    }
    if segment.get(3).is_some_and(|b| *b != d.field) {
        return Err(invalid(
            "the segment name must be followed by the field separator",
        ));
    }
    match (index, name) {
        (1, _) => Ok(()),
        (_, b"MSH") => Err(invalid(
            "a second MSH segment starts another message, split the input with batch::split",
        )),
        (_, b"FHS" | b"BHS" | b"BTS" | b"FTS") => Err(invalid(
            "batch header or trailer inside a message, split the input with batch::split",
        )),
        _ => Ok(()),
    }
}

/// The MSH fields the parser needs, read in one pass over the segment.
#[derive(Default)]
struct MshFacts<'a> {
    message_type: &'a [u8],
    version: &'a [u8],
    charset: &'a [u8],
}

impl<'a> MshFacts<'a> {
    fn read(msh: &'a [u8], d: &Delimiters) -> MshFacts<'a> {
        let mut facts = MshFacts::default();
        for (piece, value) in msh.split(|b| *b == d.field).enumerate().take(18) {
            match piece {
                8 => facts.message_type = value,
                11 => facts.version = value,
                17 => facts.charset = value,
                _ => {}
            }
        }
        facts
    }

    fn check_required(&self) -> Result<(), ParseError> {
        if self.message_type.is_empty() {
            return Err(ParseError::MissingMshField {
                field: 9,
                what: "message type",
            });
        }
        if self.version.is_empty() {
            return Err(ParseError::MissingMshField {
                field: 12,
                what: "version id",
            });
        }
        Ok(())
    }
}

fn validate_charset(input: &[u8], spans: &[(usize, usize)], charset: &Charset) -> Result<(), ParseError> {
    for (i, &(s, e)) in spans.iter().enumerate() {
        let segment = input.get(s..e).unwrap_or_default();
        if let Err(at) = charset.validate(segment) {
            return Err(ParseError::InvalidEncoding {
                index: i + 1,
                name: printable(segment.get(..3).unwrap_or_default()),
                offset: s + at,
                charset: charset.label(),
            });
        }
    }
    Ok(())
}

/// One segment of a message, borrowing the message's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
}

impl<'a> Segment<'a> {
    /// Wraps a raw segment (without terminator).
    pub fn new(raw: &'a [u8], delimiters: Delimiters) -> Segment<'a> {
        Segment { raw, delimiters }
    }

    /// The 3-character segment name (empty if the bytes are not a valid name).
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(self.raw.get(..3).unwrap_or_default()).unwrap_or_default()
    }

    /// The raw segment bytes, without terminator.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    fn is_msh(&self) -> bool {
        self.raw.starts_with(b"MSH")
    }

    /// Field `n` (1-based, MSH-1 is the field separator), or `None` past the last field.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        if n == 0 {
            return None;
        }
        let raw = if self.is_msh() && n == 1 {
            self.raw.get(3..4)?
        } else {
            nth_piece(
                self.raw,
                self.delimiters.field,
                field_piece_index(self.is_msh(), n),
            )?
        };
        Some(Field {
            raw,
            delimiters: self.delimiters,
            opaque: self.is_msh() && n <= 2,
        })
    }

    /// Number of fields (the highest field number present).
    pub fn field_count(&self) -> usize {
        let pieces = self.raw.split(|b| *b == self.delimiters.field).count();
        if self.is_msh() {
            pieces
        } else {
            pieces.saturating_sub(1)
        }
    }

    /// Fields in order, starting at field 1.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + '_ {
        (1..=self.field_count()).filter_map(|n| self.field(n))
    }
}

/// One field of a segment (all its repetitions).
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    /// MSH-1 and MSH-2 are not split further.
    opaque: bool,
}

impl<'a> Field<'a> {
    /// Raw bytes, escapes intact.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when the field is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Repetitions in order (one for a field without repetition separators).
    pub fn repetitions(&self) -> impl Iterator<Item = Repetition<'a>> + '_ {
        let sep = if self.opaque {
            None
        } else {
            Some(self.delimiters.repetition)
        };
        pieces(self.raw, sep).map(|raw| Repetition {
            raw,
            delimiters: self.delimiters,
            opaque: self.opaque,
        })
    }

    /// Repetition `n` (1-based).
    pub fn repetition(&self, n: usize) -> Option<Repetition<'a>> {
        self.repetitions().nth(n.checked_sub(1)?)
    }
}

/// One repetition of a field.
#[derive(Debug, Clone, Copy)]
pub struct Repetition<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    opaque: bool,
}

impl<'a> Repetition<'a> {
    /// Raw bytes, escapes intact.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Components in order.
    pub fn components(&self) -> impl Iterator<Item = Component<'a>> + '_ {
        let sep = if self.opaque {
            None
        } else {
            Some(self.delimiters.component)
        };
        pieces(self.raw, sep).map(|raw| Component {
            raw,
            delimiters: self.delimiters,
            opaque: self.opaque,
        })
    }

    /// Component `n` (1-based).
    pub fn component(&self, n: usize) -> Option<Component<'a>> {
        self.components().nth(n.checked_sub(1)?)
    }
}

/// One component of a repetition.
#[derive(Debug, Clone, Copy)]
pub struct Component<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    opaque: bool,
}

impl<'a> Component<'a> {
    /// Raw bytes, escapes intact.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Subcomponents in order, raw.
    pub fn subcomponents(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        pieces(
            self.raw,
            if self.opaque {
                None
            } else {
                Some(self.delimiters.subcomponent)
            },
        )
    }

    /// Subcomponent `n` (1-based), raw.
    pub fn subcomponent(&self, n: usize) -> Option<&'a [u8]> {
        self.subcomponents().nth(n.checked_sub(1)?)
    }
}

/// `raw` split on `sep`, or `raw` whole when there is no separator.
fn pieces(raw: &[u8], sep: Option<u8>) -> impl Iterator<Item = &[u8]> {
    // a segment never holds `\r`, so splitting on it yields the whole value
    let sep = sep.unwrap_or(b'\r');
    raw.split(move |b| *b == sep)
}
