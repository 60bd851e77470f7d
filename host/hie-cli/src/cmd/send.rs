//! `hie send` (being built).

use std::process::ExitCode;

/// Arguments of `hie send`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `hie send`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hie send is not built yet")
}
