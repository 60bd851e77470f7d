//! Helpers shared by the `hie plugin` end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use hie_tests::plugins_target_dir;

/// Runs `hie` with `args`; plugin builds by `hie plugin build` share one target directory.
pub fn hie(args: &[&str]) -> Output {
    let scaffolds = plugins_target_dir().with_file_name("plugin-scaffolds");
    Command::new(env!("CARGO_BIN_EXE_hie"))
        .args(args)
        .env("CARGO_TARGET_DIR", scaffolds)
        .output()
        .expect("run hie")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts `hie` failed with one line on stderr that contains each of `needles`.
pub fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} missing in: {stderr}");
    }
}
