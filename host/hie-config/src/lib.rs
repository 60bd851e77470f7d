//! HIE production files.
//!
//! Loading is three steps, as in Vector: the file is deserialized into a *wire*
//! form ([`wire`], serde, unknown fields refused), checked into a [`Production`]
//! without any I/O ([`check_str`]; every problem is reported with file, line and
//! field), and then its plugins are located on disk and matched to their worlds
//! ([`resolve_plugins`]). `hie validate` runs the three and nothing else.
#![forbid(unsafe_code)]

mod check;
mod diff;
mod error;
mod filename;
mod model;
mod plugins;
pub mod wire;

use std::path::{Path, PathBuf};

pub use check::DEFAULT_ADMIN_LISTEN;
pub use check::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_QUEUE_CAPACITY, DEFAULT_REQUEST_TIMEOUT, check_str, parse_size,
    valid_hl7_path,
};
pub use diff::{ItemDiff, ProductionDiff, diff};
pub use error::{ConfigError, ConfigErrors, SourceFile};
pub use filename::{FilenameSpec, NameContext, Stamp, UniqueMode};
pub use model::*;
pub use plugins::{WorldCheck, plugin_search_path, resolve_plugins};

/// The file name looked for when a production is given as a directory.
pub const PRODUCTION_FILE: &str = "production.toml";

/// The production file for `path`: the path itself, or `production.toml` inside it.
pub fn production_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(PRODUCTION_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Read and check a production (a directory holding `production.toml`, or the file).
/// Plugins are not resolved yet.
pub fn load(path: &Path) -> Result<Production, ConfigErrors> {
    let file = production_file(path);
    let file = std::path::absolute(&file).unwrap_or(file);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read production file: {e}"),
        }])
    })?;
    check_str(&file, &text)
}

/// [`load`], then [`resolve_plugins`].
pub fn load_and_resolve(path: &Path, check: Option<WorldCheck<'_>>) -> Result<Production, ConfigErrors> {
    let mut production = load(path)?;
    resolve_plugins(&mut production, check)?;
    Ok(production)
}
