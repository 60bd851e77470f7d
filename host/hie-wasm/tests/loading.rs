//! Loading components: one-line typed errors for what is not a plugin of this host,
//! world detection, and the on-disk cache of compiled components.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{RecordingHost, command, context, load};
use hie_core::Plugin;
use hie_wasm::{HostConfig, LoadError, PluginWorld, WasmHost, inspect};

fn host_with_cache(dir: &Path) -> WasmHost {
    WasmHost::new(HostConfig {
        cache_dir: Some(dir.to_owned()),
        max_instances: 50,
        ..HostConfig::default()
    })
    .expect("host")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Loads `path` expecting an error whose message is one line naming the file.
fn load_error(path: &Path) -> LoadError {
    let err = common::host().load(path).expect_err("load must fail");
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        text.starts_with(&path.display().to_string()),
        "names the file: {text}"
    );
    err
}

#[test]
fn junk_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_error(&write(dir.path(), "junk.wasm", b"MSH|^~\\&|not wasm at all"));
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
}

#[test]
fn a_core_module_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    // the smallest valid core module: magic and version 1
    let err = load_error(&write(dir.path(), "core.wasm", b"\0asm\x01\0\0\0"));
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("core wasm module"), "{err}");
}

#[test]
fn a_truncated_component_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(hie_tests::build_plugin("wasm-guest")).unwrap();
    let err = load_error(&write(dir.path(), "cut.wasm", &good[..good.len() / 2]));
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
}

#[test]
fn a_component_with_the_wrong_exports_is_refused() {
    let err = load_error(&hie_tests::build_plugin("wasm-wrong-export"));
    assert!(matches!(err, LoadError::Exports { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("exports neither hie:plugin/item nor hie:plugin/hooks"),
        "{text}"
    );
    assert!(text.contains("run"), "names what it does export: {text}");
}

#[test]
fn a_component_for_another_version_is_refused() {
    let path = hie_tests::build_plugin("wasm-v2");
    let err = load_error(&path);
    assert!(
        err.to_string()
            .ends_with(": built for hie:plugin@0.2.0, this host speaks 0.1.x"),
        "{err}"
    );
    assert!(matches!(inspect(&path), Err(LoadError::Version { .. })));
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load_error(Path::new("/nonexistent/plugin.wasm"));
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
}

#[test]
fn inspect_tells_the_world_and_version() {
    for (package, world) in [
        ("wasm-guest", PluginWorld::Item),
        ("wasm-operation", PluginWorld::Operation),
        ("wasm-hook", PluginWorld::Hook),
    ] {
        let info = inspect(hie_tests::build_plugin(package)).unwrap();
        assert_eq!(info.world, world, "{package}");
        assert_eq!(info.plugin_version, "0.1.0");
        assert_eq!(info.hash.len(), 64);
        assert!(
            info.imports.iter().any(|i| i == "hie:plugin/types@0.1.0"),
            "{:?}",
            info.imports
        );
    }
}

#[test]
fn a_second_start_loads_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let path = hie_tests::build_plugin("wasm-guest");
    let first = host_with_cache(cache.path()).load(&path).unwrap();
    assert!(!first.stats().from_cache);
    // a new host stands for a new process start
    let second = host_with_cache(cache.path()).load(&path).unwrap();
    assert!(second.stats().from_cache, "second load must be a cache hit");
    assert_eq!(second.hash(), first.hash());
    assert_works(&second);
}

#[test]
fn a_corrupt_cache_file_is_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let path = hie_tests::build_plugin("wasm-guest");
    host_with_cache(cache.path()).load(&path).unwrap();
    let cwasm = cwasm_files(cache.path());
    assert_eq!(cwasm.len(), 1, "{cwasm:?}");

    // one flipped byte in the middle: wasmtime's header checks would not notice
    let mut bytes = std::fs::read(&cwasm[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    assert_rebuilt_after(cache.path(), &path, &cwasm[0], &bytes);
    assert_rebuilt_after(cache.path(), &path, &cwasm[0], b"junk");
}

/// With `bytes` in place of the cache entry, a load compiles again (and works), and
/// the load after that is a cache hit again.
fn assert_rebuilt_after(cache: &Path, wasm: &Path, cwasm: &Path, bytes: &[u8]) {
    std::fs::write(cwasm, bytes).unwrap();
    let rebuilt = host_with_cache(cache).load(wasm).unwrap();
    assert!(!rebuilt.stats().from_cache, "a corrupt entry must not be used");
    assert_works(&rebuilt);
    let again = host_with_cache(cache).load(wasm).unwrap();
    assert!(again.stats().from_cache, "the rebuilt entry is used");
}

#[test]
fn an_unwritable_cache_is_not_fatal() {
    let path = hie_tests::build_plugin("wasm-guest");
    let host = host_with_cache(Path::new("/proc/hie-cannot-write-here"));
    let component = host.load(&path).unwrap();
    assert!(!component.stats().from_cache);
    assert_works(&component);
}

fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

fn assert_works(component: &Arc<hie_wasm::Component>) {
    let mut plugin = component
        .instantiate(context(&Arc::new(RecordingHost::default())))
        .unwrap();
    plugin.call(command("echo")).unwrap();
}

#[test]
fn loading_twice_in_one_host_gives_equal_hashes() {
    let host = common::host();
    let a = load(&host, "wasm-hook");
    let b = load(&host, "wasm-hook");
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.info(), b.info());
}

/// The SDK's plugins (another workspace member, built the same way) fit this host.
#[test]
fn standard_plugins_load_and_fit_their_world() {
    let host = common::host();
    for package in ["passthrough", "hl7-router"] {
        let component = load(&host, package);
        assert_eq!(component.world(), PluginWorld::Item, "{package}");
        assert_eq!(component.info().plugin_version, hie_wasm::PLUGIN_PACKAGE_VERSION);
    }
    let passthrough = load(&host, "passthrough");
    let mut plugin = passthrough
        .instantiate(context(&Arc::new(RecordingHost::default())))
        .unwrap();
    let input = command("MSH|^~\\&|A");
    match plugin.call(input.clone()).unwrap() {
        hie_core::Outcome::Pass(out) => assert_eq!(out.body, input.body),
        other => panic!("passthrough must pass the message on, got {other:?}"),
    }
}
