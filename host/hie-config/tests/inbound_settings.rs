//! `max_in_flight`, inbound `priority` / `priority_rules`, `request_timeout` and
//! restart policy `always`: parsed values, defaults, and errors with line and field.

use std::path::Path;
use std::time::Duration;

use hie_config::{AdapterConfig, PriorityRule, Production, RestartPolicy, check_str};

fn check(text: &str) -> Result<Production, Vec<String>> {
    check_str(Path::new("p.toml"), text).map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

const BASE: &str = r#"
[production]
name = "p"

[[items]]
name = "in"
kind = "service"
adapter = { type = "mllp-in", port = 2575 ADAPTER }
targets = ["out"]

[[items]]
name = "files"
kind = "service"
adapter = { type = "file-in", dir = "in" FILE }
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = { type = "file-out", dir = "out" }
ITEM
"#;

fn production(adapter: &str, file: &str, item: &str) -> String {
    BASE.replace("ADAPTER", adapter)
        .replace("FILE", file)
        .replace("ITEM", item)
}

#[test]
fn defaults() {
    let p = check(&production("", "", "")).unwrap();
    let Some(AdapterConfig::MllpIn(m)) = &p.item("in").unwrap().adapter else {
        panic!("mllp-in");
    };
    assert_eq!(m.max_in_flight, 32);
    assert_eq!(m.priority.default, 4);
    assert!(m.priority.rules.is_empty());
    assert_eq!(p.item("out").unwrap().request_timeout, Duration::from_secs(30));
}

#[test]
fn priority_rules_max_in_flight_request_timeout_and_always() {
    let p = check(&production(
        r#", max_in_flight = 8, priority = 2, priority_rules = [{ field = "MSH-9", equals = "ORM^O01", priority = 7 }]"#,
        r#", priority = 6"#,
        "request_timeout = \"250ms\"\nrestart = { policy = \"always\" }",
    ))
    .unwrap();
    let Some(AdapterConfig::MllpIn(m)) = &p.item("in").unwrap().adapter else {
        panic!("mllp-in");
    };
    assert_eq!(m.max_in_flight, 8);
    assert_eq!(m.priority.default, 2);
    assert_eq!(
        m.priority.rules,
        [PriorityRule {
            field: "MSH-9".into(),
            equals: "ORM^O01".into(),
            priority: 7
        }]
    );
    let Some(AdapterConfig::FileIn(f)) = &p.item("files").unwrap().adapter else {
        panic!("file-in");
    };
    assert_eq!(f.priority.default, 6);
    let out = p.item("out").unwrap();
    assert_eq!(out.request_timeout, Duration::from_millis(250));
    assert_eq!(out.restart.policy, RestartPolicy::Always);
}

#[test]
fn bad_values_name_line_and_field() {
    let errors = check(&production(
        r#", max_in_flight = 0, priority = 12, priority_rules = [{ field = "nine", equals = "x", priority = 1 }, { field = "MSH-9", equals = "x", priority = -1 }]"#,
        r#", max_in_flight = 4"#,
        "request_timeout = \"soon\"",
    ))
    .unwrap_err();
    let has = |needle: &str| {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "no error with {needle:?} in {errors:#?}"
        )
    };
    has("p.toml:8:");
    has("items[in].adapter.max_in_flight");
    has("items[in].adapter.priority: must be a priority from 0 (lowest) to 9 (highest)");
    has("items[in].adapter.priority_rules[0].field: \"nine\" is not an HL7 field path");
    has("items[in].adapter.priority_rules[1].priority: must be a priority");
    has("items[files].adapter.max_in_flight: field does not apply to adapter \"file-in\"");
    has("items[out].request_timeout");
}

#[test]
fn unknown_rule_fields_are_errors() {
    let errors = check(&production(
        r#", priority_rules = [{ field = "MSH-9", value = "x", priority = 1 }]"#,
        "",
        "",
    ))
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("p.toml:8") && e.contains("value")),
        "{errors:#?}"
    );
}

/// `max_in_flight` of `mllp-out`: 1 by default, any value from 1 to 256, else an
/// error with line and field.
#[test]
fn outbound_max_in_flight() {
    let out = |extra: &str| {
        format!(
            "[production]\nname = \"p\"\n\n[[items]]\nname = \"out\"\nkind = \"operation\"\nadapter = {{ type = \"mllp-out\", port = 2576{extra} }}\n"
        )
    };
    let window = |p: &Production| match &p.item("out").unwrap().adapter {
        Some(AdapterConfig::MllpOut(m)) => m.max_in_flight,
        other => panic!("mllp-out, not {other:?}"),
    };
    assert_eq!(window(&check(&out("")).unwrap()), 1);
    assert_eq!(window(&check(&out(", max_in_flight = 16")).unwrap()), 16);
    assert_eq!(window(&check(&out(", max_in_flight = 256")).unwrap()), 256);
    for (bad, says) in [
        ("0", "must be a positive integer"),
        ("257", "at most 256 frames may wait for their ACKs"),
    ] {
        let errors = check(&out(&format!(", max_in_flight = {bad}"))).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("p.toml:7:")
                && e.contains("items[out].adapter.max_in_flight")
                && e.contains(says)),
            "{errors:#?}"
        );
    }
}
