//! Typed errors for parsing messages and for field paths.

/// Why bytes could not be read as an HL7 v2 message (or batch, or ACK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Zero-length input (or only blank lines).
    #[error("input is empty")]
    Empty,
    /// The input does not begin with `MSH`.
    #[error("input does not start with an MSH segment (starts with \"{found}\")")]
    NotMsh {
        /// The first bytes of the input, rendered printable.
        found: String,
    },
    /// The input is a batch file; it has to be split before parsing messages.
    #[error("input starts with a {header} batch header, split it with batch::split first")]
    BatchHeader {
        /// `FHS` or `BHS`.
        header: String,
    },
    /// The MSH segment ends before its delimiters are complete.
    #[error("truncated MSH segment: {missing} is missing after {len} bytes")]
    TruncatedMsh {
        /// Length of the MSH segment.
        len: usize,
        /// What is missing.
        missing: &'static str,
    },
    /// MSH-1 is not a usable field separator.
    #[error("invalid field separator \"{found}\" in MSH-1: it {reason}")]
    InvalidFieldSeparator {
        /// The separator byte, rendered printable.
        found: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// MSH-2 does not hold four or five distinct delimiter characters.
    #[error("invalid encoding characters \"{found}\" in MSH-2: {reason}")]
    InvalidEncodingCharacters {
        /// The MSH-2 value, rendered printable.
        found: String,
        /// Why it is refused.
        reason: String,
    },
    /// A segment is malformed (bad name, misplaced MSH…).
    #[error("segment {index} ({name}): {reason}")]
    InvalidSegment {
        /// 1-based position of the segment in the message.
        index: usize,
        /// Segment name as found, rendered printable.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A control byte that never belongs in an ER7 message (NUL, MLLP framing bytes).
    #[error("segment {index}: control byte 0x{byte:02x} at byte offset {offset} is not allowed{hint}")]
    ControlByte {
        /// 1-based segment position.
        index: usize,
        /// The byte found.
        byte: u8,
        /// Offset from the start of the input.
        offset: usize,
        /// Extra hint for MLLP framing bytes.
        hint: &'static str,
    },
    /// A required MSH field is absent or empty.
    #[error("required field MSH-{field} ({what}) is missing or empty")]
    MissingMshField {
        /// MSH field number.
        field: usize,
        /// Field name.
        what: &'static str,
    },
    /// MSH-18 names a character set this crate does not decode.
    #[error("unsupported character set \"{charset}\" in MSH-18: {reason}")]
    UnsupportedCharset {
        /// MSH-18 value as found.
        charset: String,
        /// Why it is not supported.
        reason: &'static str,
    },
    /// Bytes are invalid in the declared character set (only with `strict_charset`).
    #[error("segment {index} ({name}): byte offset {offset} is not valid {charset}")]
    InvalidEncoding {
        /// 1-based segment position.
        index: usize,
        /// Segment name.
        name: String,
        /// Offset from the start of the input.
        offset: usize,
        /// The character set declared by MSH-18.
        charset: &'static str,
    },
    /// A batch file is malformed.
    #[error("batch segment {index} ({name}): {reason}")]
    Batch {
        /// 1-based segment position in the batch file.
        index: usize,
        /// Segment name, rendered printable.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A segment the reader requires is absent (e.g. MSA in an ACK).
    #[error("required segment {name} is missing")]
    MissingSegment {
        /// Segment name.
        name: &'static str,
    },
    /// MSA-1 holds something other than AA/AE/AR/CA/CE/CR.
    #[error("invalid acknowledgment code \"{found}\" in MSA-1: expected AA, AE, AR, CA, CE or CR")]
    InvalidAckCode {
        /// MSA-1 as found, rendered printable.
        found: String,
    },
}

/// Why a field path could not be parsed, read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path text does not follow `SEG(n)-F(r).C.S`.
    #[error("invalid path \"{path}\": {reason}")]
    Syntax {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The message's character set cannot be decoded, so text cannot be produced.
    #[error("cannot decode {path}: unsupported character set \"{charset}\" in MSH-18")]
    UnsupportedCharset {
        /// The path read.
        path: String,
        /// MSH-18 value.
        charset: String,
    },
    /// The value has characters the message's character set cannot represent.
    #[error("cannot set {path}: the value has characters that {charset} cannot represent")]
    Unencodable {
        /// The path written.
        path: String,
        /// The message's character set.
        charset: &'static str,
    },
    /// The path names something that cannot be written (MSH-1, MSH-2, a second MSH).
    #[error("cannot set {path}: {reason}")]
    ReadOnly {
        /// The path written.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A raw value holds separators that do not belong at the path's level.
    #[error("cannot set {path} raw: the value holds {what}")]
    InvalidRaw {
        /// The path written.
        path: String,
        /// The offending character(s).
        what: String,
    },
}
