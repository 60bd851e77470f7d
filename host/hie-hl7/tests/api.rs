//! Reading, editing and serializing messages through the public API.

use hie_hl7::{Message, OwnedMessage, ParseOptions, Path};

const ADT: &[u8] =
    b"MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240102030405||ADT^A01^ADT_A01|CTRL123|P|2.5.1\r\
EVN|A01|20240102030405\r\
PID|1||12345^^^HOSP^MR~67890^^^NAT^NI||DOE^JOHN^Q||19800101|M|||1 MAIN ST^^TOWN^ST^12345\r\
PV1|1|I|WARD^101^A\r\
OBX|1|ST|A||first\r\
OBX|2|ST|B||second\r\
OBX|3|ST|C||third \\F\\ escaped\r";

#[test]
fn reads_msh_fields_with_standard_numbering() {
    let m = Message::parse(ADT).unwrap();
    assert_eq!(m.get("MSH-1").unwrap().as_deref(), Some("|"));
    assert_eq!(m.get("MSH-2").unwrap().as_deref(), Some("^~\\&"));
    assert_eq!(m.get("MSH-3").unwrap().as_deref(), Some("SENDAPP"));
    assert_eq!(m.get("MSH-9.1").unwrap().as_deref(), Some("ADT"));
    assert_eq!(m.message_type().as_deref(), Some("ADT^A01"));
    assert_eq!(m.control_id().as_deref(), Some("CTRL123"));
    assert_eq!(m.version().as_deref(), Some("2.5.1"));
}

#[test]
fn reads_repetitions_components_subcomponents_and_segment_occurrences() {
    let m = Message::parse(ADT).unwrap();
    assert_eq!(m.get("PID-3(2).1").unwrap().as_deref(), Some("67890"));
    assert_eq!(m.get("PID-3.4").unwrap().as_deref(), Some("HOSP"));
    assert_eq!(m.get("PID-5.1.1").unwrap().as_deref(), Some("DOE"));
    assert_eq!(m.get("OBX(3)-5").unwrap().as_deref(), Some("third | escaped"));
    assert_eq!(m.get_raw("OBX(3)-5").unwrap(), Some(&b"third \\F\\ escaped"[..]));
    assert_eq!(
        m.get("PID-3").unwrap().as_deref(),
        Some("12345^^^HOSP^MR~67890^^^NAT^NI")
    );
    assert_eq!(m.get("OBX(4)-5").unwrap(), None);
    assert_eq!(m.get("PID-99").unwrap(), None);
    assert_eq!(m.get("PID-3(3)").unwrap(), None);
    assert_eq!(m.get("PID-4").unwrap().as_deref(), Some(""));
}

#[test]
fn unchanged_message_serializes_byte_exact() {
    let m = Message::parse(ADT).unwrap();
    assert_eq!(m.to_bytes(), ADT);
    assert_eq!(m.to_owned_message().to_bytes(), ADT);
}

#[test]
fn lf_terminators_are_accepted_and_output_uses_cr() {
    let lf: Vec<u8> = ADT.iter().map(|b| if *b == b'\r' { b'\n' } else { *b }).collect();
    let m = Message::parse(&lf).unwrap();
    assert_eq!(m.segment_count(), 7);
    assert_eq!(m.to_bytes(), ADT);
    let crlf = String::from_utf8(ADT.to_vec()).unwrap().replace('\r', "\r\n");
    assert_eq!(Message::parse(crlf.as_bytes()).unwrap().to_bytes(), ADT);
}

#[test]
fn lf_is_data_when_not_accepted() {
    let opts = ParseOptions {
        accept_lf: false,
        ..ParseOptions::default()
    };
    let input = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rNTE|1||line1\nline2\r";
    let m = Message::parse_with(input, &opts).unwrap();
    assert_eq!(m.get("NTE-3").unwrap().as_deref(), Some("line1\nline2"));
}

#[test]
fn set_edits_only_the_target_and_escapes() {
    let mut m = OwnedMessage::parse(ADT).unwrap();
    m.set("PID-5.2", "JANE|ANN").unwrap();
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(
        out.contains("PID|1||12345^^^HOSP^MR~67890^^^NAT^NI||DOE^JANE\\F\\ANN^Q||19800101|"),
        "{out}"
    );
    assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("JANE|ANN"));
    let expected = String::from_utf8(ADT.to_vec())
        .unwrap()
        .replace("DOE^JOHN^Q", "DOE^JANE\\F\\ANN^Q");
    assert_eq!(out, expected);
}

#[test]
fn set_creates_missing_segments_fields_and_repetitions() {
    let mut m = OwnedMessage::parse(ADT).unwrap();
    m.set("ZPD-3(2).2.3", "x").unwrap();
    m.set("OBX(5)-5", "fifth").unwrap();
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(
        out.ends_with("OBX|3|ST|C||third \\F\\ escaped\rOBX\rOBX|||||fifth\rZPD|||~^&&x\r"),
        "{out}"
    );
}

#[test]
fn set_raw_keeps_structure_and_refuses_upper_level_separators() {
    let mut m = OwnedMessage::parse(ADT).unwrap();
    m.set_raw("PID-3", "A^B~C").unwrap();
    assert_eq!(m.get("PID-3(2)").unwrap().as_deref(), Some("C"));
    let err = m.set_raw("PID-3.1", "A^B").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot set PID-3.1 raw: the value holds the component separator"
    );
}

#[test]
fn clear_removes_trailing_separators_it_leaves() {
    let mut m = OwnedMessage::parse(ADT).unwrap();
    m.clear("PID-3(2)").unwrap();
    assert_eq!(m.get("PID-3").unwrap().as_deref(), Some("12345^^^HOSP^MR"));
    m.clear("OBX(3)-5").unwrap();
    assert!(String::from_utf8(m.to_bytes()).unwrap().ends_with("OBX|3|ST|C\r"));
    let before = m.to_bytes();
    m.clear("ZZZ-1").unwrap();
    assert_eq!(m.to_bytes(), before);
}

#[test]
fn clear_in_the_middle_keeps_the_separators_after_it() {
    let input: &[u8] =
        b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123||DOE^J||19700101|F|||||||||||ACC|\r";
    let mut m = OwnedMessage::parse(input).unwrap();
    m.clear("PID-8").unwrap();
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(
        out.ends_with("PID|1||123||DOE^J||19700101||||||||||||ACC|\r"),
        "{out:?}"
    );
}

#[test]
fn delimiter_fields_are_read_only() {
    let mut m = OwnedMessage::parse(ADT).unwrap();
    let err = m.set("MSH-2", "x").unwrap_err();
    assert!(err.to_string().starts_with("cannot set MSH-2: "), "{err}");
}

#[test]
fn custom_delimiters_come_from_msh() {
    let input = b"MSH#*@!%#A#B#C#D###ORU*R01#9#P#2.4\rOBX#1#CE#X*Y@Z*W%V!S!\r";
    let m = Message::parse(input).unwrap();
    let d = m.delimiters();
    assert_eq!(
        (d.field, d.component, d.repetition, d.escape, d.subcomponent),
        (b'#', b'*', b'@', b'!', b'%')
    );
    assert_eq!(m.message_type().as_deref(), Some("ORU^R01"));
    assert_eq!(m.get("OBX-3(2).2.2").unwrap().as_deref(), Some("V*"));
}

#[test]
fn path_display_round_trips() {
    for text in ["MSH-9.1", "PID-3(2).1", "OBX(3)-5", "PID-5.1.1"] {
        assert_eq!(text.parse::<Path>().unwrap().to_string(), text);
    }
    let err = Path::parse("PID-0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid path \"PID-0\": indexes are 1-based, 0 is not allowed"
    );
}

#[test]
fn escapes_decode_and_formatting_escapes_pass_through() {
    let input = b"MSH|^~\\&#|A|B|C|D|||ADT^A01|1|P|2.7\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\P\\g\\X4142\\h\\.br\\i\\H\\j\\N\\k\\Zfoo\\l\\broken\r";
    let m = Message::parse(input).unwrap();
    assert_eq!(m.get("MSH-2").unwrap().as_deref(), Some("^~\\&#"));
    assert_eq!(
        m.get("NTE-3").unwrap().as_deref(),
        Some("a|b^c&d~e\\f#gABh\\.br\\i\\H\\j\\N\\k\\Zfoo\\l\\broken")
    );
    let without_truncation = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rNTE|1||x\\P\\y\r";
    assert_eq!(
        Message::parse(without_truncation)
            .unwrap()
            .get("NTE-3")
            .unwrap()
            .as_deref(),
        Some("x\\P\\y")
    );
}

#[test]
fn segments_expose_fields_repetitions_and_components() {
    let m = Message::parse(ADT).unwrap();
    let pid = m.segment("PID", 1).unwrap();
    assert_eq!(pid.name(), "PID");
    assert_eq!(pid.field_count(), 11);
    let ids: Vec<&[u8]> = pid
        .field(3)
        .unwrap()
        .repetitions()
        .map(|r| r.component(1).unwrap().raw())
        .collect();
    assert_eq!(ids, [&b"12345"[..], &b"67890"[..]]);
    let msh = m.segments().next().unwrap();
    assert_eq!(msh.field(1).unwrap().raw(), b"|");
    assert_eq!(
        msh.field(2).unwrap().repetitions().count(),
        1,
        "MSH-2 is not split on its own characters"
    );
    assert_eq!(
        msh.field(9)
            .unwrap()
            .repetition(1)
            .unwrap()
            .component(2)
            .unwrap()
            .raw(),
        b"A01"
    );
    assert_eq!(
        m.segments().map(|s| s.name()).collect::<Vec<_>>(),
        ["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "OBX"]
    );
}
