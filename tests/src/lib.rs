//! Helpers shared by the end-to-end tests.

mod binary;
mod plugins;

pub use binary::hie_binary;
pub use plugins::{build_plugin, plugins_target_dir, repo_root};
