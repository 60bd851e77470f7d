//! `hie`: the HIE healthcare integration engine and its tools.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// HIE: a healthcare integration engine with sandboxed WebAssembly business logic.
#[derive(Debug, Parser)]
#[command(name = "hie", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build, scaffold and test plugins.
    #[command(subcommand)]
    Plugin(cmd::plugin::PluginCommand),
    /// Send HL7 messages to an MLLP listener and report ACKs and latency.
    Send(cmd::send::Args),
    /// Run an MLLP sink that ACKs, counts and optionally stores what it receives.
    Listen(cmd::listen::Args),
    /// Run a production in the foreground until SIGTERM or SIGINT.
    #[command(after_help = cmd::run::EXIT_CODES)]
    Run(cmd::run::Args),
    /// Check a production file and its plugins without running it.
    Validate(cmd::validate::Args),
    /// Import productions from other engines (InterSystems IRIS).
    #[command(subcommand)]
    Import(cmd::import::ImportCommand),
    /// Operate a running production through its admin API.
    Ctl(cmd::ctl::Args),
    /// Search, show, trace, resend and purge stored messages (admin API).
    Messages(cmd::messages::Args),
    /// One worker process of a multi_process item (started by `hie run`).
    #[command(hide = true)]
    Worker(cmd::worker::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin(c) => cmd::plugin::run(c),
        Command::Send(a) => cmd::send::run(a),
        Command::Listen(a) => cmd::listen::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Import(c) => cmd::import::run(c),
        Command::Ctl(a) => cmd::ctl::run(a),
        Command::Messages(a) => cmd::messages::run(a),
        Command::Worker(a) => cmd::worker::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
