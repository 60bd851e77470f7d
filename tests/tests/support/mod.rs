//! What the end-to-end tests share: the `hie` binary, processes that end with
//! the test, free ports, MLLP sinks (`hie listen`), the control socket, and
//! polling with deadlines.
//!
//! The tests run the real binary, built once per test process by
//! [`hie_tests::hie_binary`].
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `hie` binary, built on first use (see [`hie_tests::hie_binary`]).
pub fn hie_bin() -> &'static Path {
    hie_tests::hie_binary()
}

/// Build `packages` of the plugins workspace for `wasm32-wasip2` and return the
/// directory holding the `.wasm` files, for `HIE_PLUGIN_PATH` (with no packages,
/// a directory that holds none: the production uses built-in logic only).
pub fn plugin_dir(packages: &[&str]) -> PathBuf {
    let mut dir = None;
    for p in packages {
        let wasm = hie_tests::build_plugin(p);
        dir = wasm.parent().map(Path::to_path_buf);
    }
    dir.unwrap_or_else(std::env::temp_dir)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` every 10 ms until it returns `Some`, or panic after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed (and reaped) when dropped; its stderr lines are kept.
pub struct Proc {
    child: Child,
    name: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Start `hie` with `args` and extra environment.
    pub fn hie(name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(hie_bin());
        cmd.args(args)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("hie starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc {
            child,
            name: name.to_string(),
            lines,
        }
    }

    /// Every output line so far (stdout and stderr interleaved).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.contains(needle)).collect()
    }

    /// Wait until a line contains `needle`.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let what = format!("{} to print {needle:?}", self.name);
        let lines = Arc::clone(&self.lines);
        let child = &mut self.child;
        eventually(&what, timeout, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{what}: exited with {status}; output:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
            lines.lock().unwrap().iter().find(|l| l.contains(needle)).cloned()
        })
    }

    /// Send a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal delivered");
    }

    /// Wait for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("{} to exit", self.name);
        let child = &mut self.child;
        eventually(&what, timeout, || child.try_wait().ok().flatten())
    }

    /// The output, for assertion messages.
    pub fn dump(&self) -> String {
        self.lines().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a sink writes its messages: memory-backed (`/dev/shm`) where there is
/// one. A sink ACKs each message after writing its file, so on a slow disk
/// (creating a file costs ~0.7 ms on some VMs) the sinks, not the engine, would
/// set the rate of the load tests.
fn sink_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// An MLLP sink: `hie listen PORT --out DIR`, ready when its port accepts connections.
pub struct Sink {
    /// Its port.
    pub port: u16,
    /// Where it writes each message.
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Sink {
    /// Start a sink on a free port.
    pub fn start(name: &str) -> Sink {
        let port = free_port();
        let dir = sink_dir();
        let proc = Proc::hie(
            name,
            &[
                "listen",
                &port.to_string(),
                "--out",
                dir.path().to_str().unwrap(),
                "--every",
                "0s",
            ],
            &[],
        );
        wait_for_port(port);
        Sink {
            port,
            dir,
            _proc: proc,
        }
    }

    /// The messages received so far, in arrival order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|f| f.extension().is_some_and(|e| e == "hl7"));
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Wait until exactly `n` messages arrived, and return them.
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let got = eventually(
            &format!("sink on {} to receive {n} messages", self.port),
            Duration::from_secs(20),
            || {
                let m = self.messages();
                (m.len() >= n).then_some(m)
            },
        );
        assert_eq!(got.len(), n, "sink on {} got more than {n} messages", self.port);
        got
    }
}

/// Wait until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    eventually(
        &format!("port {port} to accept connections"),
        Duration::from_secs(30),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
    );
}

/// Send one MLLP frame and return the reply payload.
pub fn mllp_call(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(&[0x1c, 0x0d]) {
        s.read_exact(&mut byte).expect("reply");
        reply.push(byte[0]);
    }
    reply[1..reply.len() - 2].to_vec()
}

/// MSA-1 and MSA-3 of an ACK.
pub fn ack_code(ack: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(ack);
    let msa = text
        .split('\r')
        .find(|s| s.starts_with("MSA|"))
        .unwrap_or_else(|| panic!("no MSA in {text:?}"));
    let fields: Vec<&str> = msa.split('|').collect();
    (
        fields.get(1).unwrap_or(&"").to_string(),
        fields.get(3).unwrap_or(&"").to_string(),
    )
}

/// One command on the control socket of `hie run --control PATH`.
pub fn control(path: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(path).expect("control socket");
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

/// A running production: `hie run` on a production file written into a temp dir.
pub struct Production {
    /// The temp dir with `production.toml`.
    pub dir: tempfile::TempDir,
    /// The control socket.
    pub control: PathBuf,
    /// The process.
    pub proc: Proc,
}

impl Production {
    /// Write `toml` and run it with the given plugins on the plugin path, JSON logs.
    pub fn run(toml: &str, plugins: &[&str], inbound_port: Option<u16>) -> Production {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("production.toml"), toml).unwrap();
        let control = dir.path().join("control.sock");
        let plugin_path = plugin_dir(plugins);
        let proc = Proc::hie(
            "hie run",
            &[
                "run",
                dir.path().to_str().unwrap(),
                "--log-format",
                "json",
                "--control",
                control.to_str().unwrap(),
            ],
            &[
                ("HIE_PLUGIN_PATH", plugin_path.to_str().unwrap()),
                ("RUST_LOG", "info"),
            ],
        );
        let mut p = Production { dir, control, proc };
        // the control socket opens after the engine has started: wait for it,
        // or the first control command races its bind
        p.proc
            .wait_for_line("control socket open", Duration::from_secs(60));
        if let Some(port) = inbound_port {
            wait_for_port(port);
        }
        p
    }

    /// A control command.
    pub fn control(&self, command: &str) -> String {
        control(&self.control, command)
    }
}

/// A sample HL7 message.
pub fn hl7(kind: &str, control_id: &str, patient: &str) -> String {
    format!("MSH|^~\\&|SND|FAC|RCV|FAC|20260101000000||{kind}|{control_id}|P|2.5\rPID|1||{patient}\r")
}
