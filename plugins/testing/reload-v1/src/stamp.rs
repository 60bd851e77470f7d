//! The stamp plugin shared by `reload-v1`, `reload-v2` and `reload-failing`:
//! appends `ZRV|<version>|<instance id>` to each message and passes it to the
//! item's targets, so a test sees which version and which instance handled it.

use hie_sdk::prelude::*;

/// Stamps every message with its version and instance id (or fails it).
pub struct Stamp {
    version: &'static str,
    fail: bool,
    instance: u64,
}

impl Stamp {
    /// A stamp for `version`, with a random instance id (WASI random, per instance).
    pub fn new(version: &'static str, fail: bool) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let instance = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Stamp {
            version,
            fail,
            instance,
        }
    }

    /// `on-init`: logs the instance id.
    pub fn init(&self) -> Result<(), String> {
        hie_sdk::host::info(&format!(
            "stamp {} instance {:016x} initialised",
            self.version, self.instance
        ));
        Ok(())
    }

    /// `on-message`.
    pub fn message(&self, msg: Message) -> Result<Outcome, Failure> {
        if self.fail {
            return Err(Failure::permanent(
                "stamp-failing",
                format!("{} fails every message", self.version),
            ));
        }
        let mut body = msg.body().to_vec();
        body.extend_from_slice(format!("ZRV|{}|{:016x}\r", self.version, self.instance).as_bytes());
        Ok(Outcome::pass(msg.with_body(body)))
    }
}
