//! `hie plugin new`: a plugin crate that builds and tests as it is.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Kind;

/// One file of the scaffold: its path in the crate and its template text.
struct Template {
    path: &'static str,
    text: &'static str,
}

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");

fn lib_rs(kind: Kind) -> &'static str {
    match kind {
        Kind::Process => include_str!("templates/process.rs"),
        Kind::Service => include_str!("templates/service.rs"),
        Kind::Operation => include_str!("templates/operation.rs"),
        Kind::Hook => include_str!("templates/hook.rs"),
    }
}

fn cases(kind: Kind) -> &'static [Template] {
    macro_rules! case {
        ($kind:literal, $file:literal) => {
            Template {
                path: concat!("cases/", $file),
                text: include_str!(concat!("templates/cases/", $kind, "/", $file)),
            }
        };
    }
    match kind {
        Kind::Process => &[
            case!("process", "adt-a01.in.hl7"),
            case!("process", "adt-a01.out.hl7"),
            case!("process", "adt-a01.settings.toml"),
            case!("process", "not-hl7.in.hl7"),
            case!("process", "not-hl7.expect.toml"),
        ],
        Kind::Service => &[
            case!("service", "adt-a01.in.hl7"),
            case!("service", "adt-a01.out.hl7"),
            case!("service", "no-control-id.in.hl7"),
            case!("service", "no-control-id.expect.toml"),
        ],
        Kind::Operation => &[
            case!("operation", "adt-a01.in.hl7"),
            case!("operation", "adt-a01.expect.toml"),
        ],
        // `hie plugin test` runs items; a hook is tested natively (`cargo test`)
        Kind::Hook => &[],
    }
}

/// Where the SDK of this build of `hie` lives: `sdk/hie-sdk` of its source tree.
fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/hie-sdk")
}

/// Whether `name` is a usable crate name: lowercase letters, digits, `-` and `_`,
/// starting with a letter.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `my-plugin` → `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect::<String>()
        })
        .collect()
}

/// Writes a new plugin crate `name` of `kind` into `dir/name` and returns its path.
pub fn create(name: &str, dir: &Path, kind: Kind, sdk_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !valid_name(name) {
        bail!(
            "plugin name {name:?} is not valid: use lowercase letters, digits, '-' and '_', starting with a letter"
        );
    }
    let sdk = sdk_path.map(Path::to_path_buf).unwrap_or_else(default_sdk_path);
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "no hie-sdk crate at {}: pass --sdk-path to the sdk/hie-sdk directory",
                sdk.display()
            )
        })?;
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let file = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{file}}", &file)
            .replace("{{kind}}", kind.as_str())
            .replace("{{sdk_path}}", &sdk.display().to_string())
    };
    let mut files = vec![
        Template {
            path: "Cargo.toml",
            text: CARGO_TOML,
        },
        Template {
            path: "README.md",
            text: README,
        },
        Template {
            path: "src/lib.rs",
            text: lib_rs(kind),
        },
        Template {
            path: ".gitignore",
            text: "/target\n",
        },
    ];
    files.extend(cases(kind).iter().map(|t| Template {
        path: t.path,
        text: t.text,
    }));
    for t in &files {
        let path = root.join(t.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, fill(t.text)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("my-plugin2"));
        assert!(!valid_name("My-plugin"));
        assert!(!valid_name("2fast"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert_eq!(type_name("my-plugin"), "MyPlugin");
        assert_eq!(type_name("adt_split-v2"), "AdtSplitV2");
    }

    #[test]
    fn every_kind_has_its_example() {
        for kind in [Kind::Process, Kind::Service, Kind::Operation, Kind::Hook] {
            assert!(lib_rs(kind).contains("{{type}}"));
        }
        assert!(cases(Kind::Process).iter().any(|t| t.path.ends_with(".out.hl7")));
    }
}
