//! `hie listen` (being built).

use std::process::ExitCode;

/// Arguments of `hie listen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `hie listen`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hie listen is not built yet")
}
