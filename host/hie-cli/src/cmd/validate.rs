//! `hie validate PRODUCTION`: check a production without running it.
//!
//! Three steps, each reporting every problem it finds with file, line and field:
//! the file is parsed and checked without I/O; plugin files are located and
//! matched to their item's world (reading only their headers); and the engine
//! checks what it alone knows (supported execution modes, reply-code policies).
//! Exit 0 when valid, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `hie validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The production: a directory holding `production.toml`, or the file itself.
    pub production: PathBuf,
}

/// Run `hie validate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match check(&args.production) {
        Ok(summary) => {
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "{} error{} found",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Load, resolve and preflight a production; every problem as one line.
pub fn check(path: &std::path::Path) -> Result<String, Vec<String>> {
    let production = load(path)?;
    let engine_errors: Vec<String> = hie_engine::preflight(&production)
        .iter()
        .map(|e| e.to_string())
        .collect();
    if !engine_errors.is_empty() {
        return Err(engine_errors);
    }
    Ok(format!(
        "production {:?} is valid: {} items, {} hooks",
        production.name,
        production.items.len(),
        production.hooks.len()
    ))
}

/// Load and resolve a production (plugins located and world-checked).
pub fn load(path: &std::path::Path) -> Result<hie_config::Production, Vec<String>> {
    let world_check = |p: &std::path::Path, w| hie_engine::check_world(p, w);
    hie_config::load_and_resolve(path, Some(&world_check))
        .map_err(|e| e.iter().map(|e| e.to_string()).collect())
}
