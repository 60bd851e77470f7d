//! `hie import iris PATH… --out DIR`: turn IRIS productions, rules and export
//! packages into an HIE production (see the `hie-import` crate), and the same
//! import done by `hie run` when it is given IRIS input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::ctl::outln;

/// `hie import` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Import InterSystems IRIS productions: production classes (.cls), raw <Production>
    /// XML, export packages (with rules, lookup tables, system default settings and
    /// custom HL7 schemas), or directories of them.
    Iris(IrisArgs),
}

/// Arguments of `hie import iris`.
#[derive(Debug, clap::Args)]
pub struct IrisArgs {
    /// IRIS files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Directory to write production.toml, IMPORT-REPORT.md, rules/ and plugins-src/ into.
    #[arg(long)]
    pub out: PathBuf,
    /// The production to import when the inputs hold several (its class name).
    #[arg(long, value_name = "NAME")]
    pub production: Option<String>,
}

/// Runs a `hie import` subcommand.
pub fn run(cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCommand::Iris(args) => {
            let options = hie_import::Options {
                production: args.production,
            };
            import_into(&args.paths, &args.out, &options)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Import `paths` into `out` and print what was done; returns the production file, if any.
fn import_into(
    paths: &[PathBuf],
    out: &Path,
    options: &hie_import::Options,
) -> anyhow::Result<Option<PathBuf>> {
    let import = hie_import::import(paths, options)?;
    let scaffold = |name: &str, dir: &Path, kind: &str| -> Result<PathBuf, String> {
        super::plugin::new_skeleton(name, dir, kind).map_err(|e| format!("{e:#}"))
    };
    hie_import::write(&import, out, &scaffold)?;
    let report = out.join("IMPORT-REPORT.md");
    match &import.production {
        Some(name) => {
            outln!(
                "imported IRIS production {name}: {} items ({} disabled), {} settings not carried over, {} rule classes compiled",
                import.items,
                import.disabled,
                import.not_carried,
                import.rule_files.len()
            );
            outln!("wrote {}", out.join("production.toml").display());
        }
        None => outln!(
            "no production in the inputs: {} rule classes compiled into {}",
            import.rule_files.len(),
            out.join("rules").display()
        ),
    }
    if !import.skeletons.is_empty() {
        outln!(
            "plugin skeletons for {} custom classes in {}",
            import.skeletons.len(),
            out.join(hie_import::SKELETON_DIR).display()
        );
    }
    outln!("report: {}", report.display());
    if import.disabled > 0 || import.not_carried > 0 {
        outln!("warning: not everything carries over; read the report before running the production");
    }
    Ok(import.production.map(|_| out.join("production.toml")))
}

/// What `hie run` runs for `path`: the path itself when it is an HIE production;
/// for IRIS input, the production imported into a directory under the user's data
/// directory (named after the input), printed before the run.
pub fn production_for_run(path: &Path) -> anyhow::Result<PathBuf> {
    if !is_iris_input(path) {
        return Ok(path.to_path_buf());
    }
    let out = import_dir_for(path);
    outln!(
        "{} is IRIS input: importing it into {}",
        path.display(),
        out.display()
    );
    let file = import_into(&[path.to_path_buf()], &out, &hie_import::Options::default())
        .with_context(|| {
            format!(
                "cannot import {} (to choose a production or see every problem: hie import iris PATH --production NAME --out DIR, then hie run DIR)",
                path.display()
            )
        })?;
    file.ok_or_else(|| {
        anyhow::anyhow!(
            "{}: holds IRIS rules but no production to run: compile them with hie import iris PATH --out DIR, or add the production class",
            path.display()
        )
    })
}

/// IRIS input: a file that is not TOML, or a directory without `production.toml`
/// that holds IRIS files (`.cls`, `.xml`, `.lut`, `.esd`); anything else is left to
/// the production loader and its errors.
fn is_iris_input(path: &Path) -> bool {
    if path.is_dir() {
        return !path.join(hie_config::PRODUCTION_FILE).is_file() && holds_iris_files(path, 4);
    }
    path.is_file() && path.extension().is_none_or(|e| e != "toml")
}

fn holds_iris_files(dir: &Path, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            return depth > 0 && holds_iris_files(&p, depth - 1);
        }
        p.extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ["cls", "xml", "lut", "esd"].contains(&x.to_ascii_lowercase().as_str()))
    })
}

/// `~/.local/share/hie/imported/<input name>` (the system temp directory without a home).
fn import_dir_for(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let name: String = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "production".into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // two inputs with the same name in different places get different directories
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in absolute.to_string_lossy().bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let base = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/hie/imported"))
        .unwrap_or_else(|| std::env::temp_dir().join("hie-imported"));
    base.join(format!("{name}-{:08x}", hash as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iris_inputs_are_told_from_hie_productions() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("production.toml");
        std::fs::write(&toml, "[production]\nname = \"x\"\n").unwrap();
        assert!(!is_iris_input(&toml));
        assert!(!is_iris_input(dir.path()));
        let cls = dir.path().join("Demo.Production.cls");
        std::fs::write(&cls, "Class Demo.Production Extends Ens.Production\n{\n}\n").unwrap();
        assert!(is_iris_input(&cls));
        let iris_dir = tempfile::tempdir().unwrap();
        // an empty directory is a production directory missing its file, not IRIS input
        assert!(!is_iris_input(iris_dir.path()));
        std::fs::create_dir(iris_dir.path().join("src")).unwrap();
        std::fs::write(iris_dir.path().join("src/Demo.Production.cls"), "Class X\n").unwrap();
        assert!(is_iris_input(iris_dir.path()));
        assert_ne!(
            import_dir_for(&cls),
            import_dir_for(&dir.path().join("other/Demo.Production.cls"))
        );
    }
}
