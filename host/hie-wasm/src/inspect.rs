//! What a component is, read from its bytes without compiling it: which plugin world
//! it fits, which `hie:plugin` version it was built for, its imports and exports.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use crate::error::LoadError;

/// The `hie:plugin` package version this host implements.
pub const PLUGIN_PACKAGE_VERSION: &str = "0.1.0";

const PACKAGE_PREFIX: &str = "hie:plugin/";
const ITEM_EXPORT: &str = "item";
const HOOKS_EXPORT: &str = "hooks";
const ADAPTER_IMPORT: &str = "adapter";

/// Which world of `hie:plugin` a component fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginWorld {
    /// Exports `item` without importing `adapter`: a business service or process
    /// (the two worlds have the same shape).
    Item,
    /// Exports `item` and imports `adapter`: a business operation.
    Operation,
    /// Exports `hooks`: a message hook.
    Hook,
}

impl PluginWorld {
    /// Whether instances of this world are items (as opposed to hooks).
    pub fn is_item(self) -> bool {
        !matches!(self, PluginWorld::Hook)
    }
}

impl fmt::Display for PluginWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginWorld::Item => "business-service/business-process",
            PluginWorld::Operation => "business-operation",
            PluginWorld::Hook => "message-hook",
        })
    }
}

/// One of the four worlds of `wit/hie-plugin.wit`, as a plugin is built for it.
///
/// [`PluginWorld`] is what a component turns out to fit; a `TargetWorld` is what it
/// was meant to be, checked with [`inspect_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetWorld {
    /// `business-service`: exports `item`, imports `host`.
    BusinessService,
    /// `business-process`: exports `item`, imports `host`.
    BusinessProcess,
    /// `business-operation`: exports `item`, imports `host` and (if it calls it) `adapter`.
    BusinessOperation,
    /// `message-hook`: exports `hooks`, imports `host`.
    MessageHook,
}

impl TargetWorld {
    /// The world's name in the WIT file.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetWorld::BusinessService => "business-service",
            TargetWorld::BusinessProcess => "business-process",
            TargetWorld::BusinessOperation => "business-operation",
            TargetWorld::MessageHook => "message-hook",
        }
    }

    /// The interface the world exports, and the one it must not.
    fn exports(self) -> (&'static str, &'static str) {
        match self {
            TargetWorld::MessageHook => (HOOKS_EXPORT, ITEM_EXPORT),
            _ => (ITEM_EXPORT, HOOKS_EXPORT),
        }
    }

    /// Whether a component of world `found` may serve as this world (an operation
    /// that never calls its adapter does not import it, so it looks like a process).
    pub fn fits(self, found: PluginWorld) -> bool {
        match self {
            TargetWorld::BusinessService | TargetWorld::BusinessProcess => found == PluginWorld::Item,
            TargetWorld::BusinessOperation => found.is_item(),
            TargetWorld::MessageHook => found == PluginWorld::Hook,
        }
    }
}

impl fmt::Display for TargetWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about a component, read without compiling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The file (or name) the bytes came from, for messages.
    pub file: String,
    /// SHA-256 of the `.wasm` bytes, lowercase hex: the plugin version messages record.
    pub hash: String,
    /// The plugin world the component fits.
    pub world: PluginWorld,
    /// The `hie:plugin` version the component was built against, e.g. `0.1.0`.
    pub plugin_version: String,
    /// Names of the component's imports, e.g. `hie:plugin/host@0.1.0`, `wasi:cli/stdout@0.2.6`.
    pub imports: Vec<String>,
    /// Names of the component's exports, e.g. `hie:plugin/item@0.1.0`.
    pub exports: Vec<String>,
}

/// Reads a component file and tells what it is (see [`inspect_bytes`]).
pub fn inspect(path: impl AsRef<Path>) -> Result<ComponentInfo, LoadError> {
    let (file, bytes) = read_component(path.as_ref())?;
    inspect_bytes(&file, &bytes)
}

/// The file's name for messages, and its bytes.
pub(crate) fn read_component(path: &Path) -> Result<(String, Vec<u8>), LoadError> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((file, bytes)),
        Err(source) => Err(LoadError::Read { file, source }),
    }
}

/// Tells what a component is: its world, `hie:plugin` version, imports and exports.
/// Fails with a one-line [`LoadError`] naming `file` for junk, core modules, another
/// `hie:plugin` version, or a component exporting neither `item` nor `hooks`.
pub fn inspect_bytes(file: &str, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
    let names = top_level_names(file, bytes)?;
    let hash = hex::encode(Sha256::digest(bytes));
    let plugin_version = check_plugin_version(file, &names)?;
    let world = fit_world(file, &names)?;
    Ok(ComponentInfo {
        file: file.to_owned(),
        hash,
        world,
        plugin_version,
        imports: names.imports,
        exports: names.exports,
    })
}

/// Reads a component file and checks it against the one world it was built for:
/// the world's export is there, the other plugin export is not, and only an
/// operation imports `adapter`. The error is one line naming the file and the
/// missing (or unwanted) export or import. Functions inside an exported interface
/// are checked when the component is linked ([`crate::WasmHost::load`]).
pub fn inspect_as(path: impl AsRef<Path>, world: TargetWorld) -> Result<ComponentInfo, LoadError> {
    let (file, bytes) = read_component(path.as_ref())?;
    let names = top_level_names(&file, &bytes)?;
    check_plugin_version(&file, &names)?;
    check_target(&file, &names, world)?;
    inspect_bytes(&file, &bytes)
}

fn check_target(file: &str, names: &Names, world: TargetWorld) -> Result<(), LoadError> {
    let version = PLUGIN_PACKAGE_VERSION;
    let exports = |want: &str| {
        names
            .exports
            .iter()
            .any(|n| plugin_interface(n).is_some_and(|(iface, _)| iface == want))
    };
    let (needed, unwanted) = world.exports();
    let problem = if !exports(needed) {
        let other = if exports(unwanted) {
            format!(" (it exports hie:plugin/{unwanted}: it was built for another world)")
        } else {
            format!(" (it exports {})", export_list(names))
        };
        format!("world {world} needs the export hie:plugin/{needed}@{version}, which is missing{other}")
    } else if exports(unwanted) {
        format!("world {world} must not export hie:plugin/{unwanted}; a plugin is an item or a hook")
    } else if world != TargetWorld::BusinessOperation
        && names
            .imports
            .iter()
            .any(|n| plugin_interface(n).is_some_and(|(iface, _)| iface == ADAPTER_IMPORT))
    {
        format!(
            "world {world} has no hie:plugin/{ADAPTER_IMPORT} import, but the component imports it: \
             only a business-operation may call its adapter"
        )
    } else {
        return Ok(());
    };
    Err(LoadError::Exports {
        file: file.to_owned(),
        problem,
    })
}

fn export_list(names: &Names) -> String {
    if names.exports.is_empty() {
        "nothing".to_owned()
    } else {
        names.exports.join(", ")
    }
}

struct Names {
    imports: Vec<String>,
    exports: Vec<String>,
}

impl Names {
    fn all(&self) -> impl Iterator<Item = &String> {
        self.imports.iter().chain(&self.exports)
    }
}

/// Import and export names of the outermost component (nested ones are skipped).
fn top_level_names(file: &str, bytes: &[u8]) -> Result<Names, LoadError> {
    if Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule {
            file: file.to_owned(),
        });
    }
    if !Parser::is_component(bytes) {
        return Err(LoadError::NotWasm {
            file: file.to_owned(),
        });
    }
    let invalid = |e: wasmparser::BinaryReaderError| LoadError::Invalid {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let mut names = Names {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 && encoding != Encoding::Component {
                    return Err(LoadError::CoreModule {
                        file: file.to_owned(),
                    });
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    names.imports.push(import.map_err(invalid)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    names.exports.push(export.map_err(invalid)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The `hie:plugin` interface and version a name refers to: `hie:plugin/item@0.1.0`
/// gives `("item", Some("0.1.0"))`.
fn plugin_interface(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(PACKAGE_PREFIX)?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (rest, None),
    })
}

/// The one `hie:plugin` version the component names, if this host speaks it.
fn check_plugin_version(file: &str, names: &Names) -> Result<String, LoadError> {
    let mut found: Option<&str> = None;
    for name in names.all() {
        let Some((_, version)) = plugin_interface(name) else {
            continue;
        };
        let version = version.unwrap_or("(unversioned)");
        if !speaks(version) {
            return Err(LoadError::Version {
                file: file.to_owned(),
                found: version.to_owned(),
                host: host_version_range(),
            });
        }
        found.get_or_insert(version);
    }
    match found {
        Some(v) => Ok(v.to_owned()),
        None => Err(LoadError::Exports {
            file: file.to_owned(),
            problem: "uses no hie:plugin interface: not an HIE plugin".to_owned(),
        }),
    }
}

/// `0.1.x` before 1.0 (minor versions break), `N.x` after.
fn host_version_range() -> String {
    let (major, minor) = major_minor(PLUGIN_PACKAGE_VERSION).unwrap_or((0, 0));
    if major == 0 {
        format!("{major}.{minor}.x")
    } else {
        format!("{major}.x")
    }
}

fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether a component built against `version` can run on this host (semver rules).
fn speaks(version: &str) -> bool {
    match (major_minor(version), major_minor(PLUGIN_PACKAGE_VERSION)) {
        (Some((0, minor)), Some((0, host_minor))) => minor == host_minor,
        (Some((major, _)), Some((host_major, _))) => major == host_major,
        _ => false,
    }
}

fn fit_world(file: &str, names: &Names) -> Result<PluginWorld, LoadError> {
    let exports_iface = |want: &str| {
        names
            .exports
            .iter()
            .any(|n| plugin_interface(n).is_some_and(|(iface, _)| iface == want))
    };
    let imports_adapter = names
        .imports
        .iter()
        .any(|n| plugin_interface(n).is_some_and(|(iface, _)| iface == ADAPTER_IMPORT));
    let problem = match (exports_iface(ITEM_EXPORT), exports_iface(HOOKS_EXPORT)) {
        (true, false) if imports_adapter => return Ok(PluginWorld::Operation),
        (true, false) => return Ok(PluginWorld::Item),
        (false, true) => return Ok(PluginWorld::Hook),
        (true, true) => "exports both hie:plugin/item and hie:plugin/hooks; a plugin is one or the other",
        (false, false) => "exports neither hie:plugin/item nor hie:plugin/hooks",
    };
    Err(LoadError::Exports {
        file: file.to_owned(),
        problem: format!("{problem} (it exports {})", export_list(names)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver_before_and_after_one() {
        assert!(speaks("0.1.0"));
        assert!(speaks("0.1.7"));
        assert!(!speaks("0.2.0"));
        assert!(!speaks("1.1.0"));
        assert!(!speaks("garbage"));
        assert_eq!(host_version_range(), "0.1.x");
    }

    #[test]
    fn junk_and_core_modules_are_named() {
        let junk = inspect_bytes("junk.wasm", b"hello").unwrap_err();
        assert_eq!(
            junk.to_string(),
            "junk.wasm: not a WebAssembly component (no wasm header)"
        );
        let core = inspect_bytes("core.wasm", b"\0asm\x01\0\0\0").unwrap_err();
        assert!(matches!(core, LoadError::CoreModule { .. }), "{core}");
    }

    #[test]
    fn plugin_interface_splits_version() {
        assert_eq!(
            plugin_interface("hie:plugin/item@0.1.0"),
            Some(("item", Some("0.1.0")))
        );
        assert_eq!(plugin_interface("hie:plugin/hooks"), Some(("hooks", None)));
        assert_eq!(plugin_interface("wasi:cli/stdout@0.2.6"), None);
    }
}
