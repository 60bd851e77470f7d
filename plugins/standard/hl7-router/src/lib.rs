//! `hl7-router`: routes HL7 v2 messages to target items by rules on field paths.
//!
//! Settings (see README.md):
//! - `rule.N = "CONDITION -> TARGET[, TARGET…]"`, tried in order of `N`;
//! - `match = "first"` (default: the first matching rule wins) or `"all"`
//!   (every matching rule's targets, each target once);
//! - `default = "TARGET[, TARGET…]"`: where a message no rule matches goes;
//! - `on-no-match = "error"` (default: a permanent `no-route` failure),
//!   `"drop"` or `"pass"` (to the item's configured targets), when there is no `default`.
#![deny(missing_docs)]

pub mod rule;

use hie_sdk::prelude::*;

use crate::rule::Rule;

/// Whether the first matching rule decides, or all matching rules do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// The first matching rule wins.
    #[default]
    First,
    /// Every matching rule contributes its targets.
    All,
}

/// What happens to a message no rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NoMatch {
    /// Fail it with code `no-route` (permanent: dead-letter, NAK `AE`).
    #[default]
    Error,
    /// Drop it on purpose.
    Drop,
    /// Send it to the item's configured targets.
    Pass,
    /// Send it to these targets.
    Default(Vec<String>),
}

/// The router: its rules, read from the settings at init.
#[derive(Debug, Default)]
pub struct Router {
    rules: Vec<(String, Rule)>,
    mode: MatchMode,
    no_match: NoMatch,
}

impl Plugin for Router {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.rules = settings.parse_numbered("rule", rule::parse)?;
        if self.rules.is_empty() {
            return Err("no rules: add settings rule.1, rule.2, … (CONDITION -> TARGET)".into());
        }
        self.mode = match settings.get("match").unwrap_or("first") {
            "first" => MatchMode::First,
            "all" => MatchMode::All,
            other => {
                return Err(format!(
                    "setting `match` = {other:?}: expected \"first\" or \"all\""
                ));
            }
        };
        self.no_match = match (settings.get("default"), settings.get("on-no-match")) {
            (Some(targets), None | Some("default")) => NoMatch::Default(target_list(targets)?),
            (Some(_), Some(other)) => {
                return Err(format!(
                    "settings `default` and `on-no-match` = {other:?} contradict each other"
                ));
            }
            (None, None | Some("error")) => NoMatch::Error,
            (None, Some("drop")) => NoMatch::Drop,
            (None, Some("pass")) => NoMatch::Pass,
            (None, Some(other)) => {
                return Err(format!(
                    "setting `on-no-match` = {other:?}: expected \"error\", \"drop\" or \"pass\""
                ));
            }
        };
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
        let hl7 = msg.parse_hl7()?;
        let mut targets: Vec<&str> = Vec::new();
        for (key, rule) in &self.rules {
            if rule.condition.matches(&hl7) {
                hie_sdk::host::debug(&format!("{key} matched"));
                for t in &rule.targets {
                    if !targets.contains(&t.as_str()) {
                        targets.push(t);
                    }
                }
                if self.mode == MatchMode::First {
                    break;
                }
            }
        }
        if !targets.is_empty() {
            return Ok(Outcome::forward_all(targets, msg));
        }
        hie_sdk::host::counter_add("no-match", 1);
        match &self.no_match {
            NoMatch::Default(targets) => Ok(Outcome::forward_all(targets, msg)),
            NoMatch::Pass => Ok(Outcome::pass(msg)),
            NoMatch::Drop => Ok(Outcome::drop("no routing rule matched")),
            NoMatch::Error => Err(Failure::permanent(
                "no-route",
                format!(
                    "no routing rule matched message type {}",
                    hl7.message_type().unwrap_or_else(|| "(none)".into())
                ),
            )),
        }
    }
}

fn target_list(text: &str) -> Result<Vec<String>, String> {
    let targets: Vec<String> = text.split(',').map(|t| t.trim().to_owned()).collect();
    if targets.iter().any(String::is_empty) {
        return Err(format!(
            "setting `default` = {text:?}: expected target names separated by commas"
        ));
    }
    Ok(targets)
}

hie_sdk::export!(Router);

#[cfg(test)]
mod tests {
    use super::*;

    const ADT_A01: &str =
        "MSH|^~\\&|PAS|H|HIE|H|20240101120000||ADT^A01^ADT_A01|c1|P|2.5\rPID|1||123^^^MRN||DOE^JOHN\r";
    const ADT_A08: &str =
        "MSH|^~\\&|PAS|H|HIE|H|20240101120000||ADT^A08|c2|P|2.5\rPID|1||123^^^MRN||DOE^JOHN\r";
    const ORU_R01: &str = "MSH|^~\\&|LAB|H|HIE|H|20240101120000||ORU^R01|c3|P|2.5\rPID|1||123^^^MRN\rOBX|1|NM|K^Potassium||4.1\r";

    fn router(settings: &[(&str, &str)]) -> Harness<Router> {
        settings
            .iter()
            .fold(Harness::<Router>::new(), |h, (k, v)| h.setting(*k, *v))
    }

    fn table() -> Harness<Router> {
        router(&[
            (
                "rule.1",
                r#"MSH-9.1 = "ADT" and MSH-9.2 in ["A01","A04"] -> pas, ris"#,
            ),
            ("rule.2", "MSH-9.1 = ADT -> pas"),
            ("rule.10", "MSH-9.1 = ORU and OBX-3.1 = K -> lab-alerts"),
            ("rule.3", "MSH-4 starts-with H -> audit"),
        ])
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut h = table();
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["pas", "ris"]);
        assert_eq!(h.hl7(ADT_A08).unwrap().targets(), ["pas"]);
        // rule.3 comes before rule.10 (numeric order), and it matches the ORU too
        assert_eq!(h.hl7(ORU_R01).unwrap().targets(), ["audit"]);
    }

    #[test]
    fn all_mode_collects_every_match_once() {
        let mut h = table().setting("match", "all");
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["pas", "ris", "audit"]);
        assert_eq!(h.hl7(ORU_R01).unwrap().targets(), ["audit", "lab-alerts"]);
    }

    #[test]
    fn forwarded_messages_are_unchanged() {
        let mut h = table();
        let Outcome::Forward(routed) = h.hl7(ADT_A01).unwrap() else {
            panic!("expected forward")
        };
        assert!(routed.iter().all(|r| r.message.body() == ADT_A01.as_bytes()));
    }

    #[test]
    fn no_match_is_a_no_route_failure_by_default() {
        let mut h = router(&[("rule.1", "MSH-9.1 = ADT -> pas")]);
        let err = h.hl7(ORU_R01).unwrap_err();
        assert_eq!(err.code, "no-route");
        assert!(!err.retryable);
        assert_eq!(err.text, "no routing rule matched message type ORU^R01");
        assert_eq!(h.counter("no-match"), 1);
    }

    #[test]
    fn no_match_alternatives() {
        let rule = ("rule.1", "MSH-9.1 = ADT -> pas");
        let mut h = router(&[rule, ("default", "unrouted, audit")]);
        assert_eq!(h.hl7(ORU_R01).unwrap().targets(), ["unrouted", "audit"]);
        let mut h = router(&[rule, ("on-no-match", "drop")]);
        assert_eq!(h.hl7(ORU_R01).unwrap(), Outcome::drop("no routing rule matched"));
        let mut h = router(&[rule, ("on-no-match", "pass")]);
        assert_eq!(h.hl7(ORU_R01).unwrap().kind(), "pass");
    }

    #[test]
    fn not_hl7_is_a_bad_message() {
        let mut h = table();
        assert_eq!(h.hl7("{\"json\": true}").unwrap_err().code, "bad-message");
    }

    #[test]
    fn init_errors_name_the_setting_and_position() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[
                    ("rule.1", "MSH-9.1 = ADT -> a"),
                    ("rule.2", "MSH-9.1 in [A01 -> b"),
                ],
                "rule.2 does not parse at column 17: expected `,` or `]`, found `->`: MSH-9.1 in [A01 -> b",
            ),
            (
                &[("rule.x", "MSH-9.1 exists -> a")],
                "setting `rule.x`: expected `rule.N` with N a number",
            ),
            (
                &[],
                "no rules: add settings rule.1, rule.2, … (CONDITION -> TARGET)",
            ),
            (
                &[("rule.1", "MSH-9 exists -> a"), ("match", "any")],
                "setting `match` = \"any\": expected \"first\" or \"all\"",
            ),
            (
                &[("rule.1", "MSH-9 exists -> a"), ("on-no-match", "nak")],
                "setting `on-no-match` = \"nak\": expected \"error\", \"drop\" or \"pass\"",
            ),
            (
                &[
                    ("rule.1", "MSH-9 exists -> a"),
                    ("default", "x"),
                    ("on-no-match", "drop"),
                ],
                "settings `default` and `on-no-match` = \"drop\" contradict each other",
            ),
        ];
        for (settings, expected) in cases {
            assert_eq!(router(settings).init().unwrap_err(), expected);
        }
    }
}
