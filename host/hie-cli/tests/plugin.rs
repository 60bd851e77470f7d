//! `hie plugin new/build/test` end to end: the real `hie` binary, real cargo
//! builds for wasm32-wasip2, components run in the real host (hie-wasm).

use std::path::{Path, PathBuf};
use std::process::Command;

use hie_tests::{build_plugin, plugins_target_dir, repo_root};

mod common;
use common::{assert_one_line_error, hie, path_str, text};

#[test]
fn standard_plugins_pass_their_sample_cases_in_the_real_host() {
    for (package, cases) in [("passthrough", 1), ("hl7-router", 4), ("hl7-mapper", 2)] {
        let wasm = build_plugin(package);
        let dir = repo_root().join("plugins/standard").join(package).join("cases");
        let out = hie(&["plugin", "test", path_str(&wasm), "--cases", path_str(&dir)]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{package}: {stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("test result: ok. {cases} passed; 0 failed")),
            "{package}: {stdout}"
        );
    }
}

#[test]
fn a_failing_case_prints_a_segment_diff_and_exits_non_zero() {
    let wasm = build_plugin("hl7-mapper");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    write("settings.toml", "[settings]\nmap.1 = \"set PID-8 = F\"\n");
    write(
        "sex.in.hl7",
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\nPID|1||42||DOE||19700101|M\nPV1|1|I\n",
    );
    write(
        "sex.out.hl7",
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\nPID|1||42||DOE||19700101|X\nPV1|1|I\n",
    );
    write("route.in.hl7", "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\n");
    write(
        "route.expect.toml",
        "outcome = \"forward\"\ntargets = [\"pas\"]\n",
    );
    let out = hie(&["plugin", "test", path_str(&wasm), "--cases", path_str(dir.path())]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let expected_diff = "    --- expected\n    +++ actual\n    @@ -1,3 +1,3 @@\n     MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\n    -PID|1||42||DOE||19700101|X\n    +PID|1||42||DOE||19700101|F\n     PV1|1|I\n";
    assert!(stdout.contains(expected_diff), "{stdout}");
    assert!(
        stdout.contains("case route ... FAILED\n    expected outcome forward, got pass\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test result: FAILED. 0 passed; 2 failed (route, sex)"),
        "{stdout}"
    );
}

/// `hie plugin new` + `build`; returns the scaffold's directory and component.
fn scaffold(root: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let out = hie(&["plugin", "new", name, "--dir", path_str(root), "--kind", kind]);
    assert!(out.status.success(), "new {kind}: {}", text(&out.stderr));
    let dir = root.join(name);
    let out = hie(&["plugin", "build", path_str(&dir)]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "build {kind}: {stdout}{}",
        text(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("built "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let wasm = PathBuf::from(line["built ".len()..].split(" (").next().unwrap());
    assert!(wasm.is_file(), "{line}");
    (dir, wasm)
}

#[test]
fn fresh_scaffolds_build_and_pass_their_cases() {
    let root = tempfile::tempdir().unwrap();
    for (kind, world, cases) in [
        ("process", "business-service/business-process", 2),
        ("service", "business-service/business-process", 2),
        ("operation", "business-operation", 1),
    ] {
        let name = format!("my-{kind}");
        let (dir, wasm) = scaffold(root.path(), &name, kind);
        let built = text(&hie(&["plugin", "build", path_str(&dir)]).stdout);
        assert!(
            built.contains(&format!("world {world}, hie:plugin@0.1.0)")),
            "{kind}: {built}"
        );
        let cases_dir = dir.join("cases");
        let out = hie(&["plugin", "test", path_str(&wasm), "--cases", path_str(&cases_dir)]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{kind}: {stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("test result: ok. {cases} passed; 0 failed")),
            "{kind}: {stdout}"
        );
    }
}

#[test]
fn a_scaffold_runs_its_native_tests_under_plain_cargo_test() {
    let root = tempfile::tempdir().unwrap();
    let out = hie(&["plugin", "new", "native-check", "--dir", path_str(root.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--manifest-path"])
        .arg(root.path().join("native-check/Cargo.toml"))
        .env(
            "CARGO_TARGET_DIR",
            plugins_target_dir().with_file_name("plugin-scaffolds-native"),
        )
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
}

#[test]
fn a_hook_scaffold_builds_as_a_message_hook_and_is_not_case_tested() {
    let root = tempfile::tempdir().unwrap();
    let (_, wasm) = scaffold(root.path(), "my-hook", "hook");
    let out = hie(&["plugin", "build", path_str(&root.path().join("my-hook"))]);
    assert!(
        text(&out.stdout).contains("world message-hook"),
        "{}",
        text(&out.stdout)
    );
    let out = hie(&[
        "plugin",
        "test",
        path_str(&wasm),
        "--cases",
        path_str(root.path()),
    ]);
    assert_one_line_error(&out, &["my_hook.wasm", "message-hook", "cargo test"]);
}

#[test]
fn bad_components_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = repo_root().join("plugins/standard/passthrough/cases");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let missing = dir.path().join("missing.wasm");
    let v2 = build_plugin("wasm-v2");
    let wrong_export = build_plugin("wasm-wrong-export");
    for (wasm, needle) in [
        (&junk, "not a WebAssembly component"),
        (&core, "core wasm module"),
        (&missing, "cannot read"),
        (&v2, "0.2"),
        (&wrong_export, "wasm_wrong_export.wasm"),
    ] {
        let file = wasm.file_name().unwrap().to_str().unwrap();
        let out = hie(&["plugin", "test", path_str(wasm), "--cases", path_str(&cases)]);
        assert_one_line_error(&out, &[file, needle]);
    }
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let root = tempfile::tempdir().unwrap();
    let out = hie(&["plugin", "new", "Bad Name", "--dir", path_str(root.path())]);
    assert_one_line_error(&out, &["plugin name \"Bad Name\" is not valid"]);
    std::fs::create_dir(root.path().join("taken")).unwrap();
    let out = hie(&["plugin", "new", "taken", "--dir", path_str(root.path())]);
    assert_one_line_error(&out, &["already exists"]);
    let out = hie(&[
        "plugin",
        "new",
        "x",
        "--dir",
        path_str(root.path()),
        "--sdk-path",
        "/nonexistent",
    ]);
    assert_one_line_error(&out, &["no hie-sdk crate at /nonexistent", "--sdk-path"]);
    let out = hie(&["plugin", "build", path_str(root.path())]);
    assert_one_line_error(&out, &["has no Cargo.toml"]);
}
