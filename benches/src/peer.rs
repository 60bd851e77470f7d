//! The comparison peer: `benches/peer/hl7_passthrough.py` (Python asyncio and the
//! `hl7` package from PyPI) in front of one `hie listen` sink.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::procs::{Guard, wait_for_port};

/// The peer's script in this crate.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peer")
        .join("hl7_passthrough.py")
}

/// A running peer.
pub struct Peer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    guard: Guard,
}

impl Peer {
    /// The venv's python (`hie_tests::hl7_python`, installing `hl7` on first use), or
    /// why there is none.
    pub fn python() -> Result<&'static Path, String> {
        hie_tests::hl7_python().map_err(str::to_owned)
    }

    /// Start the peer forwarding to `127.0.0.1:downstream`.
    ///
    /// # Panics
    ///
    /// If it does not start or print its port.
    pub fn start(python: &Path, downstream: u16) -> Peer {
        let mut child = Command::new(python)
            .arg(script())
            .args(["0", "127.0.0.1", &downstream.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {}: {e}", python.display(), script().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let guard = Guard(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the peer's port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{} printed {line:?} instead of its port (its stderr is above)",
                script().display()
            )
        });
        wait_for_port(port);
        Peer { port, guard }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// SIGTERM and wait.
    pub fn stop(self) {
        self.guard.terminate();
    }
}
