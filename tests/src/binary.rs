//! Building the `hie` binary for end-to-end tests and benches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's `hie` binary, built once per process by `cargo build --workspace --bin hie`
/// into the target directory and profile of the running test or bench (found from
/// its executable's path: `<target>/<profile>/deps/<name>-<hash>`), because
/// `CARGO_BIN_EXE_hie` exists only inside hie-cli's own tests.
///
/// `$HIE_BIN`, if set, is used as is instead.
///
/// # Panics
///
/// If the executable's path does not have that shape or cargo fails.
pub fn hie_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // a given binary, e.g. a release build for the load tests' rates
        if let Some(bin) = std::env::var_os("HIE_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("path of the running executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("executable under <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target directory");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // `--workspace` so features unify as in `cargo test/bench --workspace`
        // and the dependencies already built for the test are reused (with
        // `-p hie-cli` alone, wasmtime is built a second time)
        cmd.args([
            "build",
            "--quiet",
            "--workspace",
            "--bin",
            "hie",
            "--manifest-path",
        ])
        .arg(crate::repo_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the hie binary failed ({status})");
        profile_dir.join("hie")
    })
}
