//! Helpers of the durability tests: a production that is started, killed and
//! restarted on the same data directory, a retrying MLLP sender, and reading the
//! store file after the engine is gone.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Proc, free_port, plugin_dir, wait_for_port};

/// A production directory kept across runs of `hie run` (the store lives in `data/`).
pub struct Durable {
    /// The temp dir with `production.toml` and `data/`.
    pub dir: tempfile::TempDir,
    /// The inbound MLLP port.
    pub port: u16,
    /// The control socket path.
    pub control: PathBuf,
    /// Extra environment for every run.
    env: Vec<(String, String)>,
    plugins: Vec<String>,
    /// The running `hie run`, if any.
    pub proc: Option<Proc>,
}

impl Durable {
    /// Write a production made by `toml(inbound_port)`; nothing runs yet.
    pub fn new(toml: impl FnOnce(u16) -> String, plugins: &[&str]) -> Durable {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(dir.path().join("production.toml"), toml(port)).unwrap();
        let control = dir.path().join("control.sock");
        Durable {
            dir,
            port,
            control,
            env: Vec::new(),
            plugins: plugins.iter().map(|p| p.to_string()).collect(),
            proc: None,
        }
    }

    /// Add an environment variable to every following run.
    pub fn env(mut self, key: &str, value: &str) -> Durable {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The store file.
    pub fn store_file(&self) -> PathBuf {
        self.dir.path().join("data").join("hie-store.sqlite")
    }

    /// Spawn `hie run` without waiting for it to be ready.
    pub fn spawn(&mut self) -> &mut Proc {
        let plugin_path = if self.plugins.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = self.plugins.iter().map(String::as_str).collect();
            plugin_dir(&names).display().to_string()
        };
        let mut env: Vec<(&str, &str)> =
            vec![("HIE_PLUGIN_PATH", plugin_path.as_str()), ("RUST_LOG", "info")];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let proc = Proc::hie(
            "hie run",
            &[
                "run",
                self.dir.path().to_str().unwrap(),
                "--log-format",
                "json",
                "--control",
                self.control.to_str().unwrap(),
            ],
            &env,
        );
        self.proc.insert(proc)
    }

    /// Start `hie run` and wait until its listener accepts connections.
    pub fn start(&mut self) {
        let port = self.port;
        // logged after "production started": the control socket is then usable too
        self.spawn()
            .wait_for_line("control socket open", Duration::from_secs(60));
        wait_for_port(port);
    }

    /// `kill -9` the running engine and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(nix::sys::signal::Signal::SIGKILL);
            p.wait_exit(Duration::from_secs(10));
        }
    }

    /// SIGTERM the running engine and wait for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut p = self.proc.take().expect("a running engine");
        p.signal(nix::sys::signal::Signal::SIGTERM);
        p.wait_exit(Duration::from_secs(30))
    }

    /// The running engine's output so far.
    pub fn dump(&self) -> String {
        self.proc.as_ref().map(|p| p.dump()).unwrap_or_default()
    }
}

/// An HL7 ADT message from sending application `SND` at facility `FAC`.
pub fn adt(control_id: &str) -> String {
    format!(
        "MSH|^~\\&|SND|FAC|RCV|FAC|20260101000000||ADT^A01|{control_id}|P|2.5\rPID|1||P{control_id}^^^FAC||DOE^JANE\r"
    )
}

/// One MLLP connection that gives up quietly (for senders that retry).
pub struct Conn(TcpStream);

impl Conn {
    /// Connect to `127.0.0.1:port`; `None` if nobody listens.
    pub fn open(port: u16, timeout: Duration) -> Option<Conn> {
        let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Conn(s))
    }

    /// Send one frame and read one reply frame; `None` on any error.
    pub fn call(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut frame = Vec::with_capacity(payload.len() + 3);
        frame.push(0x0b);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&[0x1c, 0x0d]);
        self.0.write_all(&frame).ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.ends_with(&[0x1c, 0x0d]) {
            let n = self.0.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let start = reply.iter().position(|b| *b == 0x0b)? + 1;
        Some(reply[start..reply.len() - 2].to_vec())
    }

    /// Write every frame, let replies pile up unread for `wait`, then close: with
    /// unread data the kernel resets the connection, so the engine's next reply
    /// write fails while frames are still being committed.
    pub fn send_and_reset(mut self, payloads: &[String], wait: Duration) {
        let mut frames = Vec::new();
        for payload in payloads {
            frames.push(0x0b);
            frames.extend_from_slice(payload.as_bytes());
            frames.extend_from_slice(&[0x1c, 0x0d]);
        }
        let _ = self.0.write_all(&frames);
        std::thread::sleep(wait);
    }

    /// Send every frame without waiting, then read one reply per frame, in order
    /// (a sender with a window as wide as `payloads`); `None` on any error.
    pub fn pipeline(&mut self, payloads: &[String]) -> Option<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        for payload in payloads {
            frames.push(0x0b);
            frames.extend_from_slice(payload.as_bytes());
            frames.extend_from_slice(&[0x1c, 0x0d]);
        }
        let mut writer = self.0.try_clone().ok()?;
        let sending = std::thread::spawn(move || writer.write_all(&frames).is_ok());
        let mut replies = Vec::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        while replies.len() < payloads.len() {
            let n = self.0.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(2).position(|w| w == [0x1c, 0x0d]) {
                let frame: Vec<u8> = pending.drain(..end + 2).collect();
                let start = frame.iter().position(|b| *b == 0x0b)? + 1;
                replies.push(frame[start..frame.len() - 2].to_vec());
            }
        }
        sending.join().ok()?.then_some(replies)
    }
}

/// MSA-1 and MSA-3 of an ACK (empty strings if there is no MSA).
pub fn msa(ack: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(ack);
    let Some(seg) = text.split('\r').find(|s| s.starts_with("MSA|")) else {
        return (String::new(), String::new());
    };
    let f: Vec<&str> = seg.split('|').collect();
    (
        f.get(1).unwrap_or(&"").to_string(),
        f.get(3).unwrap_or(&"").to_string(),
    )
}

/// What a retrying sender did.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Control ids that got `AA`.
    pub acked: Vec<String>,
    /// Sends that got no reply or a reply other than `AA` and were sent again.
    pub retries: u64,
}

/// Send `ids` one by one on one connection, sending each again (on a new connection
/// if need be) until it gets `AA`, giving up after `deadline`.
pub fn send_until_acked(port: u16, ids: &[String], deadline: Instant, progress: &AtomicUsize) -> SendReport {
    let mut report = SendReport::default();
    let mut conn: Option<Conn> = None;
    for id in ids {
        let body = adt(id);
        loop {
            assert!(Instant::now() < deadline, "sender gave up: {id} never got AA");
            if conn.is_none() {
                conn = Conn::open(port, Duration::from_secs(5));
                if conn.is_none() {
                    std::thread::sleep(Duration::from_millis(20)); // the engine is restarting
                    continue;
                }
            }
            match conn.as_mut().and_then(|c| c.call(body.as_bytes())) {
                Some(ack) if msa(&ack).0 == "AA" => {
                    report.acked.push(id.clone());
                    progress.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Some(_) => report.retries += 1,
                None => {
                    report.retries += 1;
                    conn = None;
                }
            }
        }
    }
    report
}

/// Control ids a `hie listen --out` sink received, with how many times each.
pub fn sink_counts(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_suffix(".hl7")
            .and_then(|n| n.split_once('_'))
            .map(|(_, id)| id.to_string())
        {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

/// Control ids of a sink in arrival order.
pub fn sink_order(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hl7"))
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| {
            n.strip_suffix(".hl7")?
                .split_once('_')
                .map(|(_, id)| id.to_string())
        })
        .collect()
}

/// Run a query on the store file of a stopped engine.
pub fn store_query<T>(
    file: &Path,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the store file");
    let mut stmt = conn.prepare(sql).expect("prepare");
    stmt.query_map([], row)
        .expect("query")
        .collect::<rusqlite::Result<Vec<T>>>()
        .expect("rows")
}
