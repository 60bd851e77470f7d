//! Shared by the hie-wasm integration tests: a recording [`HostApi`] double and
//! hosts that load the test guests from `plugins/testing/`.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::{Arc, Mutex, PoisonError};

use hie_core::{Envelope, Failure, HostApi, LogLevel};
use hie_wasm::{Component, HostConfig, ItemContext, WasmHost};

/// One host import call as the engine side saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Log {
        item: String,
        level: LogLevel,
        text: String,
    },
    Lookup {
        table: String,
        key: String,
    },
    Send {
        from: String,
        target: String,
        msg: Envelope,
    },
    SendSync {
        from: String,
        target: String,
        msg: Envelope,
        timeout_ms: u32,
    },
    SendAsync {
        from: String,
        target: String,
        msg: Envelope,
    },
    Counter {
        item: String,
        name: String,
        value: u64,
    },
    Histogram {
        item: String,
        name: String,
        value: f64,
    },
}

/// A [`HostApi`] that records every call. Lookups know `facilities/F1`;
/// `send-request-sync` answers `pong`; `send-request-async` returns `corr-1`.
#[derive(Debug, Default)]
pub struct RecordingHost {
    calls: Mutex<Vec<Call>>,
}

impl RecordingHost {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn record(&self, call: Call) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

impl HostApi for RecordingHost {
    fn log(&self, item: &str, level: LogLevel, text: &str) {
        self.record(Call::Log {
            item: item.into(),
            level,
            text: text.into(),
        });
    }

    fn lookup(&self, table: &str, key: &str) -> Option<String> {
        self.record(Call::Lookup {
            table: table.into(),
            key: key.into(),
        });
        (table == "facilities" && key == "F1").then(|| "Facility One".to_owned())
    }

    fn send(&self, from: &str, target: &str, msg: Envelope) -> Result<(), Failure> {
        self.record(Call::Send {
            from: from.into(),
            target: target.into(),
            msg,
        });
        Ok(())
    }

    fn send_request_sync(
        &self,
        from: &str,
        target: &str,
        msg: Envelope,
        timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        let reply = msg.derive(target, "pong");
        self.record(Call::SendSync {
            from: from.into(),
            target: target.into(),
            msg,
            timeout_ms,
        });
        Ok(reply)
    }

    fn send_request_async(&self, from: &str, target: &str, msg: Envelope) -> Result<String, Failure> {
        self.record(Call::SendAsync {
            from: from.into(),
            target: target.into(),
            msg,
        });
        Ok("corr-1".into())
    }

    fn counter_add(&self, item: &str, name: &str, value: u64) {
        self.record(Call::Counter {
            item: item.into(),
            name: name.into(),
            value,
        });
    }

    fn histogram_record(&self, item: &str, name: &str, value: f64) {
        self.record(Call::Histogram {
            item: item.into(),
            name: name.into(),
            value,
        });
    }
}

/// A host without an on-disk cache (tests of the cache make their own).
pub fn host() -> WasmHost {
    WasmHost::new(HostConfig {
        cache_dir: None,
        max_instances: 200,
        ..HostConfig::default()
    })
    .expect("host")
}

/// Builds and loads a test guest from `plugins/testing/`.
pub fn load(host: &WasmHost, package: &str) -> Arc<Component> {
    let path = hie_tests::build_plugin(package);
    host.load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A context for item `router` with a recording host.
pub fn context(host: &Arc<RecordingHost>) -> ItemContext {
    ItemContext::new("router", host.clone())
}

/// A message whose body is a command for the `wasm-guest` plugin.
pub fn command(body: &str) -> Envelope {
    Envelope::hl7("mllp-in", body.to_owned())
}
