//! The real `hie run` with a production written for a bench, and `hie listen` sinks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::{Guard, free_port, spawn, spawn_with, wait_for_port};

/// The `hie` binary and the directory of the standard plugins.
pub struct Hie {
    /// `hie` (release when built by `cargo bench`).
    pub bin: PathBuf,
    /// Directory holding `passthrough.wasm`, `hl7_router.wasm`, `hl7_mapper.wasm`.
    pub plugins: PathBuf,
}

impl Hie {
    /// `$HIE_BIN` or the workspace's `hie` built for this profile; `$HIE_PLUGIN_PATH`
    /// or the standard plugins built for wasm32-wasip2.
    pub fn from_env() -> Hie {
        let bin = hie_tests::hie_binary().to_path_buf();
        let plugins = match std::env::var_os("HIE_PLUGIN_PATH").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => {
                hie_tests::build_plugin("passthrough");
                hie_tests::build_plugin("hl7-mapper");
                let router = hie_tests::build_plugin("hl7-router");
                router
                    .parent()
                    .expect("a plugin component lies in a directory")
                    .to_path_buf()
            }
        };
        Hie { bin, plugins }
    }

    /// `n` sinks: `hie listen PORT --every 0s --json`, each ACKing AA.
    pub fn start_sinks(&self, n: usize) -> Vec<Sink> {
        let sinks: Vec<Sink> = (0..n)
            .map(|_| {
                let port = free_port();
                let guard = spawn_with(
                    &self.bin,
                    &["listen", &port.to_string(), "--every", "0s", "--json"],
                    &[],
                    Stdio::piped(),
                );
                Sink { port, guard }
            })
            .collect();
        for s in &sinks {
            wait_for_port(s.port);
        }
        sinks
    }

    /// Write `toml` as `production.toml` of a fresh directory and start `hie run` on it
    /// with a control socket; returns once `inbound` accepts connections.
    pub fn start_production(&self, toml: &str, inbound: u16, sinks: Vec<Sink>) -> Running {
        let dir = tempfile::tempdir().expect("a temporary directory for the production");
        std::fs::write(dir.path().join("production.toml"), toml).expect("write production.toml");
        let control = dir.path().join("control.sock");
        let engine = spawn(
            &self.bin,
            &[
                "run",
                dir.path().to_str().expect("temporary paths are UTF-8"),
                "--control",
                control.to_str().expect("temporary paths are UTF-8"),
            ],
            &[("HIE_PLUGIN_PATH", &self.plugins)],
        );
        wait_for_port(inbound);
        Running {
            inbound,
            control,
            engine: Some(engine),
            sinks,
            dir,
        }
    }
}

/// One `hie listen` process.
pub struct Sink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    guard: Guard,
}

impl Sink {
    /// Stop it (SIGTERM) and return the messages it received, from its JSON report.
    pub fn stop(self) -> u64 {
        let out = self.guard.terminate();
        serde_json::from_str::<Value>(out.trim())
            .ok()
            .and_then(|v| v.pointer("/sink/messages").and_then(Value::as_u64))
            .unwrap_or(0)
    }
}

/// A running production with its sinks.
pub struct Running {
    /// Port of its `mllp-in` on 127.0.0.1.
    pub inbound: u16,
    control: PathBuf,
    engine: Option<Guard>,
    sinks: Vec<Sink>,
    dir: tempfile::TempDir,
}

impl Running {
    /// The engine's process id.
    pub fn pid(&self) -> u32 {
        self.engine.as_ref().map_or(0, Guard::pid)
    }

    /// The production directory (its data directory is `data/` below it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes of every file in the production's data directory (the store).
    pub fn store_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.dir.path().join("data"))
    }

    /// One command on the control socket; its one-line answer.
    pub fn control(&self, command: &str) -> String {
        use std::io::BufRead;
        let mut s = std::os::unix::net::UnixStream::connect(&self.control)
            .unwrap_or_else(|e| panic!("control socket {}: {e}", self.control.display()));
        s.write_all(format!("{command}\n").as_bytes())
            .expect("write to the control socket");
        let mut line = String::new();
        std::io::BufReader::new(s)
            .read_line(&mut line)
            .expect("read from the control socket");
        line.trim_end().to_string()
    }

    /// Wait until no queue holds or works on a message; false after `limit`.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let status = self.control("status");
            let busy = status
                .split_whitespace()
                .skip(1)
                .any(|item| !(item.contains("/depth:0/") && item.contains("/in_flight:0/")));
            if !busy {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Stop the sinks and sum the messages they received (the engine keeps running
    /// until dropped).
    pub fn stop_sinks(&mut self) -> u64 {
        std::mem::take(&mut self.sinks).into_iter().map(Sink::stop).sum()
    }

    /// Stop the engine as an operator would (SIGTERM: drain, close the store, which
    /// checkpoints the WAL into the database file), then the sinks.
    pub fn stop(mut self) -> Stopped {
        let store_bytes_running = self.store_bytes();
        if let Some(engine) = self.engine.take() {
            engine.terminate();
        }
        Stopped {
            store_bytes_running,
            store_bytes: self.store_bytes(),
            delivered: self.stop_sinks(),
        }
    }
}

/// What [`Running::stop`] found.
pub struct Stopped {
    /// Bytes of the data directory while the engine ran (database, WAL, shared memory).
    pub store_bytes_running: u64,
    /// Bytes of the data directory once the engine had stopped.
    pub store_bytes: u64,
    /// Messages the sinks received.
    pub delivered: u64,
}
