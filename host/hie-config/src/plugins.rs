//! Plugin resolution: the one step of loading a production that touches the disk.
//!
//! A plugin written as a standard name (`hl7-router`) is looked up, in order, in
//! the production's `plugins/` directory, each directory of `$HIE_PLUGIN_PATH`
//! (colon separated), and `~/.local/share/hie/plugins`. For a name `a-b` the
//! files `a-b.wasm` and `a_b.wasm` are tried in each directory. A plugin written
//! as a path (it contains `/` or ends with `.wasm`) is taken relative to the
//! production directory.

use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{PluginRef, PluginSpec, PluginWorld, Production};

/// Checks that a component file targets a world; returns why not. Supplied by
/// the caller so this crate stays free of the WebAssembly runtime.
pub type WorldCheck<'a> = &'a dyn Fn(&Path, PluginWorld) -> Result<(), String>;

/// The directories searched for standard plugin names, in order.
pub fn plugin_search_path(production_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![production_dir.join("plugins")];
    if let Some(path) = std::env::var_os("HIE_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".local/share/hie/plugins"));
    }
    dirs
}

/// Find every plugin file and check it fits its world; fills in [`PluginSpec::path`].
/// Reports every plugin that is missing or does not fit.
pub fn resolve_plugins(
    production: &mut Production,
    check: Option<WorldCheck<'_>>,
) -> Result<(), ConfigErrors> {
    let search = plugin_search_path(&production.dir);
    let file = production.file.clone();
    let dir = production.dir.clone();
    let mut errors = Vec::new();
    let mut resolve = |spec: &mut PluginSpec, field: String, world: PluginWorld| match locate(
        &spec.reference,
        &dir,
        &search,
    ) {
        Ok(path) => {
            if let Some(check) = check
                && let Err(why) = check(&path, world)
            {
                errors.push(error(
                    &file,
                    spec,
                    &field,
                    format!("{} does not fit: {why}", path.display()),
                ));
            }
            spec.path = Some(path);
        }
        Err(why) => errors.push(error(&file, spec, &field, why)),
    };
    for hook in &mut production.hooks {
        resolve(
            &mut hook.plugin,
            format!("hooks[{}].plugin", hook.name),
            PluginWorld::MessageHook,
        );
    }
    for item in &mut production.items {
        let world = item.kind.world();
        if let Some(plugin) = &mut item.plugin {
            resolve(plugin, format!("items[{}].plugin", item.name), world);
        }
    }
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

fn error(file: &Path, spec: &PluginSpec, field: &str, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: Some(spec.location.line),
        column: None,
        field: field.to_string(),
        message,
    }
}

fn locate(reference: &PluginRef, dir: &Path, search: &[PathBuf]) -> Result<PathBuf, String> {
    match reference {
        PluginRef::File(path) => {
            let full = dir.join(path);
            if full.is_file() {
                Ok(full)
            } else {
                Err(format!("plugin file {} does not exist", full.display()))
            }
        }
        PluginRef::Standard(name) => {
            let names = [format!("{name}.wasm"), format!("{}.wasm", name.replace('-', "_"))];
            search
                .iter()
                .flat_map(|d| names.iter().map(move |n| d.join(n)))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    let dirs: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
                    format!("plugin {name:?} not found in {}", dirs.join(", "))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_str;

    #[test]
    fn missing_and_misfit_plugins_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::write(dir.path().join("plugins/hl7_router.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("op.wasm"), b"x").unwrap();
        let text = r#"
[production]
name = "demo"

[[items]]
name = "router"
kind = "process"
plugin = "hl7-router"

[[items]]
name = "gone"
kind = "process"
plugin = "gone.wasm"

[[items]]
name = "op"
kind = "operation"
plugin = "op.wasm"
"#;
        let file = dir.path().join("production.toml");
        let mut p = check_str(&file, text).unwrap();
        let check = |path: &Path, world: PluginWorld| {
            if path.ends_with("op.wasm") && world == PluginWorld::BusinessOperation {
                Err("it exports business-process".to_string())
            } else {
                Ok(())
            }
        };
        let errs = resolve_plugins(&mut p, Some(&check)).unwrap_err();
        let lines: Vec<String> = errs.iter().map(|e| format!("{:?} {}", e.line, e.field)).collect();
        assert_eq!(
            lines,
            vec!["Some(13) items[gone].plugin", "Some(18) items[op].plugin"]
        );
        assert_eq!(
            p.item("router").unwrap().plugin.as_ref().unwrap().path,
            Some(dir.path().join("plugins/hl7_router.wasm"))
        );
    }
}
