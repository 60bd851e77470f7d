//! The on-disk cache of compiled components: `<dir>/<sha256 of the .wasm>-<engine
//! key>.cwasm`, next to a `.sha256` file holding the digest of the `.cwasm` itself.
//!
//! The engine key covers the wasmtime version and everything in the engine config
//! that changes compiled code, so a config change or upgrade misses instead of
//! loading code built for another engine. Files are written to a temporary name and
//! renamed into place; a file that does not match its digest, or that wasmtime
//! refuses, is ignored and rebuilt. Cache trouble never fails a load: it is logged.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime this crate is pinned to (see the workspace `Cargo.toml`).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Length of the engine key in file names (hex characters).
const ENGINE_KEY_LEN: usize = 16;

/// Compiled components on disk, for one engine configuration.
#[derive(Debug, Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        ComponentCache {
            dir,
            engine_key: engine_key(engine),
        }
    }

    fn paths(&self, wasm_hash: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{wasm_hash}-{}", self.engine_key);
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.sha256")),
        )
    }

    /// The compiled component for `.wasm` bytes with `wasm_hash`, if cached and intact.
    pub fn get(&self, engine: &Engine, wasm_hash: &str) -> Option<Component> {
        let (cwasm, digest_file) = self.paths(wasm_hash);
        let expected = std::fs::read_to_string(&digest_file).ok()?;
        let bytes = std::fs::read(&cwasm).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
            tracing::warn!(file = %cwasm.display(), "cached component does not match its digest; rebuilding");
            return None;
        }
        drop(bytes);
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output for
        // this engine. It is: the cache directory is ours, every file in it is written
        // by `put` below from `Component::serialize`, its name carries the engine key
        // (wasmtime version and compile config), and its bytes were just checked
        // against the digest written with it. wasmtime checks version and config again.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &cwasm) };
        match loaded {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(file = %cwasm.display(), error = %crate::error::one_line(&err), "cached component refused; rebuilding");
                None
            }
        }
    }

    /// Stores a freshly compiled component; failures are logged, not returned.
    pub fn put(&self, wasm_hash: &str, component: &Component) {
        let (cwasm, digest_file) = self.paths(wasm_hash);
        let result = component
            .serialize()
            .map_err(|e| crate::error::one_line(&e))
            .and_then(|bytes| {
                std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
                write_atomically(&cwasm, &bytes).map_err(|e| e.to_string())?;
                let digest = hex::encode(Sha256::digest(&bytes));
                write_atomically(&digest_file, digest.as_bytes()).map_err(|e| e.to_string())
            });
        if let Err(error) = result {
            tracing::warn!(file = %cwasm.display(), %error, "cannot cache compiled component");
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place, so
/// a reader sees the old file, the new file, or none; never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Identifies the engine's compiled-code compatibility: wasmtime version plus
/// wasmtime's own compatibility hash (target, compiler flags, tunables, features).
fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    WASMTIME_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut key = hex::encode(hasher.0.finalize());
    key.truncate(ENGINE_KEY_LEN);
    key
}

/// A `Hasher` feeding SHA-256, so the key is stable across runs (unlike `DefaultHasher`'s
/// promise) and long enough not to collide.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
