//! Child processes of a bench and what `/proc` says about them: ports, resident
//! memory, CPU time (of a process and all its descendants).

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Kills the child when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then wait for the exit; the child's stdout (if piped) as text.
    pub fn terminate(mut self) -> String {
        use std::io::Read;
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let mut out = String::new();
        if let Some(mut stdout) = self.0.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = self.0.wait();
        out
    }
}

/// The value of an environment variable parsed, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Wait up to a minute for something to listen on `port`.
///
/// # Panics
///
/// If nothing does, naming the port.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after 60 s (did the process fail to start? its stderr is above)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `bin` with `args`, stdout null, stderr inherited, `RUST_LOG=warn`.
pub fn spawn(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Guard {
    spawn_with(bin, args, env, Stdio::null())
}

/// [`spawn`] with the given stdout.
pub fn spawn_with(bin: &Path, args: &[&str], env: &[(&str, &Path)], stdout: Stdio) -> Guard {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Guard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())),
    )
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB; 0 if the process is gone.
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set of `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak resident set of `pid` over its life (`VmHWM`), in KiB.
pub fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Fields of `/proc/PID/stat` after the command name: `[0]` is the state, `[1]` the
/// parent pid, `[11]`/`[12]` user/system time in clock ticks.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

/// `pid` and every live process below it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1).copied()) {
                children.entry(ppid as u32).or_default().push(p);
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids);
        }
        i += 1;
    }
    tree
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if that cannot be run).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) used so far by `pid` and its live descendants
/// (the worker processes of `multi_process`).
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let ticks: u64 = process_tree(pid)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0))
        .sum();
    ticks as f64 / clock_ticks()
}

/// Sum of the peak resident sets (`VmHWM`) of `pid` and its live descendants, in KiB.
pub fn tree_hwm_kib(pid: u32) -> u64 {
    process_tree(pid).into_iter().map(hwm_kib).sum()
}

/// Samples the peak RSS of `pid` every 50 ms until finished.
pub struct PeakRss {
    stop: Option<std::sync::mpsc::Sender<()>>,
    join: Option<std::thread::JoinHandle<u64>>,
}

impl PeakRss {
    /// Start sampling.
    pub fn start(pid: u32) -> PeakRss {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let join = std::thread::spawn(move || {
            let mut peak = rss_kib(pid);
            // until `finish` drops the sender (Disconnected); a timeout is the next sample
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stop_rx.recv_timeout(Duration::from_millis(50))
            {
                peak = peak.max(rss_kib(pid));
            }
            peak
        });
        PeakRss {
            stop: Some(stop_tx),
            join: Some(join),
        }
    }

    /// Stop sampling; the peak in KiB.
    pub fn finish(mut self) -> u64 {
        drop(self.stop.take());
        self.join.take().map(|j| j.join().unwrap_or(0)).unwrap_or(0)
    }
}
