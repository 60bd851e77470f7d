//! `hl7-mapper`: edits HL7 v2 fields by settings `map.N`, applied in order of `N`,
//! then passes the message to the item's targets.
//!
//! ```text
//! map.1 = "set PID-8 = F"
//! map.2 = "copy PID-3(1).1 -> PID-2"
//! map.3 = "clear PID-19"
//! map.4 = "translate PV1-3.1 via wards"
//! ```
//!
//! Only the bytes a step touches change; every other segment, field, separator
//! and escape stays exactly as received. See README.md for every operation.
#![deny(missing_docs)]

pub mod step;

use hie_sdk::prelude::*;

use crate::step::Step;

/// The mapper: its steps, read from the settings at init.
#[derive(Debug, Default)]
pub struct Mapper {
    steps: Vec<(String, Step)>,
}

impl Plugin for Mapper {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.steps = settings.parse_numbered("map", step::parse)?;
        if self.steps.is_empty() {
            return Err("no mappings: add settings map.1, map.2, … (e.g. \"set PID-8 = F\")".into());
        }
        Ok(())
    }

    fn on_message(&mut self, mut msg: Message) -> Result<Outcome, Failure> {
        let mut hl7 = msg.parse_hl7()?;
        for (key, step) in &self.steps {
            step.apply(&mut hl7).map_err(|f| Failure {
                text: format!("{key}: {}", f.text),
                ..f
            })?;
        }
        msg.set_hl7(&hl7);
        Ok(Outcome::pass(msg))
    }
}

hie_sdk::export!(Mapper);

#[cfg(test)]
mod tests {
    use super::*;

    /// Escapes, empty trailing fields, repeats and a Z-segment: all must survive untouched.
    const ADT: &str = concat!(
        "MSH|^~\\&|PAS|H|HIE|H|20240101120000||ADT^A01|c1|P|2.5|||AL\r",
        "EVN|A01|20240101120000\r",
        "PID|1||123^^^MRN~456^^^NHS||DOE^JOHN^^^DR||19700101|M|||1 HIGH ST\\T\\2ND FL^^LEEDS||||||||AC123|\r",
        "PV1|1|I|W1^BED 2^^H||||\r",
        "ZXT|keep|me^as^is||\r",
    );

    fn mapper(maps: &[&str]) -> Harness<Mapper> {
        let h = Harness::<Mapper>::new()
            .lookup("wards", "W1", "WARD ONE")
            .lookup("wards", "W2", "A&B");
        maps.iter()
            .enumerate()
            .fold(h, |h, (i, m)| h.setting(format!("map.{}", i + 1), *m))
    }

    fn body(out: Outcome) -> String {
        let Outcome::Pass(msg) = out else {
            panic!("expected pass, got {out:?}")
        };
        String::from_utf8(msg.into_body()).unwrap()
    }

    fn map(maps: &[&str]) -> String {
        body(mapper(maps).hl7(ADT).unwrap())
    }

    #[test]
    fn set_changes_only_its_field() {
        assert_eq!(
            map(&["set PID-8 = F"]),
            ADT.replace("|19700101|M|", "|19700101|F|")
        );
        // a value with a separator is escaped, not split
        assert_eq!(
            map(&["set PV1-3.2 = BED 2|3"]),
            ADT.replace("BED 2", "BED 2\\F\\3")
        );
    }

    #[test]
    fn set_raw_writes_components() {
        assert_eq!(
            map(&["set-raw PID-5 = DOE^JANE"]),
            ADT.replace("DOE^JOHN^^^DR", "DOE^JANE")
        );
    }

    #[test]
    fn copy_takes_the_raw_value() {
        assert_eq!(
            map(&["copy PID-3(2) -> PID-2"]),
            ADT.replace("PID|1||", "PID|1|456^^^NHS|")
        );
        assert_eq!(
            map(&["copy PID-3(1).1 -> PID-2"]),
            ADT.replace("PID|1||", "PID|1|123|")
        );
        // an absent source clears the destination
        assert_eq!(
            map(&["copy PID-99 -> PID-8"]),
            ADT.replace("|19700101|M|", "|19700101||")
        );
    }

    #[test]
    fn clear_empties_only_its_value() {
        assert_eq!(map(&["clear PID-19"]), ADT.replace("||AC123|\r", "|||\r"));
        assert_eq!(map(&["clear ZXT-2.3"]), ADT.replace("me^as^is", "me^as^"));
        assert_eq!(map(&["clear PID-3(1)"]), ADT.replace("123^^^MRN~", "~"));
        assert_eq!(
            map(&["clear PID-50"]),
            ADT,
            "a path that does not exist is left alone"
        );
    }

    #[test]
    fn translate_through_a_lookup_table() {
        assert_eq!(
            map(&["translate PV1-3.1 via wards"]),
            ADT.replace("|W1^", "|WARD ONE^")
        );
        assert_eq!(
            map(&["translate PV1-3.1 via wards -> PV1-6"]),
            ADT.replace("H||||\r", "H|||WARD ONE|\r")
        );
        assert_eq!(map(&["translate PV1-2 via wards"]), ADT, "no entry: kept");
        assert_eq!(
            map(&["translate PV1-2 via wards else clear"]),
            ADT.replace("PV1|1|I|", "PV1|1||")
        );
        assert_eq!(
            map(&["translate PV1-2 via wards else \"?\""]),
            ADT.replace("PV1|1|I|", "PV1|1|?|")
        );
        let err = mapper(&["translate PV1-2 via wards else error"])
            .hl7(ADT)
            .unwrap_err();
        assert_eq!(err.code, "no-translation");
        assert_eq!(
            err.text,
            "map.1: no entry in lookup table wards for the value at PV1-2"
        );
    }

    #[test]
    fn translated_values_are_escaped() {
        let out = body(
            mapper(&["translate PV1-3.1 via wards"])
                .hl7(&ADT.replace("|W1^", "|W2^"))
                .unwrap(),
        );
        assert_eq!(out, ADT.replace("|W1^", "|A\\T\\B^"));
    }

    #[test]
    fn steps_apply_in_order() {
        let out = map(&["set PID-2 = X", "copy PID-2 -> PID-4", "clear PID-2"]);
        assert_eq!(
            out,
            ADT.replace("PID|1||123^^^MRN~456^^^NHS||", "PID|1||123^^^MRN~456^^^NHS|X|")
        );
    }

    #[test]
    fn envelope_fields_are_kept() {
        let mut h = mapper(&["set PID-8 = F"]);
        let out = h
            .message(Message::hl7(ADT).with_property("source-ip", "10.0.0.1"))
            .unwrap();
        let Outcome::Pass(msg) = out else {
            panic!("expected pass")
        };
        assert_eq!(msg.property("source-ip"), Some("10.0.0.1"));
        assert_eq!(msg.content_type(), hie_sdk::CONTENT_TYPE_HL7V2);
    }

    #[test]
    fn write_errors_fail_the_message_naming_the_step() {
        let err = mapper(&["set PID-8 = F", "set-raw PID-5.1 = A^B"])
            .hl7(ADT)
            .unwrap_err();
        assert_eq!(err.code, "bad-path");
        assert!(err.text.starts_with("map.2: "), "{}", err.text);
        assert_eq!(
            mapper(&["set PID-8 = F"]).hl7("not hl7").unwrap_err().code,
            "bad-message"
        );
    }

    #[test]
    fn init_errors_name_the_setting_and_position() {
        assert_eq!(
            mapper(&["set PID-8 = F", "copy PID-3 PID-2"]).init().unwrap_err(),
            "map.2 does not parse at column 12: expected `->`, found `PID-2`: copy PID-3 PID-2"
        );
        assert_eq!(
            mapper(&[]).init().unwrap_err(),
            "no mappings: add settings map.1, map.2, … (e.g. \"set PID-8 = F\")"
        );
    }
}
