//! hie-hl7 micro-benchmarks. Goal: parse a ~1 KB ADT^A01 and read 5 fields, median <= 2 µs.
//!
//! Criterion prints its usual report; a JSON line with our own median follows, so scripts
//! can check the goal without parsing criterion's output.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use hie_hl7::ack::{AckCode, build_ack};
use hie_hl7::{Message, OwnedMessage, Path};

const GOAL_NS: f64 = 2_000.0;

/// A realistic ADT^A01 of about 1 KB.
const ADT_A01: &[u8] = b"MSH|^~\\&|EPICADT|GOODHEALTH^2.16.840.1.113883.3.72^ISO|HIE|HIE_FAC|20240102080000-0500|SECURITY|ADT^A01^ADT_A01|MSG00001234567|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
EVN|A01|20240102080000-0500|||JSMITH^SMITH^JOHN^^^^^^^^^^EMP\r\
PID|1||0493575^^^GOODHEALTH^MR~999-99-9999^^^USSSA^SS||DOE^JOHN^QUINCY^JR^DR^^L||19480203|M||2106-3^White^HL70005|254 MYSTREET AVE^^MYTOWN^OH^44123^USA^H||(216)123-4567^PRN^PH^^1^216^1234567|(216)555-0100^WPN^PH|ENG^English^ISO6391|M^Married^HL70002|CHR^Christian^HL70006|400003403^^^GOODHEALTH^AN|999-99-9999\r\
NK1|1|DOE^JANE^^^^^L|SPO^Spouse^HL70063|254 MYSTREET AVE^^MYTOWN^OH^44123^USA|(216)123-4567\r\
PV1|1|I|2000^2012^01^GOODHEALTH^^^^^WARD 2000|3^Elective^HL70007|||004777^GOOD^SIDNEY^J^^^MD|||SUR||||7|A0|||||||||||||||||||||||||20240102075500-0500\r\
PV2|||^ABDOMINAL PAIN\r\
OBX|1|NM|8867-4^Heart rate^LN||72|/min^beats per minute^UCUM|60-100|N|||F\r\
OBX|2|NM|8480-6^Systolic blood pressure^LN||128|mm[Hg]^millimeter of mercury^UCUM|90-140|N|||F\r\
AL1|1|DA|3123^PENICILLIN^RXNORM|MO|PRODUCES HIVES~RASH\r\
DG1|1||R10.9^Unspecified abdominal pain^I10|||A\r\
IN1|1|BCBS01^BLUE CROSS PPO|100^^^BCBS^NIIP|BLUE CROSS BLUE SHIELD|PO BOX 105^^COLUMBUS^OH^43216^USA||(800)555-0199|GRP55501\r";

fn parse_and_read_five(input: &[u8]) -> usize {
    let message = Message::parse(input).unwrap();
    let fields = [
        message.get("MSH-10").unwrap(),
        message.get("PID-3(1).1").unwrap(),
        message.get("PID-5.1").unwrap(),
        message.get("PV1-3.1").unwrap(),
        message.get("OBX(2)-5").unwrap(),
    ];
    fields.iter().map(|f| f.as_ref().map_or(0, String::len)).sum()
}

fn criterion_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("hl7");
    group.throughput(Throughput::Bytes(ADT_A01.len() as u64));
    group.bench_function("parse_read5_adt_a01_1kb", |b| {
        b.iter(|| parse_and_read_five(black_box(ADT_A01)))
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| Message::parse(black_box(ADT_A01)).unwrap().segment_count())
    });
    let path: Path = "PID-5.1".parse().unwrap();
    let message = Message::parse(ADT_A01).unwrap();
    group.bench_function("get_raw_preparsed_path", |b| {
        b.iter(|| message.get_raw_at(black_box(&path)))
    });
    group.bench_function("owned_set_and_serialize", |b| {
        b.iter(|| {
            let mut owned = OwnedMessage::parse(black_box(ADT_A01)).unwrap();
            owned.set("PID-5.2", "JANE").unwrap();
            owned.to_bytes().len()
        })
    });
    group.bench_function("build_ack", |b| {
        b.iter(|| build_ack(black_box(&message), AckCode::AA, None).len())
    });
    group.finish();
}

/// Median time per call over `rounds` rounds of `per_round` calls, in nanoseconds.
fn median_ns(rounds: usize, per_round: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(per_round)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    assert!(
        (900..=1300).contains(&ADT_A01.len()),
        "sample is {} bytes, not ~1 KB",
        ADT_A01.len()
    );
    assert_eq!(
        parse_and_read_five(ADT_A01),
        "MSG00001234567".len() + "0493575".len() + 3 + 4 + 3
    );
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion);
    criterion.final_summary();
    let median = median_ns(101, 2_000, || {
        black_box(parse_and_read_five(black_box(ADT_A01)));
    });
    println!(
        "{{\"bench\":\"hl7/parse_read5_adt_a01_1kb\",\"input_bytes\":{},\"median_ns\":{median:.0},\"goal_ns\":{GOAL_NS:.0},\"meets_goal\":{}}}",
        ADT_A01.len(),
        median <= GOAL_NS
    );
}
