//! Batch splitting edge cases and character-set handling.

use hie_hl7::{Charset, Message, OwnedMessage, ParseError, PathError, batch};

/// Decoded text at `path` of a message that must parse.
fn read(input: &[u8], path: &str) -> Option<String> {
    Message::parse(input).unwrap().get(path).unwrap()
}

#[test]
fn split_keeps_each_message_byte_exact_with_crlf() {
    let a = "MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\r\nPID|1\r\n";
    let b = "MSH|^~\\&|A|B|C|D|||ADT^A02|2|P|2.5\r\nPID|2\r\n";
    let input = format!("BHS|^~\\&|A\r\n{a}{b}BTS|2\r\n");
    let parts = batch::split(input.as_bytes()).unwrap();
    assert_eq!(parts, [a.as_bytes(), b.as_bytes()]);
}

#[test]
fn empty_envelope_has_no_messages() {
    assert_eq!(
        batch::split(b"FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1\r").unwrap(),
        Vec::<&[u8]>::new()
    );
}

#[test]
fn single_message_splits_to_itself() {
    let input: &[u8] = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1";
    assert_eq!(batch::split(input).unwrap(), [input]);
}

#[test]
fn unsupported_charset_parses_but_refuses_decoded_reads() {
    let input = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5|||||CHN|GB 18030-2000\rPID|1||1||X\r";
    let m = Message::parse(input).unwrap();
    assert_eq!(m.charset(), None);
    assert_eq!(m.get_raw("PID-5").unwrap(), Some(&b"X"[..]));
    let err = m.get("PID-5").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decode PID-5: unsupported character set \"GB 18030-2000\" in MSH-18"
    );
    let mut owned = m.to_owned_message();
    assert!(matches!(
        owned.set("PID-5", "Y"),
        Err(PathError::UnsupportedCharset { .. })
    ));
    let strict = hie_hl7::ParseOptions {
        strict_charset: true,
        ..Default::default()
    };
    assert!(matches!(
        Message::parse_with(input, &strict),
        Err(ParseError::UnsupportedCharset { .. })
    ));
}

#[test]
fn iso_8859_parts_decode_through_encoding_rs() {
    let input = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5|||||POL|8859/2\rPID|1||1||\xa3\xf3d\xbc\r";
    assert_eq!(read(input, "PID-5").as_deref(), Some("Łódź"));
    assert_eq!(
        Message::parse(input).unwrap().charset().map(|c| c.hl7_name()),
        Some("8859/2")
    );
}

#[test]
fn hex_escape_bytes_decode_in_the_message_charset() {
    let input = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5|||||FRA|8859/1\rPID|1||1||H\\XC9\\bert\r";
    assert_eq!(read(input, "PID-5").as_deref(), Some("HÉbert"));
}

#[test]
fn unspecified_charset_reads_utf8_or_falls_back_to_latin1() {
    let utf8 = "MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||1||Zoë\r";
    assert_eq!(read(utf8.as_bytes(), "PID-5").as_deref(), Some("Zoë"));
    let latin1 = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||1||Zo\xeb\r";
    assert_eq!(read(latin1, "PID-5").as_deref(), Some("Zoë"));
}

#[test]
fn setting_msh_18_changes_how_values_are_encoded() {
    let mut m = OwnedMessage::parse(b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\r").unwrap();
    m.set("MSH-18", "ASCII").unwrap();
    assert_eq!(m.charset(), Some(Charset::ASCII));
    assert!(matches!(m.set("PID-5", "é"), Err(PathError::Unencodable { .. })));
    m.set("MSH-18", "UNICODE UTF-8").unwrap();
    m.set("PID-5", "é").unwrap();
    assert_eq!(m.get_raw("PID-5").unwrap(), Some("é".as_bytes()));
}

#[test]
fn charset_lookup_is_case_insensitive_and_knows_aliases() {
    assert_eq!(Charset::from_msh18(" unicode utf-8 ").unwrap(), Charset::UTF8);
    assert_eq!(Charset::from_msh18("ISO IR100").unwrap(), Charset::LATIN1);
    assert_eq!(Charset::from_msh18("").unwrap().hl7_name(), "");
    assert!(Charset::from_msh18("UNICODE UTF-16").is_err());
}
