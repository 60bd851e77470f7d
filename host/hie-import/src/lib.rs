//! Import InterSystems IRIS productions into HIE.
//!
//! Inputs come as teams have them: raw `<Production>` XML, UDL class files
//! (`.cls`, production and rule classes), and `<Export generator="IRIS">`
//! packages holding classes, lookup tables (`.LUT`), System Default Settings
//! (`Ens.Config.DefaultSettings.esd`) and custom HL7 schemas (`.HL7`), or a
//! directory of any of them. The result is a `production.toml`, the compiled
//! routing rules of each router (its `iris-rules` setting, also written to
//! `rules/`), plugin skeletons for custom classes, and `IMPORT-REPORT.md`, which
//! lists every item and setting with how it maps or why it does not carry over,
//! with file and line.
#![forbid(unsafe_code)]

mod defaults;
mod mapping;
mod production;
mod render;
mod rules;
mod source;

use std::path::{Path, PathBuf};

pub use defaults::system_default;
pub use mapping::Skeleton;
pub use source::{At, DefaultSetting, Found};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not an IRIS production, rule or export.
    #[error("{0}")]
    NotIris(String),
    /// The input cannot be read, or the choice of production is ambiguous.
    #[error("{0}")]
    Input(String),
    /// The output cannot be written.
    #[error("{0}")]
    Output(String),
    /// The importer produced a production file HIE refuses: a defect of the importer.
    #[error("the imported production.toml does not check (an importer defect, please report it): {0}")]
    Invalid(String),
}

/// Choices of the import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The production to import when the inputs hold several (its class name).
    pub production: Option<String>,
}

/// The result of an import, not yet written.
#[derive(Debug)]
pub struct Import {
    /// The production's name; `None` when the inputs hold rules or tables only.
    pub production: Option<String>,
    /// `production.toml`, when the inputs hold a production.
    pub production_toml: Option<String>,
    /// `IMPORT-REPORT.md`.
    pub report: String,
    /// Compiled rules: rule class → RuleSet JSON.
    pub rule_files: Vec<(String, String)>,
    /// Plugin skeletons to create for custom classes.
    pub skeletons: Vec<Skeleton>,
    /// Items in the production.
    pub items: usize,
    /// Items disabled by the import.
    pub disabled: usize,
    /// Settings that did not carry over.
    pub not_carried: usize,
}

/// The directory, inside the output, where plugin skeletons go.
pub const SKELETON_DIR: &str = "plugins-src";

/// Read `inputs` (files or directories) and map them.
pub fn import(inputs: &[PathBuf], options: &Options) -> Result<Import, ImportError> {
    if inputs.is_empty() {
        return Err(ImportError::Input(
            "no input given: name IRIS files or directories".into(),
        ));
    }
    let mut found = Found::default();
    for input in inputs {
        let files = source::files_of(input)?;
        let explicit = input.is_file();
        for f in &files {
            found.read(f, explicit)?;
        }
    }
    let shown: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    if found.productions.is_empty()
        && found.rules.is_empty()
        && found.lookups.is_empty()
        && found.defaults.is_empty()
        && found.categories.is_empty()
    {
        return Err(ImportError::NotIris(format!(
            "{}: no IRIS production, rule or export found",
            shown.join(", ")
        )));
    }
    let names: Vec<&str> = found.productions.iter().map(|p| p.class.as_str()).collect();
    let chosen = match (&options.production, found.productions.len()) {
        (Some(name), _) => Some(
            found
                .productions
                .iter()
                .find(|p| &p.class == name)
                .ok_or_else(|| {
                    ImportError::Input(if names.is_empty() {
                        format!("no production {name:?}: the inputs hold no production class")
                    } else {
                        format!(
                            "no production {name:?} in the inputs (found: {})",
                            names.join(", ")
                        )
                    })
                })?
                .clone(),
        ),
        (None, 0) => None,
        (None, 1) => Some(found.productions[0].clone()),
        (None, _) => {
            return Err(ImportError::Input(format!(
                "the inputs hold {} productions ({}): choose one with --production NAME",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let Some(src) = chosen else {
        return Ok(rules_only(&found, &shown));
    };
    let parsed = production::parse(&src)?;
    let mapped = mapping::map(&parsed, &found);
    let toml = render::production_toml(&mapped, &found, &shown.join(", "));
    // the importer's own output must check: a failure here is a defect, not bad input
    hie_config::check_str(Path::new("production.toml"), &toml)
        .map_err(|e| ImportError::Invalid(e.to_string()))?;
    let report = render::report(&mapped, &found, &shown, SKELETON_DIR);
    let disabled = mapped.reports.iter().filter(|r| r.disabled.is_some()).count();
    Ok(Import {
        production: Some(mapped.name.clone()),
        production_toml: Some(toml),
        report,
        rule_files: mapped.rule_files.into_iter().collect(),
        skeletons: mapped.skeletons,
        items: mapped.reports.len(),
        disabled,
        not_carried: mapped.not_carried,
    })
}

/// Inputs with rules (and tables) but no production: the rules are compiled on their own.
fn rules_only(found: &Found, shown: &[String]) -> Import {
    let mut m = mapping::Mapped {
        name: "(no production in the inputs)".into(),
        ..mapping::Mapped::default()
    };
    for r in &found.rules {
        match rules::compile(r, found) {
            Ok(c) => {
                m.rule_lines.extend(c.lines.iter().cloned());
                m.rule_files.insert(r.class.clone(), c.json);
            }
            Err(e) => m
                .rule_lines
                .push(format!("rule class {} cannot be compiled: {e}", r.class)),
        }
    }
    let report = render::report(&m, found, shown, SKELETON_DIR);
    Import {
        production: None,
        production_toml: None,
        report,
        rule_files: m.rule_files.into_iter().collect(),
        skeletons: Vec::new(),
        items: 0,
        disabled: 0,
        not_carried: 0,
    }
}

/// Makes a plugin skeleton: crate name, directory to create it in, kind
/// (`service`, `process`, `operation`); returns the crate's path. The CLI passes
/// `hie plugin new`'s own code.
pub type Scaffold<'a> = &'a dyn Fn(&str, &Path, &str) -> Result<PathBuf, String>;

/// Write `import` into `out`: production.toml, IMPORT-REPORT.md, rules/*.json and
/// the plugin skeletons (kept when they exist already, so a re-import never
/// overwrites ported code).
pub fn write(import: &Import, out: &Path, scaffold: Scaffold<'_>) -> Result<Vec<PathBuf>, ImportError> {
    let err =
        |p: &Path, e: std::io::Error| ImportError::Output(format!("{}: cannot write: {e}", p.display()));
    std::fs::create_dir_all(out).map_err(|e| err(out, e))?;
    let mut written = Vec::new();
    if let Some(toml) = &import.production_toml {
        let p = out.join("production.toml");
        std::fs::write(&p, toml).map_err(|e| err(&p, e))?;
        written.push(p);
    }
    let p = out.join("IMPORT-REPORT.md");
    std::fs::write(&p, &import.report).map_err(|e| err(&p, e))?;
    written.push(p);
    if !import.rule_files.is_empty() {
        let dir = out.join("rules");
        std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        for (class, json) in &import.rule_files {
            let p = dir.join(format!("{class}.json"));
            std::fs::write(&p, json).map_err(|e| err(&p, e))?;
            written.push(p);
        }
    }
    if !import.skeletons.is_empty() {
        let dir = out.join(SKELETON_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        for s in &import.skeletons {
            let path = dir.join(&s.crate_name);
            if path.exists() {
                continue;
            }
            let made = scaffold(&s.crate_name, &dir, s.kind)
                .map_err(|e| ImportError::Output(format!("plugin skeleton for {}: {e}", s.class)))?;
            written.push(made);
        }
    }
    Ok(written)
}
