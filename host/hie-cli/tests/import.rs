//! `hie import iris` as a user runs it: exit codes, what it prints, what it writes,
//! and the skeleton `hie plugin new` makes for a custom class.

mod common;

use std::path::Path;

use common::{assert_one_line_error, hie, path_str, text};

fn samples(dir: &str) -> std::path::PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../hie-import/tests/inputs")
        .join(dir)
}

#[test]
fn a_udl_production_imports_with_warnings_and_exit_0() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("imported");
    let input = samples("udl");
    let run = hie(&["import", "iris", path_str(&input), "--out", path_str(&dest)]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    assert!(
        stdout.contains("imported IRIS production Demo.HL7.Production: 6 items (1 disabled)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: not everything carries over"),
        "{stdout}"
    );
    for f in [
        "production.toml",
        "IMPORT-REPORT.md",
        "rules/Demo.HL7.RoutingRule.json",
    ] {
        assert!(dest.join(f).is_file(), "{f} missing");
    }
    // the skeleton is a real `hie plugin new` crate of the right kind
    let cargo = std::fs::read_to_string(dest.join("plugins-src/mypkg-myprocess/Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"mypkg-myprocess\""), "{cargo}");
    assert!(cargo.contains("kind = \"process\""), "{cargo}");
    assert!(dest.join("plugins-src/mypkg-myprocess/src/lib.rs").is_file());
    // the production checks without I/O
    hie_config::load(&dest).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn input_that_is_not_iris_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "MSH is not a production\n").unwrap();
    let run = hie(&[
        "import",
        "iris",
        path_str(&notes),
        "--out",
        path_str(&dir.path().join("o")),
    ]);
    assert_one_line_error(&run, &["notes.txt", "not an IRIS production, rule or export"]);
    assert!(!dir.path().join("o/production.toml").exists());
    let both = hie(&[
        "import",
        "iris",
        path_str(&samples("udl")),
        path_str(&samples("export")),
        "--out",
        path_str(&dir.path().join("o")),
    ]);
    assert_one_line_error(
        &both,
        &["--production", "Demo.HL7.Production", "Demo.Export.Production"],
    );
}
