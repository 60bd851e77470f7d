//! Helpers shared by the end-to-end tests.

mod plugins;

pub use plugins::{build_plugin, plugins_target_dir, repo_root};
