//! Rust SDK for HIE plugins.
#![deny(missing_docs)]
