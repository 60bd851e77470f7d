//! Helpers shared by the end-to-end tests.

mod binary;
mod plugins;
mod python;

pub use binary::hie_binary;
pub use plugins::{build_plugin, plugins_target_dir, repo_root, target_dir};
pub use python::{HL7_PACKAGE, hl7_python};
