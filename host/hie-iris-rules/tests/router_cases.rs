//! The `hl7-router` plugin's IRIS cases (`plugins/standard/hl7-router/iris-cases`)
//! run a compiled copy of `rules.xml` from their `settings.toml`: this test keeps
//! the two in step. `HIE_BLESS=1 cargo test -p hie-iris-rules --test router_cases`
//! rewrites `settings.toml` after a change to the rules or to the JSON format.

use std::path::PathBuf;

use hie_iris_rules::{CompileContext, compile};

fn cases_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../../plugins/standard/hl7-router/iris-cases")
}

#[test]
fn iris_cases_settings_are_the_compiled_rules() {
    let dir = cases_dir();
    let xml = std::fs::read_to_string(dir.join("rules.xml")).unwrap();
    let ctx = CompileContext {
        file: PathBuf::from("rules.xml"),
        ..CompileContext::default()
    };
    let compiled = compile(&xml, &ctx).unwrap();
    // the sample keeps one rule disabled in IRIS; nothing else may be lost
    assert_eq!(compiled.disabled.len(), 1, "{:?}", compiled.disabled);
    assert_eq!(compiled.disabled[0].rule, "Old feed");
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    let json = compiled.rule_set.to_json();
    assert!(!json.contains("'''"));
    let want = format!(
        "# Generated from rules.xml by hie-iris-rules (tests/router_cases.rs); do not edit:\n\
         # HIE_BLESS=1 cargo test -p hie-iris-rules --test router_cases\n\
         [settings]\n\
         iris-rules = '''{json}'''\n"
    );
    let path = dir.join("settings.toml");
    if std::env::var_os("HIE_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not the compiled rules.xml: run HIE_BLESS=1 cargo test -p hie-iris-rules --test router_cases",
        path.display()
    );
}
