//! ACK/NAK bytes on the wire and reading them back.

use std::collections::HashSet;

use hie_hl7::Message;
use hie_hl7::ack::{
    AckBuilder, AckCode, ErrorCode, build_ack, build_nak_unparseable, format_timestamp, next_control_id,
    parse_ack,
};

const V251: &[u8] = b"MSH|^~\\&|SENDAPP|SENDFAC^1.2.3^ISO|RECVAPP|RECVFAC|20240102030405||ADT^A01^ADT_A01|MSG001|P|2.5.1\rPID|1||123\r";
const V23_CUSTOM: &[u8] = b"MSH#*@!%#SA#SF#RA#RF#20240102##ORU*R01#X9#T#2.3\rOBX#1\r";

fn fixed(code: AckCode) -> AckBuilder {
    AckBuilder::new(code)
        .control_id("ACK1")
        .timestamp("20250101120000+0000")
}

#[test]
fn original_mode_accept_swaps_sender_and_receiver() {
    let m = Message::parse(V251).unwrap();
    let ack = fixed(AckCode::AA).build(&m);
    assert_eq!(
        String::from_utf8(ack).unwrap(),
        "MSH|^~\\&|RECVAPP|RECVFAC|SENDAPP|SENDFAC^1.2.3^ISO|20250101120000+0000||ACK^A01^ACK|ACK1|P|2.5.1\r\
         MSA|AA|MSG001\r"
    );
}

#[test]
fn application_error_carries_err_segment_with_table_0357_code() {
    let m = Message::parse(V251).unwrap();
    let ack = fixed(AckCode::AE)
        .text("PID-3 missing | bad")
        .error_code(ErrorCode::RequiredFieldMissing)
        .build(&m);
    let text = String::from_utf8(ack.clone()).unwrap();
    assert!(
        text.ends_with(
            "MSA|AE|MSG001|PID-3 missing \\F\\ bad\rERR|||101^Required field missing^HL70357|E||||PID-3 missing \\F\\ bad\r"
        ),
        "{text}"
    );
    let info = parse_ack(&ack).unwrap();
    assert_eq!(info.code, AckCode::AE);
    assert_eq!(info.control_id.as_deref(), Some("MSG001"));
    assert_eq!(info.text.as_deref(), Some("PID-3 missing | bad"));
    assert_eq!(info.error_code.as_deref(), Some("101"));
}

#[test]
fn old_versions_get_their_err_layout_and_the_original_delimiters() {
    let m = Message::parse(V23_CUSTOM).unwrap();
    let ack = fixed(AckCode::AR).text("no").build(&m);
    assert_eq!(
        String::from_utf8(ack.clone()).unwrap(),
        "MSH#*@!%#RA#RF#SA#SF#20250101120000+0000##ACK*R01#ACK1#T#2.3\r\
         MSA#AR#X9#no\r\
         ERR#***207%Application internal error%HL70357\r"
    );
    let info = parse_ack(&ack).unwrap();
    assert_eq!(
        (info.code, info.error_code.as_deref()),
        (AckCode::AR, Some("207"))
    );
}

#[test]
fn enhanced_mode_codes() {
    let m = Message::parse(V251).unwrap();
    for code in [AckCode::CA, AckCode::CE, AckCode::CR] {
        let info = parse_ack(&build_ack(&m, code, Some("x"))).unwrap();
        assert_eq!(info.code, code);
        assert!(code.is_enhanced());
        assert_eq!(code.is_success(), code == AckCode::CA);
    }
    let ca = String::from_utf8(build_ack(&m, AckCode::CA, None)).unwrap();
    assert!(!ca.contains("ERR"), "{ca}");
}

#[test]
fn build_ack_uses_fresh_control_ids_and_the_original_version() {
    let m = Message::parse(V251).unwrap();
    let a = Message::parse(&build_ack(&m, AckCode::AA, None))
        .unwrap()
        .to_owned_message();
    let b = Message::parse(&build_ack(&m, AckCode::AA, None))
        .unwrap()
        .to_owned_message();
    assert_ne!(a.control_id(), b.control_id());
    assert_eq!(a.get("MSH-12").unwrap().as_deref(), Some("2.5.1"));
    assert_eq!(a.message_type().as_deref(), Some("ACK^A01"));
}

#[test]
fn ack_overrides_sending_application() {
    let m = Message::parse(V251).unwrap();
    let ack = fixed(AckCode::AA)
        .sending_application("HIE")
        .sending_facility("ENGINE")
        .build(&m);
    let parsed = Message::parse(&ack).unwrap();
    assert_eq!(parsed.get("MSH-3").unwrap().as_deref(), Some("HIE"));
    assert_eq!(parsed.get("MSH-4").unwrap().as_deref(), Some("ENGINE"));
    assert_eq!(parsed.get("MSH-5").unwrap().as_deref(), Some("SENDAPP"));
}

#[test]
fn ack_keeps_charset_and_encodes_text_in_it() {
    let input = b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5|||||FRA|8859/1\r";
    let m = Message::parse(input).unwrap();
    let ack = build_ack(&m, AckCode::AE, Some("nom érroné"));
    assert!(
        ack.windows(4).any(|w| w == b"\xe9rro"),
        "text not latin-1 encoded"
    );
    let parsed = Message::parse(&ack).unwrap();
    assert_eq!(parsed.get("MSH-18").unwrap().as_deref(), Some("8859/1"));
    assert_eq!(parse_ack(&ack).unwrap().text.as_deref(), Some("nom érroné"));
}

#[test]
fn nak_for_unparseable_input_is_a_readable_reject() {
    let nak = build_nak_unparseable("input does not start with an MSH segment");
    let text = String::from_utf8(nak.clone()).unwrap();
    assert!(text.starts_with("MSH|^~\\&|||||"), "{text}");
    assert!(text.contains("||ACK|"), "{text}");
    assert!(
        text.contains("\rMSA|AR||input does not start with an MSH segment\r"),
        "{text}"
    );
    assert!(
        text.contains("\rERR|||100^Segment sequence error^HL70357|E||||input does not start"),
        "{text}"
    );
    let info = parse_ack(&nak).unwrap();
    assert_eq!((info.code, info.control_id), (AckCode::AR, None));
}

#[test]
fn nak_with_non_ascii_reason_declares_utf8() {
    let nak = build_nak_unparseable("segment 2 (PID): caractère invalide");
    let m = Message::parse(&nak).unwrap();
    assert_eq!(m.get("MSH-18").unwrap().as_deref(), Some("UNICODE UTF-8"));
    assert_eq!(
        parse_ack(&nak).unwrap().text.as_deref(),
        Some("segment 2 (PID): caractère invalide")
    );
}

#[test]
fn control_ids_are_unique_and_fit_msh_10() {
    let ids: Vec<String> = (0..10_000).map(|_| next_control_id()).collect();
    assert!(
        ids.iter()
            .all(|id| id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
}

#[test]
fn timestamps_are_utc_hl7_dtm() {
    assert_eq!(format_timestamp(0), "19700101000000+0000");
    assert_eq!(format_timestamp(1_709_210_096), "20240229123456+0000");
}

#[test]
fn lax_acks_without_type_or_version_are_read() {
    let info = parse_ack(b"MSH|^~\\&|R|F|S|F\rMSA|CA|MSG001\r").unwrap();
    assert_eq!(
        (info.code, info.control_id.as_deref()),
        (AckCode::CA, Some("MSG001"))
    );
    assert_eq!(info.text, None);
}
