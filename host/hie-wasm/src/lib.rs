//! The WebAssembly plugin host: the only crate that names wasmtime types.
