//! `hie plugin build`: cargo for `wasm32-wasip2`, then a check of what came out.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The target whose `cdylib` output is a component.
pub const TARGET: &str = "wasm32-wasip2";

/// What `cargo metadata` says about the package in a directory.
struct Package {
    name: String,
    manifest: PathBuf,
    target_dir: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetadataPackage>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct MetadataPackage {
    name: String,
    manifest_path: PathBuf,
}

fn package(dir: &Path) -> anyhow::Result<Package> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} has no Cargo.toml: run hie plugin build in a plugin crate or pass its directory",
            dir.display()
        );
    }
    let out = Command::new("cargo")
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("cannot run cargo: is the Rust toolchain installed?")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed for {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout).context("cannot read cargo metadata output")?;
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let package = meta
        .packages
        .into_iter()
        .find(|p| p.manifest_path == manifest)
        .with_context(|| {
            format!(
                "{} is a workspace root without a package: pass a plugin's directory",
                dir.display()
            )
        })?;
    Ok(Package {
        name: package.name,
        manifest,
        target_dir: meta.target_directory,
    })
}

/// Builds the plugin crate in `dir` in release mode for [`TARGET`], with cargo's
/// own progress on the terminal, and returns the component's path.
pub fn cargo_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let package = package(dir)?;
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&package.manifest)
        .args(["-p", &package.name])
        .status()
        .context("cannot run cargo: is the Rust toolchain installed?")?;
    if !status.success() {
        bail!(
            "cargo build of {} failed (see above); is the target installed? rustup target add {TARGET}",
            package.name
        );
    }
    let wasm = package
        .target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.name.replace('-', "_")));
    if !wasm.is_file() {
        bail!(
            "cargo built {} but {} is missing: is its crate-type cdylib?",
            package.name,
            wasm.display()
        );
    }
    Ok(wasm)
}
