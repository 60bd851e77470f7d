//! `hie plugin build --kind` and what `hie plugin test` cases can say beyond input
//! and output: message hooks around the item, and replies to `send-request-sync`.
//! The real `hie` binary, components built from `plugins/`.

use std::path::Path;
use std::process::Output;

use hie_tests::{build_plugin, repo_root};

mod common;
use common::{assert_one_line_error, hie, path_str, text};

/// Like [`assert_one_line_error`] for `hie plugin build`, whose stderr first carries
/// cargo's own progress lines: the error is the last line, and only one says `error`.
fn assert_build_error(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    for n in needles {
        assert!(last.contains(n), "{n:?} missing in: {stderr}");
    }
}

fn testing_plugin(name: &str) -> String {
    path_str(&repo_root().join("plugins/testing").join(name)).to_owned()
}

#[test]
fn build_checks_the_component_against_the_world_of_its_kind() {
    let guest = testing_plugin("wasm-guest");
    let out = hie(&["plugin", "build", &guest, "--kind", "process"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("fits world business-process (kind process from --kind)"),
        "{stdout}"
    );

    let out = hie(&["plugin", "build", &guest, "--kind", "hook"]);
    assert_build_error(
        &out,
        &[
            "wasm_guest.wasm",
            "world message-hook needs the export hie:plugin/hooks@0.1.0, which is missing",
        ],
    );

    let hook = testing_plugin("wasm-hook");
    let out = hie(&["plugin", "build", &hook, "--kind", "service"]);
    assert_build_error(
        &out,
        &[
            "wasm_hook.wasm",
            "world business-service needs the export hie:plugin/item@0.1.0, which is missing",
        ],
    );

    // an operation's adapter import is refused for a process, allowed for an operation
    let operation = testing_plugin("wasm-operation");
    let out = hie(&["plugin", "build", &operation, "--kind", "process"]);
    assert_build_error(
        &out,
        &[
            "wasm_operation.wasm",
            "hie:plugin/adapter",
            "only a business-operation",
        ],
    );
    let out = hie(&["plugin", "build", &operation, "--kind", "operation"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // the right interface, but a function of it is missing: named by the link check
    let truncated = testing_plugin("wasm-missing-fn");
    let out = hie(&["plugin", "build", &truncated, "--kind", "process"]);
    assert_build_error(
        &out,
        &["wasm_missing_fn.wasm", "hie:plugin/item@0.1.0", "`on-stop`"],
    );

    // without a kind, any plugin world is accepted and the output says so
    let out = hie(&["plugin", "build", &hook]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("world message-hook"), "{stdout}");
    assert!(stdout.contains("no kind given"), "{stdout}");
}

#[test]
fn build_takes_the_kind_from_the_crate_metadata() {
    let root = tempfile::tempdir().unwrap();
    let out = hie(&[
        "plugin",
        "new",
        "declared",
        "--kind",
        "hook",
        "--dir",
        path_str(root.path()),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = root.path().join("declared");
    let manifest = dir.join("Cargo.toml");
    let written = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        written.contains("[package.metadata.hie]\nkind = \"hook\""),
        "{written}"
    );

    let out = hie(&["plugin", "build", path_str(&dir)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("fits world message-hook (kind hook from Cargo.toml)"),
        "{stdout}"
    );

    std::fs::write(
        &manifest,
        written.replace("kind = \"hook\"", "kind = \"process\""),
    )
    .unwrap();
    let out = hie(&["plugin", "build", path_str(&dir)]);
    assert_build_error(
        &out,
        &[
            "declared.wasm",
            "world business-process needs the export hie:plugin/item@0.1.0",
        ],
    );

    std::fs::write(&manifest, written.replace("kind = \"hook\"", "kind = \"router\"")).unwrap();
    let out = hie(&["plugin", "build", path_str(&dir)]);
    assert_build_error(&out, &["Cargo.toml", "kind = \"router\" is not a plugin kind"]);
}

fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn plugin_test(wasm: &Path, cases: &Path) -> (Output, String) {
    let out = hie(&["plugin", "test", path_str(wasm), "--cases", path_str(cases)]);
    let stdout = text(&out.stdout);
    (out, stdout)
}

#[test]
fn cases_run_the_hooks_they_name_as_the_engine_would() {
    let guest = build_plugin("wasm-guest");
    let hook = build_plugin("wasm-hook");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "settings.toml",
        &format!(
            "[[hooks]]\nplugin = {:?}\nsettings = {{ tag = \"qa\" }}\n",
            path_str(&hook)
        ),
    );
    // before-process sets the property, after-process appends to the reply
    write(d, "echo.in.hl7", "echo");
    write(d, "echo.out.hl7", "echo (seen)");
    write(
        d,
        "echo.expect.toml",
        "outcome = \"reply\"\nproperties = { hooked = \"qa\" }\n",
    );
    write(d, "skip.in.hl7", "skip");
    write(d, "skip.expect.toml", "outcome = \"skip\"\n");
    write(d, "reject.in.hl7", "reject");
    write(
        d,
        "reject.expect.toml",
        "outcome = \"reject\"\ncode = \"rejected\"\n",
    );
    // a retryable failure: the hook's on-process-error asks for a retry
    write(d, "fail.in.hl7", "fail");
    write(
        d,
        "fail.expect.toml",
        "outcome = \"fail\"\ncode = \"asked-to-fail\"\nerror_action = \"retry\"\n",
    );
    // the copy whose body is `skip` is held back by on-before-send
    write(d, "fan.in.hl7", "fan:pas,skip,lab");
    write(
        d,
        "fan.expect.toml",
        "outcome = \"forward\"\ntargets = [\"pas\", \"lab\"]\n",
    );
    let (out, stdout) = plugin_test(&guest, d);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("test result: ok. 5 passed; 0 failed"), "{stdout}");

    // without the hooks the same expectations fail, and say why
    write(d, "fail.settings.toml", "hooks = []\n");
    write(d, "skip.settings.toml", "hooks = []\n");
    let (out, stdout) = plugin_test(&guest, d);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("case fail ... FAILED\n    expected hooks to decide retry, got none"),
        "{stdout}"
    );
    assert!(
        stdout.contains("case skip ... FAILED\n    expected outcome skip, got fail unknown-command"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test result: FAILED. 3 passed; 2 failed (fail, skip)"),
        "{stdout}"
    );
}

#[test]
fn a_case_names_a_hook_that_is_not_a_hook_in_one_line() {
    let guest = build_plugin("wasm-guest");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "settings.toml",
        &format!("[[hooks]]\nplugin = {:?}\n", path_str(&guest)),
    );
    write(dir.path(), "echo.in.hl7", "echo");
    write(dir.path(), "echo.expect.toml", "outcome = \"reply\"\n");
    let (out, _) = plugin_test(&guest, dir.path());
    assert_one_line_error(&out, &["wasm_guest.wasm", "not a message-hook"]);
}

const ORDER: &str = "MSH|^~\\&|EHR|WEST|LAB|CENTRAL|20240101120000||OML^O21|Q1|P|2.5\nPID|1||123456^^^MRN\n";
const RESULT: &str =
    "MSH|^~\\&|LAB|CENTRAL|EHR|WEST|20240101120500||ORU^R01|R1|P|2.5\nOBX|1|NM|K^Potassium||4.1\n";

#[test]
fn send_request_sync_gets_the_case_reply_at_once() {
    let requester = build_plugin("engine-requester");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "settings.toml", "[settings]\ntarget = \"lab\"\n");
    write(d, "replies/lab.hl7", RESULT);
    // the reply body from replies/lab.hl7 comes back and is passed on
    write(d, "result.in.hl7", ORDER);
    write(d, "result.out.hl7", RESULT);
    write(
        d,
        "result.expect.toml",
        "outcome = \"pass\"\nrequested = [\"lab\"]\n",
    );
    // a case's own [replies.TARGET] wins: a failure
    write(d, "down.in.hl7", ORDER);
    write(
        d,
        "down.settings.toml",
        "[replies.lab]\nfail = \"lab-down\"\ntext = \"the lab is closed\"\nretryable = true\n",
    );
    write(
        d,
        "down.expect.toml",
        "outcome = \"fail\"\ncode = \"lab-down\"\nretryable = true\n",
    );
    // or an ACK of the request
    write(d, "acked.in.hl7", ORDER);
    write(d, "acked.settings.toml", "[replies.lab]\nack = \"AE\"\n");
    write(d, "acked.expect.toml", "outcome = \"pass\"\n");
    // a target without a reply fails the request with a permanent no-reply, not a timeout
    write(d, "nobody.in.hl7", ORDER);
    write(d, "nobody.settings.toml", "[settings]\ntarget = \"pharmacy\"\n");
    write(
        d,
        "nobody.expect.toml",
        "outcome = \"fail\"\ncode = \"no-reply\"\nretryable = false\nrequested = [\"pharmacy\"]\n",
    );
    let (out, stdout) = plugin_test(&requester, d);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("test result: ok. 4 passed; 0 failed"), "{stdout}");

    // the ACK really is an ACK of the request, with the code asked for
    write(d, "acked.out.hl7", "MSA|AE|Q1\n");
    let (out, stdout) = plugin_test(&requester, d);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("+MSH|^~\\&|LAB|CENTRAL|EHR|WEST|"), "{stdout}");
    assert!(stdout.contains("MSA|AE|Q1"), "{stdout}");
    assert!(stdout.contains("case acked ... FAILED"), "{stdout}");

    // a wrong reply table is a clear error naming the file and the fix
    write(
        d,
        "acked.settings.toml",
        "[replies.lab]\nack = \"AE\"\nfail = \"x\"\n",
    );
    let (out, _) = plugin_test(&requester, d);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("acked.settings.toml: [replies.lab] needs exactly one of ack"),
        "{stderr}"
    );
}
