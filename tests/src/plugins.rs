//! Building plugin components (from the `plugins/` workspace) for tests and benches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// The repository root: the nearest ancestor (holding `plugins/` and `Cargo.toml`) of the running test's or bench's package
/// (cargo sets `CARGO_MANIFEST_DIR` when it runs them), else of this crate as
/// compiled. The run-time value comes first because a build cache shared by two
/// checkouts can hand one of them this library compiled in the other.
pub fn repo_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([compiled])
        // the running test's crate may sit deeper than `tests/` (e.g. `host/hie-cli`)
        .find_map(|dir| {
            dir.ancestors()
                .skip(1)
                .find(|root| root.join("plugins").is_dir() && root.join("Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The build directory: `${CARGO_TARGET_DIR:-<repo>/target}`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Where plugin builds go: `${CARGO_TARGET_DIR:-<repo>/target}/plugins`.
pub fn plugins_target_dir() -> PathBuf {
    target_dir().join("plugins")
}

/// Builds the plugin crate `package` of the `plugins/` workspace for `wasm32-wasip2`
/// (release) once per process and returns the path of its component,
/// `.../wasm32-wasip2/release/<package with - as _>.wasm`.
///
/// # Panics
///
/// If cargo fails, with cargo's stderr (a missing target needs
/// `rustup target add wasm32-wasip2`).
pub fn build_plugin(package: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // one build at a time: they share a target directory, and cargo would only queue
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let target_dir = plugins_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(repo_root().join("plugins").join("Cargo.toml"))
        .args(["-p", package, "--target-dir"])
        .arg(&target_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build plugin {package}: {e}"));
    if !output.status.success() {
        panic!(
            "building plugin {package} for wasm32-wasip2 failed ({}); if the target is missing: \
             rustup target add wasm32-wasip2\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        path.is_file(),
        "cargo built plugin {package} but {} is missing",
        path.display()
    );
    built.insert(package.to_owned(), path.clone());
    path
}
