//! Acknowledgments: build ACK/NAK for a received message, and read an ACK.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::ParseError;
use crate::escape::escape;
use crate::message::Message;
use crate::util::printable;

/// MSA-1 acknowledgment code (HL7 table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Original mode: application accept.
    AA,
    /// Original mode: application error.
    AE,
    /// Original mode: application reject.
    AR,
    /// Enhanced mode: commit accept.
    CA,
    /// Enhanced mode: commit error.
    CE,
    /// Enhanced mode: commit reject.
    CR,
}

impl AckCode {
    /// The two-letter code.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// True for AA and CA.
    pub fn is_success(&self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }

    /// True for the enhanced-mode (commit) codes CA, CE, CR.
    pub fn is_enhanced(&self) -> bool {
        matches!(self, AckCode::CA | AckCode::CE | AckCode::CR)
    }
}

impl fmt::Display for AckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AckCode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<AckCode, ParseError> {
        match s.trim() {
            "AA" => Ok(AckCode::AA),
            "AE" => Ok(AckCode::AE),
            "AR" => Ok(AckCode::AR),
            "CA" => Ok(AckCode::CA),
            "CE" => Ok(AckCode::CE),
            "CR" => Ok(AckCode::CR),
            other => Err(ParseError::InvalidAckCode {
                found: printable(other.as_bytes()),
            }),
        }
    }
}

/// Error codes of HL7 table 0357, sent in ERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100: segments out of order or a required segment missing.
    SegmentSequence,
    /// 101: a required field is missing.
    RequiredFieldMissing,
    /// 102: a field holds data of the wrong type.
    DataType,
    /// 103: a value is not in its table.
    TableValueNotFound,
    /// 200: the message type is not supported.
    UnsupportedMessageType,
    /// 201: the trigger event is not supported.
    UnsupportedEventCode,
    /// 202: the processing id is not supported.
    UnsupportedProcessingId,
    /// 203: the version id is not supported.
    UnsupportedVersionId,
    /// 204: unknown key identifier.
    UnknownKeyIdentifier,
    /// 205: duplicate key identifier.
    DuplicateKeyIdentifier,
    /// 206: application record locked.
    ApplicationRecordLocked,
    /// 207: application internal error.
    ApplicationInternalError,
}

impl ErrorCode {
    /// The numeric code, e.g. 207.
    pub fn code(&self) -> u16 {
        self.entry().0
    }

    /// The table's description, e.g. `Application internal error`.
    pub fn description(&self) -> &'static str {
        self.entry().1
    }

    fn entry(&self) -> (u16, &'static str) {
        match self {
            ErrorCode::SegmentSequence => (100, "Segment sequence error"),
            ErrorCode::RequiredFieldMissing => (101, "Required field missing"),
            ErrorCode::DataType => (102, "Data type error"),
            ErrorCode::TableValueNotFound => (103, "Table value not found"),
            ErrorCode::UnsupportedMessageType => (200, "Unsupported message type"),
            ErrorCode::UnsupportedEventCode => (201, "Unsupported event code"),
            ErrorCode::UnsupportedProcessingId => (202, "Unsupported processing id"),
            ErrorCode::UnsupportedVersionId => (203, "Unsupported version id"),
            ErrorCode::UnknownKeyIdentifier => (204, "Unknown key identifier"),
            ErrorCode::DuplicateKeyIdentifier => (205, "Duplicate key identifier"),
            ErrorCode::ApplicationRecordLocked => (206, "Application record locked"),
            ErrorCode::ApplicationInternalError => (207, "Application internal error"),
        }
    }
}

/// What an ACK says: MSA-1, MSA-2 and the error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckInfo {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2, the control id of the acknowledged message.
    pub control_id: Option<String>,
    /// MSA-3, else ERR-8 (user message), else the ERR error code's text.
    pub text: Option<String>,
    /// The ERR error code (ERR-3.1, or ERR-1.4.1 before v2.5).
    pub error_code: Option<String>,
}

/// Builds an ACK for `original` with its delimiters, version and swapped sender/receiver.
/// With `error_text` and a non-success code, an ERR segment (code 207) carries the reason.
pub fn build_ack(original: &Message<'_>, code: AckCode, error_text: Option<&str>) -> Vec<u8> {
    let mut builder = AckBuilder::new(code);
    if let Some(text) = error_text {
        builder = builder.text(text);
    }
    builder.build(original)
}

/// A reject (AR) for input whose MSH cannot be read: default delimiters, no MSA-2,
/// an ERR segment (code 100) with `reason`.
pub fn build_nak_unparseable(reason: &str) -> Vec<u8> {
    AckBuilder::new(AckCode::AR)
        .text(reason)
        .error_code(ErrorCode::SegmentSequence)
        .build_unparseable()
}

/// Reads MSA (and ERR) of an acknowledgment message. MSH-9 and MSH-12 are not required,
/// as some systems leave them out of their ACKs.
pub fn parse_ack(bytes: &[u8]) -> Result<AckInfo, ParseError> {
    let ack = Message::parse_reply(bytes)?;
    if ack.segment("MSA", 1).is_none() {
        return Err(ParseError::MissingSegment { name: "MSA" });
    }
    let text_at = |path: &str| ack.get(path).ok().flatten().filter(|s| !s.trim().is_empty());
    let code_text = text_at("MSA-1").unwrap_or_default();
    let code = code_text.parse::<AckCode>()?;
    let text = ["MSA-3", "ERR-8", "ERR-3.2", "ERR-1.4.2"]
        .iter()
        .find_map(|p| text_at(p));
    let error_code = ["ERR-3.1", "ERR-1.4.1"].iter().find_map(|p| text_at(p));
    Ok(AckInfo {
        code,
        control_id: text_at("MSA-2"),
        text,
        error_code,
    })
}

/// Configurable ACK construction.
#[derive(Debug, Clone)]
pub struct AckBuilder {
    code: AckCode,
    text: Option<String>,
    error_code: Option<ErrorCode>,
    sending_application: Option<String>,
    sending_facility: Option<String>,
    control_id: Option<String>,
    timestamp: Option<String>,
}

impl AckBuilder {
    /// An ACK with MSA-1 `code`.
    pub fn new(code: AckCode) -> AckBuilder {
        AckBuilder {
            code,
            text: None,
            error_code: None,
            sending_application: None,
            sending_facility: None,
            control_id: None,
            timestamp: None,
        }
    }

    /// The reason, sent in MSA-3 and, for non-success codes, in ERR.
    pub fn text(mut self, text: impl Into<String>) -> AckBuilder {
        self.text = Some(text.into());
        self
    }

    /// The HL7 table 0357 code for ERR (default 207 application internal error).
    pub fn error_code(mut self, code: ErrorCode) -> AckBuilder {
        self.error_code = Some(code);
        self
    }

    /// MSH-3 of the ACK instead of the original's MSH-5.
    pub fn sending_application(mut self, value: impl Into<String>) -> AckBuilder {
        self.sending_application = Some(value.into());
        self
    }

    /// MSH-4 of the ACK instead of the original's MSH-6.
    pub fn sending_facility(mut self, value: impl Into<String>) -> AckBuilder {
        self.sending_facility = Some(value.into());
        self
    }

    /// MSH-10 of the ACK instead of a fresh [`next_control_id`].
    pub fn control_id(mut self, id: impl Into<String>) -> AckBuilder {
        self.control_id = Some(id.into());
        self
    }

    /// MSH-7 of the ACK instead of the current time (e.g. for reproducible tests).
    pub fn timestamp(mut self, ts: impl Into<String>) -> AckBuilder {
        self.timestamp = Some(ts.into());
        self
    }

    /// The ACK for `original`.
    pub fn build(&self, original: &Message<'_>) -> Vec<u8> {
        let d = *original.delimiters();
        let charset = original.charset();
        let raw = |path: &str| original.get_raw(path).ok().flatten().unwrap_or_default();
        let version = Version::parse(&original.version().unwrap_or_default());
        let mut w = Er7Writer::new(d, charset);
        w.start("MSH");
        w.raw(d.encoding_characters().as_bytes());
        w.text_or_raw(self.sending_application.as_deref(), raw("MSH-5"));
        w.text_or_raw(self.sending_facility.as_deref(), raw("MSH-6"));
        w.raw(raw("MSH-3"));
        w.raw(raw("MSH-4"));
        self.write_header_tail(&mut w, &message_type(raw("MSH-9.2"), version, &d));
        w.raw(raw("MSH-11"));
        w.raw(raw("MSH-12"));
        let msh18 = raw("MSH-18");
        if !msh18.is_empty() {
            w.skip(5);
            w.raw(msh18);
        }
        w.end();
        self.write_msa_err(&mut w, raw("MSH-10"), version);
        w.out
    }

    /// An ACK for input without a readable MSH: default delimiters, version 2.5, no MSA-2.
    pub fn build_unparseable(&self) -> Vec<u8> {
        let text_is_ascii = self.text.as_deref().is_none_or(str::is_ascii);
        let charset = if text_is_ascii {
            Charset::ASCII
        } else {
            Charset::UTF8
        };
        let mut w = Er7Writer::new(Delimiters::default(), Some(charset));
        w.start("MSH");
        w.raw(Delimiters::default().encoding_characters().as_bytes());
        w.text_or_raw(self.sending_application.as_deref(), b"");
        w.text_or_raw(self.sending_facility.as_deref(), b"");
        w.skip(2);
        self.write_header_tail(&mut w, "ACK");
        w.raw(b"P");
        w.raw(b"2.5");
        if !text_is_ascii {
            w.skip(5);
            w.raw(charset.hl7_name().as_bytes());
        }
        w.end();
        self.write_msa_err(&mut w, b"", Version(2, 5, 0));
        w.out
    }

    /// MSH-7 to MSH-10.
    fn write_header_tail(&self, w: &mut Er7Writer, message_type: &str) {
        let timestamp = self.timestamp.clone().unwrap_or_else(now_timestamp);
        w.text(&timestamp);
        w.skip(1);
        w.raw(message_type.as_bytes());
        let id = self.control_id.clone().unwrap_or_else(next_control_id);
        w.text(&id);
    }

    fn write_msa_err(&self, w: &mut Er7Writer, original_control_id: &[u8], version: Version) {
        w.start("MSA");
        w.raw(self.code.as_str().as_bytes());
        w.raw(original_control_id);
        if let Some(text) = &self.text {
            w.text(text);
        }
        w.end();
        if self.code.is_success() || (self.text.is_none() && self.error_code.is_none()) {
            return;
        }
        let error = self.error_code.unwrap_or(ErrorCode::ApplicationInternalError);
        let code = error.code().to_string();
        let d = w.delimiters;
        w.start("ERR");
        if version >= Version(2, 5, 0) {
            w.skip(2);
            w.join(d.component, &[&code, error.description(), "HL70357"]);
            w.raw(b"E");
            if let Some(text) = &self.text {
                w.skip(3);
                w.text(text);
            }
        } else {
            // ERR-1 (CM_ELD): segment^sequence^field^code&text&table
            let mut location = char::from(d.component).to_string().repeat(3);
            location.push_str(&join_escaped(
                d.subcomponent,
                &[&code, error.description(), "HL70357"],
                &d,
            ));
            w.raw(&encode_lossy(&location, w.charset));
        }
        w.end();
    }
}

/// MSH-9 of the ACK: `ACK^<trigger>^ACK` from v2.3.1, `ACK^<trigger>` in v2.3, `ACK` before.
fn message_type(trigger: &[u8], version: Version, d: &Delimiters) -> String {
    let trigger = String::from_utf8_lossy(trigger);
    let component = char::from(d.component);
    if trigger.is_empty() || version < Version(2, 3, 0) {
        "ACK".to_owned()
    } else if version < Version(2, 3, 1) {
        format!("ACK{component}{trigger}")
    } else {
        format!("ACK{component}{trigger}{component}ACK")
    }
}

/// MSH-12 as comparable numbers (`2.5.1` → 2, 5, 1); unknown versions compare as newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u8, u8, u8);

impl Version {
    fn parse(text: &str) -> Version {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u8>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) => Version(major, minor, parts.next().flatten().unwrap_or(0)),
            _ => Version(u8::MAX, 0, 0),
        }
    }
}

/// Writes segments field by field with one message's delimiters and charset.
struct Er7Writer {
    out: Vec<u8>,
    delimiters: Delimiters,
    charset: Option<Charset>,
}

impl Er7Writer {
    fn new(delimiters: Delimiters, charset: Option<Charset>) -> Er7Writer {
        Er7Writer {
            out: Vec::with_capacity(256),
            delimiters,
            charset,
        }
    }

    /// Starts a segment; fields written next are preceded by the field separator.
    fn start(&mut self, name: &str) {
        self.out.extend_from_slice(name.as_bytes());
    }

    fn end(&mut self) {
        self.out.push(b'\r');
    }

    fn raw(&mut self, value: &[u8]) {
        self.out.push(self.delimiters.field);
        self.out.extend_from_slice(value);
    }

    fn text(&mut self, value: &str) {
        let bytes = encode_lossy(&escape(value, &self.delimiters), self.charset);
        self.raw(&bytes);
    }

    fn text_or_raw(&mut self, text: Option<&str>, raw: &[u8]) {
        match text {
            Some(t) => self.text(t),
            None => self.raw(raw),
        }
    }

    fn skip(&mut self, fields: usize) {
        for _ in 0..fields {
            self.out.push(self.delimiters.field);
        }
    }

    fn join(&mut self, sep: u8, parts: &[&str]) {
        let joined = join_escaped(sep, parts, &self.delimiters);
        let bytes = encode_lossy(&joined, self.charset);
        self.raw(&bytes);
    }
}

/// Escapes each part and joins them with a component or subcomponent separator.
fn join_escaped(sep: u8, parts: &[&str], d: &Delimiters) -> String {
    let escaped: Vec<String> = parts.iter().map(|p| escape(p, d)).collect();
    escaped.join(char::from(sep).encode_utf8(&mut [0u8; 4]))
}

/// Encodes text in the ACK's charset; characters it cannot hold become `?`.
fn encode_lossy(text: &str, charset: Option<Charset>) -> Vec<u8> {
    let charset = charset.unwrap_or(Charset::ASCII);
    if let Some(bytes) = charset.encode(text) {
        return bytes.into_owned();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for ch in text.chars() {
        match charset.encode(ch.encode_utf8(&mut buf)) {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => out.push(b'?'),
        }
    }
    out
}

/// A fresh MSH-10 of 19 digits (within the 20 allowed before v2.7): UTC milliseconds,
/// the microsecond within that millisecond, and a per-process sequence modulo 1000.
///
/// Unique within a process (1000 ids cannot be made in one microsecond); two processes
/// collide only with the same microsecond and the same sequence digits.
pub fn next_control_id() -> String {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1000;
    let now = since_epoch();
    let micros = now.subsec_micros() % 1000;
    format!("{}{micros:03}{sequence:03}", now.as_millis())
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The current UTC time as an HL7 timestamp `YYYYMMDDHHMMSS+0000`.
pub fn now_timestamp() -> String {
    format_timestamp(since_epoch().as_secs())
}

/// Formats seconds since the Unix epoch as `YYYYMMDDHHMMSS+0000`.
pub fn format_timestamp(unix_seconds: u64) -> String {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or_default();
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}+0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}
