//! `hl7-router`: routes HL7 v2 messages to target items by rules on field paths.
//!
//! Settings (see README.md):
//! - `rule.N = "CONDITION -> TARGET[, TARGET…]"`, tried in order of `N`;
//! - `match = "first"` (default: the first matching rule wins) or `"all"`
//!   (every matching rule's targets, each target once);
//! - `default = "TARGET[, TARGET…]"`: where a message no rule matches goes;
//! - `on-no-match = "error"` (default: a permanent `no-route` failure),
//!   `"drop"` or `"pass"` (to the item's configured targets), when there is no `default`.
//!
//! IRIS mode: `iris-rules = "<RuleSet JSON>"` (what `hie import iris` writes from
//! an IRIS routing rule class) replaces the `rule.N` settings and runs the rules
//! with IRIS semantics (see the `hie-iris-rules` crate); `default` and
//! `on-no-match` apply to messages no IRIS rule matched.
#![deny(missing_docs)]

pub mod rule;

use hie_iris_rules::{Document, RuleSet};
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
    /// IRIS mode: the compiled IRIS rule definition (setting `iris-rules`).
    iris: Option<RuleSet>,
    /// IRIS mode: the schema category of messages from each source
    /// (`schema-category.SOURCE`), and of the others (`schema-category`), each
    /// with the HL7 version it resolves to, found once at init.
    categories: Vec<(String, Category)>,
    default_category: Option<Category>,
}

/// A schema category and the HL7 version its structures come from (`None`: a
/// category the rules do not define; each message's MSH-12 decides then).
#[derive(Debug, Clone)]
struct Category {
    name: String,
    version: Option<&'static str>,
}

impl Plugin for Router {
    fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
        self.rules = settings.parse_numbered("rule", rule::parse)?;
        self.iris = match settings.get("iris-rules") {
            None => None,
            Some(json) => {
                if !self.rules.is_empty() {
                    return Err(
                        "settings `iris-rules` and `rule.N` exclude each other: IRIS rules decide alone"
                            .into(),
                    );
                }
                if settings.get("match").is_some() {
                    return Err(
                        "setting `match` does not apply to `iris-rules`: IRIS rules run every matching rule until a <return>"
                            .into(),
                    );
                }
                Some(RuleSet::from_json(json).map_err(|e| format!("setting `iris-rules`: {e}"))?)
            }
        };
        let default_category = settings.get("schema-category");
        let categories: Vec<(&str, &str)> = settings
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("schema-category.")?, v)))
            .collect();
        // an init of an instance that ran before starts from no categories
        self.default_category = None;
        self.categories = Vec::new();
        match &self.iris {
            None if default_category.is_some() || !categories.is_empty() => {
                return Err("settings `schema-category…` apply to `iris-rules` only".into());
            }
            None => {}
            Some(iris) => {
                let resolve = |setting: &str, name: &str| {
                    let version = iris.category_version(name);
                    if version.is_none() {
                        hie_sdk::host::warn(&format!(
                            "setting `{setting}` = {name:?} is neither an HL7 version nor a custom category \
                             the imported rules define: message structures come from each message's MSH-12 \
                             version instead (import the category's .HL7 schema to use it)"
                        ));
                    }
                    Category {
                        name: name.to_owned(),
                        version,
                    }
                };
                self.default_category = default_category.map(|c| resolve("schema-category", c));
                self.categories = categories
                    .into_iter()
                    .map(|(source, c)| {
                        let setting = format!("schema-category.{source}");
                        (source.to_owned(), resolve(&setting, c))
                    })
                    .collect();
            }
        }
        if self.rules.is_empty() && self.iris.is_none() {
            return Err(
                "no rules: add settings rule.1, rule.2, … (CONDITION -> TARGET), or iris-rules".into(),
            );
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
        if let Some(iris) = &self.iris {
            let mut doc = Document::from_owned(hl7.as_owned());
            let category = self
                .categories
                .iter()
                .find(|(source, _)| source == msg.source())
                .map(|(_, c)| c)
                .or(self.default_category.as_ref());
            if let Some(c) = category {
                doc = doc.with_category(&c.name, c.version);
            }
            let decided = iris.evaluate(&doc, msg.source());
            for e in &decided.errors {
                hie_sdk::host::warn(&format!("iris rules {}: {e}", iris.name));
            }
            for t in &decided.traces {
                // trace values may hold patient data: debug level only
                hie_sdk::host::debug(&format!("iris rules trace: {t}"));
            }
            if !decided.sends.is_empty() {
                for s in &decided.sends {
                    hie_sdk::host::debug(&format!("rule {:?} sends to {}", s.rule, s.target));
                }
                return Ok(Outcome::forward_all(decided.targets(), msg));
            }
            if let Some(rule) = decided.deleted_by {
                return Ok(Outcome::drop(format!("deleted by IRIS rule {rule:?}")));
            }
            if let Some(rule) = decided.fired.first() {
                return Ok(Outcome::drop(format!(
                    "IRIS rule {rule:?} matched and sends nowhere"
                )));
            }
            if decided.rule_set.is_none() {
                hie_sdk::host::warn(&format!(
                    "iris rules {}: no <ruleSet> is in effect now ({} UTC)",
                    iris.name,
                    hie_iris_rules::now_utc()
                ));
            }
            return self.unrouted(msg, &hl7);
        }
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
        self.unrouted(msg, &hl7)
    }
}

impl Router {
    /// What happens to a message no rule matched (`default` / `on-no-match`).
    fn unrouted(&self, msg: Message, hl7: &Hl7) -> Result<Outcome, Failure> {
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
    use hie_sdk::LogLevel;

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

    const IRIS_RULES: &str = r#"<ruleDefinition alias="Demo.Router" context="EnsLib.HL7.MsgRouter.RoutingEngine">
      <ruleSet name="" effectiveBegin="" effectiveEnd="">
        <rule name="from the PAS only"><constraint name="source" value="elsewhere"/>
          <when condition="1"><send transform="" target="never"/></when></rule>
        <rule name="admissions"><constraint name="docName" value="ADT_A01,ADT_A04"/>
          <when condition="HL7.{PID:PatientName.GivenName}=&quot;JOHN&quot;"><send transform="" target="pas,ris"/><return/></when>
          <otherwise><send transform="" target="pas"/></otherwise></rule>
        <rule name="updates are ignored"><constraint name="docName" value="ADT_A08"/>
          <when condition="1"><return/></when></rule>
        <rule name="results"><constraint name="docType" value="2.5:ORU_R01"/>
          <when condition="HL7.{PIDgrpgrp(1).ORCgrp(1).OBXgrp().OBX:3.1} IntersectsList &quot;&lt;K&gt;&lt;NA&gt;&quot;">
            <send transform="" target="lab-alerts"/></when></rule>
        <rule name="results to archive"><constraint name="source" value="test"/><constraint name="docName" value="ORU_R01"/>
          <when condition="1"><send transform="" target="archive"/></when></rule>
        <rule name="cancel"><constraint name="docName" value="ADT_A11"/><when condition="1"><delete/></when></rule>
      </ruleSet>
    </ruleDefinition>"#;

    fn iris_json(xml: &str) -> String {
        let compiled = hie_iris_rules::compile(xml, &hie_iris_rules::CompileContext::default()).unwrap();
        assert!(compiled.disabled.is_empty(), "{:?}", compiled.disabled);
        compiled.rule_set.to_json()
    }

    #[test]
    fn iris_rules_route_with_iris_semantics() {
        let mut h = router(&[("iris-rules", &iris_json(IRIS_RULES))]);
        // given name JOHN: the first when fires, then return
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["pas", "ris"]);
        let jane = ADT_A01.replace("DOE^JOHN", "DOE^JANE");
        assert_eq!(h.hl7(&jane).unwrap().targets(), ["pas"]);
        // two matching rules both send; the source constraint holds for the sender `test`
        let oru = ORU_R01.replace("\rOBX|", "\rORC|RE|1\rOBR|1|1||U^Electrolytes\rOBX|");
        assert_eq!(h.hl7(&oru).unwrap().targets(), ["lab-alerts", "archive"]);
        // without ORC/OBR the OBX is in no ORCgrp: the group path reads empty
        assert_eq!(h.hl7(ORU_R01).unwrap().targets(), ["archive"]);
        let sodium = oru.replace("K^Potassium", "CL^Chloride");
        assert_eq!(h.hl7(&sodium).unwrap().targets(), ["archive"]);
        // forwarded bytes are the message received
        let Outcome::Forward(routed) = h.hl7(ADT_A01).unwrap() else {
            panic!("expected forward")
        };
        assert!(routed.iter().all(|r| r.message.body() == ADT_A01.as_bytes()));
    }

    #[test]
    fn iris_rules_that_decide_nothing_or_delete_drop_the_message() {
        let mut h = router(&[("iris-rules", &iris_json(IRIS_RULES))]);
        assert_eq!(
            h.hl7(ADT_A08).unwrap(),
            Outcome::drop("IRIS rule \"updates are ignored\" matched and sends nowhere")
        );
        let a11 = ADT_A08.replace("ADT^A08", "ADT^A11");
        assert_eq!(
            h.hl7(&a11).unwrap(),
            Outcome::drop("deleted by IRIS rule \"cancel\"")
        );
        assert_eq!(h.counter("no-match"), 0);
    }

    #[test]
    fn a_message_no_iris_rule_matches_is_unrouted_as_in_rule_mode() {
        let json = iris_json(IRIS_RULES);
        let siu = "MSH|^~\\&|X|H|HIE|H|20240101||SIU^S12|c9|P|2.5\rSCH|1\r";
        let mut h = router(&[("iris-rules", &json)]);
        let err = h.hl7(siu).unwrap_err();
        assert_eq!(err.code, "no-route");
        assert!(!err.retryable);
        assert_eq!(err.text, "no routing rule matched message type SIU^S12");
        assert_eq!(h.counter("no-match"), 1);
        let mut h = router(&[("iris-rules", &json), ("default", "unrouted")]);
        assert_eq!(h.hl7(siu).unwrap().targets(), ["unrouted"]);
    }

    #[test]
    fn the_schema_category_of_the_sending_service_applies() {
        let xml = r#"<ruleDefinition><ruleSet>
          <rule><constraint name="docCategory" value="2.5.1"/><when condition="1"><send transform="" target="v251"/></when></rule>
          <rule><constraint name="docType" value="2.5:ADT_A01"/><when condition="1"><send transform="" target="v25"/></when></rule>
        </ruleSet></ruleDefinition>"#;
        let json = iris_json(xml);
        // MSH-12 says 2.5
        let mut h = router(&[("iris-rules", &json)]);
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["v25"]);
        let mut h = router(&[("iris-rules", &json), ("schema-category", "2.5.1")]);
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["v251"]);
        // the harness's sender is `test`
        let mut h = router(&[
            ("iris-rules", &json),
            ("schema-category", "2.5.1"),
            ("schema-category.test", "2.5"),
        ]);
        assert_eq!(h.hl7(ADT_A01).unwrap().targets(), ["v25"]);
        let warnings = |h: &Harness<Router>| -> Vec<String> {
            h.logs()
                .into_iter()
                .filter(|l| l.level == LogLevel::Warn)
                .map(|l| l.text)
                .collect()
        };
        assert!(warnings(&h).is_empty(), "{:?}", h.logs());
        // a category neither a version nor defined by the rules: said once at init,
        // and each message's MSH-12 decides
        let mut h = router(&[("iris-rules", &json), ("schema-category.test", "Custom99")]);
        h.init().unwrap();
        let warned = warnings(&h);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].starts_with("setting `schema-category.test` = \"Custom99\" is neither an HL7 version"),
            "{warned:?}"
        );
        // its docType is Custom99:ADT_A01 (the structure from MSH-12), which no rule names
        for _ in 0..2 {
            assert_eq!(h.hl7(ADT_A01).unwrap_err().code, "no-route");
        }
        assert_eq!(warnings(&h), warned);
        let err = router(&[("rule.1", "MSH-9 exists -> a"), ("schema-category", "2.5")])
            .init()
            .unwrap_err();
        assert_eq!(err, "settings `schema-category…` apply to `iris-rules` only");
    }

    #[test]
    fn iris_settings_errors() {
        let json = iris_json(IRIS_RULES);
        let err = router(&[("iris-rules", &json), ("rule.1", "MSH-9 exists -> a")])
            .init()
            .unwrap_err();
        assert_eq!(
            err,
            "settings `iris-rules` and `rule.N` exclude each other: IRIS rules decide alone"
        );
        let err = router(&[("iris-rules", &json), ("match", "all")])
            .init()
            .unwrap_err();
        assert!(
            err.starts_with("setting `match` does not apply to `iris-rules`"),
            "{err}"
        );
        let err = router(&[("iris-rules", "{not json")]).init().unwrap_err();
        assert!(
            err.starts_with("setting `iris-rules`: IRIS rules JSON does not parse"),
            "{err}"
        );
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
                "no rules: add settings rule.1, rule.2, … (CONDITION -> TARGET), or iris-rules",
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
