//! The priority an inbound adapter (`mllp-in`, `file-in`) gives a message: the
//! first `priority_rules` entry whose field matches, else the adapter's `priority`.

use hie_config::InboundPriority;

/// The priority of an inbound HL7 message. `parsed` is the message if the caller
/// has already parsed it; otherwise it is parsed here, and only if there are rules.
pub(crate) fn of(config: &InboundPriority, body: &[u8], parsed: Option<&hie_hl7::Message<'_>>) -> u8 {
    if config.rules.is_empty() {
        return config.default;
    }
    let owned;
    let msg = match parsed {
        Some(m) => m,
        None => match hie_hl7::Message::parse(body) {
            Ok(m) => {
                owned = m;
                &owned
            }
            Err(_) => return config.default,
        },
    };
    let component = msg.delimiters().component;
    for rule in &config.rules {
        let Ok(Some(raw)) = msg.get_raw(&rule.field) else {
            continue;
        };
        if matches(raw, rule.equals.as_bytes(), component) {
            return rule.priority;
        }
    }
    config.default
}

/// `value` equals `want`, or starts with `want` followed by a component separator
/// (so `ORM^O01` matches `ORM^O01^ORM_O01`).
fn matches(value: &[u8], want: &[u8], component: u8) -> bool {
    value == want || (value.len() > want.len() && value.starts_with(want) && value[want.len()] == component)
}

#[cfg(test)]
mod tests {
    use hie_config::PriorityRule;

    use super::*;

    fn config() -> InboundPriority {
        InboundPriority {
            default: 2,
            rules: vec![
                PriorityRule {
                    field: "MSH-9".into(),
                    equals: "ORM^O01".into(),
                    priority: 7,
                },
                PriorityRule {
                    field: "PV1-2".into(),
                    equals: "E".into(),
                    priority: 9,
                },
            ],
        }
    }

    fn msg(kind: &str, class: &str) -> Vec<u8> {
        format!("MSH|^~\\&|A|B|C|D|20260101||{kind}|1|P|2.5\rPID|1||1\rPV1|1|{class}\r").into_bytes()
    }

    #[test]
    fn first_matching_rule_wins_else_the_default() {
        let c = config();
        assert_eq!(of(&c, &msg("ORM^O01", "I"), None), 7);
        assert_eq!(of(&c, &msg("ORM^O01^ORM_O01", "E"), None), 7);
        assert_eq!(of(&c, &msg("ADT^A01", "E"), None), 9);
        assert_eq!(of(&c, &msg("ADT^A01", "I"), None), 2);
        // a longer value that only starts with the same letters is no match
        assert_eq!(of(&c, &msg("ORM^O012", "I"), None), 2);
        assert_eq!(of(&c, b"not hl7", None), 2);
    }

    #[test]
    fn no_rules_means_the_fixed_priority_without_parsing() {
        let c = InboundPriority {
            default: 6,
            rules: Vec::new(),
        };
        assert_eq!(of(&c, b"not even hl7", None), 6);
    }
}
