//! The sample corpus: every malformed file fails with the error in its `.expect` file,
//! every valid file parses and reads as expected.

use std::fs;
use std::path::{Path, PathBuf};

use hie_hl7::{Message, OwnedMessage, ParseError, ParseOptions, ack, batch};

fn corpus(dir: &str) -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir)
}

fn read_valid(name: &str) -> Vec<u8> {
    fs::read(corpus("valid").join(name)).unwrap()
}

/// Runs the reader named by `mode` and returns its error, if any.
fn run(mode: &str, input: &[u8]) -> Option<ParseError> {
    match mode {
        "parse" => Message::parse(input).err(),
        "strict" => Message::parse_with(
            input,
            &ParseOptions {
                strict_charset: true,
                ..Default::default()
            },
        )
        .err(),
        "batch" => batch::split(input).err(),
        "ack" => ack::parse_ack(input).err(),
        other => panic!("unknown mode {other:?}"),
    }
}

#[test]
fn every_malformed_file_fails_with_its_expected_error() {
    let mut checked = 0;
    for entry in fs::read_dir(corpus("malformed")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "hl7") {
            continue;
        }
        let input = fs::read(&path).unwrap();
        let expect = fs::read_to_string(path.with_extension("expect")).unwrap();
        let mode = expect.lines().find_map(|l| l.strip_prefix("mode: ")).unwrap();
        let error = expect.lines().find_map(|l| l.strip_prefix("error: ")).unwrap();
        let got = run(mode, &input).unwrap_or_else(|| panic!("{} parsed without error", path.display()));
        assert_eq!(got.to_string(), error, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} malformed samples found");
}

#[test]
fn every_unparseable_sample_gets_a_readable_nak() {
    for entry in fs::read_dir(corpus("malformed")).unwrap() {
        let path = entry.unwrap().path();
        let input = fs::read(&path).unwrap();
        if path.extension().is_some_and(|e| e == "hl7") && Message::parse(&input).is_err() {
            let reason = Message::parse(&input).unwrap_err().to_string();
            let nak = ack::parse_ack(&ack::build_nak_unparseable(&reason)).unwrap();
            assert_eq!(nak.code, ack::AckCode::AR);
            assert_eq!(nak.control_id, None);
            assert_eq!(nak.text.as_deref(), Some(reason.as_str()));
        }
    }
}

#[test]
fn valid_files_round_trip_byte_exact() {
    for name in [
        "adt_a01_v2.3.hl7",
        "adt_a01_v2.5.1.hl7",
        "oru_r01_v2.4.hl7",
        "adt_a08_latin1.hl7",
        "adt_a04_utf8.hl7",
    ] {
        let input = read_valid(name);
        let strict = ParseOptions {
            strict_charset: true,
            ..Default::default()
        };
        let message = Message::parse_with(&input, &strict).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(message.to_bytes(), input, "{name}");
        assert_eq!(OwnedMessage::parse(&input).unwrap().to_bytes(), input, "{name}");
    }
}

#[test]
fn adt_v23_fields() {
    let input = read_valid("adt_a01_v2.3.hl7");
    let m = Message::parse(&input).unwrap();
    assert_eq!(m.message_type().as_deref(), Some("ADT^A01"));
    assert_eq!(m.version().as_deref(), Some("2.3"));
    assert_eq!(m.get("PID-3(2).1").unwrap().as_deref(), Some("222-33-4444"));
    assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("JAMES"));
    assert_eq!(m.get("NK1-6(2)").unwrap().as_deref(), Some("(900)545-1200"));
    assert_eq!(m.get("AL1-5(2)").unwrap().as_deref(), Some("RASH"));
}

#[test]
fn adt_v251_keeps_formatting_escapes_and_resolves_delimiter_escapes() {
    let input = read_valid("adt_a01_v2.5.1.hl7");
    let m = Message::parse(&input).unwrap();
    assert_eq!(m.message_type().as_deref(), Some("ADT^A01"));
    assert_eq!(m.get("MSH-9.3").unwrap().as_deref(), Some("ADT_A01"));
    assert_eq!(m.control_id().as_deref(), Some("CNTRL-3456"));
    assert_eq!(m.charset().map(|c| c.hl7_name()), Some("UNICODE UTF-8"));
    assert_eq!(
        m.get("NTE-3").unwrap().as_deref(),
        Some("Admitted via ER\\.br\\Observation ward & monitoring")
    );
    assert_eq!(m.get("PID-5.7").unwrap().as_deref(), Some("L"));
}

#[test]
fn oru_observations_by_segment_occurrence() {
    let input = read_valid("oru_r01_v2.4.hl7");
    let m = Message::parse(&input).unwrap();
    assert_eq!(m.message_type().as_deref(), Some("ORU^R01"));
    assert_eq!(m.get("OBX(2)-3.2").unwrap().as_deref(), Some("Triglyceride"));
    assert_eq!(m.get("OBX(2)-8").unwrap().as_deref(), Some("H"));
    assert_eq!(
        m.get("OBX(4)-5").unwrap().as_deref(),
        Some("Fasting | 12h\r\nrepeat test")
    );
    assert_eq!(m.segments().filter(|s| s.name() == "OBX").count(), 4);
}

#[test]
fn latin1_name_decodes_to_utf8_and_encodes_back() {
    let input = read_valid("adt_a08_latin1.hl7");
    assert!(
        input.windows(2).any(|w| w == b"H\xc9"),
        "sample is not latin-1 encoded"
    );
    let m = Message::parse(&input).unwrap();
    assert_eq!(m.get("PID-5.1").unwrap().as_deref(), Some("HÉBERT"));
    assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("Amélie"));
    let mut owned = m.to_owned_message();
    owned.set("PID-5.2", "Zoé").unwrap();
    assert_eq!(owned.get_raw("PID-5.2").unwrap(), Some(&b"Zo\xe9"[..]));
    let err = owned.set("PID-5.2", "Zoë 😀").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot set PID-5.2: the value has characters that 8859/1 cannot represent"
    );
}

#[test]
fn utf8_text_reads_unchanged() {
    let input = read_valid("adt_a04_utf8.hl7");
    let m = Message::parse(&input).unwrap();
    assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("Müller^Zoë"));
    assert_eq!(m.get("NTE-3").unwrap().as_deref(), Some("患者メモ 🩺 ok"));
}

#[test]
fn fhs_batch_splits_into_its_messages() {
    let input = read_valid("batch_fhs.hl7");
    let messages = batch::split(&input).unwrap();
    let ids: Vec<String> = messages
        .iter()
        .map(|m| Message::parse(m).unwrap().control_id().unwrap())
        .collect();
    assert_eq!(ids, ["B1", "B2", "B3"]);
    let third = Message::parse(messages[2]).unwrap();
    assert_eq!(third.message_type().as_deref(), Some("ORU^R01"));
    assert_eq!(third.to_bytes(), messages[2]);
}

#[test]
fn plain_file_of_lf_messages_splits() {
    let input = read_valid("multi_plain_lf.hl7");
    let messages = batch::split(&input).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        Message::parse(messages[1])
            .unwrap()
            .get("PID-5.1")
            .unwrap()
            .as_deref(),
        Some("NAME5")
    );
}
