//! `hie plugin` (being built).

use std::process::ExitCode;

/// `hie plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {}

/// Run a `hie plugin` subcommand.
pub fn run(_cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hie plugin is not built yet")
}
