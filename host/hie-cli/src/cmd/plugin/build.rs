//! `hie plugin build`: cargo for `wasm32-wasip2`, then a check of what came out.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::Deserialize;

use super::Kind;

/// The target whose `cdylib` output is a component.
pub const TARGET: &str = "wasm32-wasip2";

/// What `cargo metadata` says about the package in a directory.
struct Package {
    name: String,
    manifest: PathBuf,
    target_dir: PathBuf,
    /// `[package.metadata.hie] kind`, if the crate declares it.
    kind: Option<String>,
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
    #[serde(default)]
    metadata: Option<serde_json::Value>,
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
    let kind = package
        .metadata
        .as_ref()
        .and_then(|m| m.get("hie"))
        .and_then(|hie| hie.get("kind"))
        .map(|kind| {
            kind.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| kind.to_string())
        });
    Ok(Package {
        name: package.name,
        manifest,
        target_dir: meta.target_directory,
        kind,
    })
}

/// What `cargo build` produced.
pub struct Built {
    /// The component.
    pub wasm: PathBuf,
    /// The kind the crate declares in `[package.metadata.hie] kind`, as written.
    pub declared_kind: Option<String>,
}

/// Builds the plugin crate in `dir` in release mode for [`TARGET`], with cargo's
/// own progress on the terminal, and returns the component's path.
pub fn cargo_build(dir: &Path) -> anyhow::Result<Built> {
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
    Ok(Built {
        wasm,
        declared_kind: package.kind,
    })
}

/// The kind a crate declares in `[package.metadata.hie] kind`.
pub fn parse_kind(declared: &str, dir: &Path) -> anyhow::Result<Kind> {
    Kind::from_str(declared, false).map_err(|_| {
        anyhow::anyhow!(
            "{}: [package.metadata.hie] kind = {declared:?} is not a plugin kind: use \"process\", \"service\", \"operation\" or \"hook\"",
            dir.join("Cargo.toml").display()
        )
    })
}

/// Compiles and links the component against this host, without running it: every
/// function of its exported interface must be there with the right type. The
/// compiled code goes to the component cache, so `hie plugin test` and `hie run`
/// start warm.
pub fn link(wasm: &Path) -> anyhow::Result<()> {
    let host = hie_wasm::WasmHost::new(hie_wasm::HostConfig {
        // one instance at most, and none is made: no need to reserve a pool
        pooling: false,
        ..hie_wasm::HostConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    host.load(wasm).map(drop).map_err(|e| anyhow::anyhow!("{e}"))
}
