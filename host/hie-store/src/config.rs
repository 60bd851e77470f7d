use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Settings of a [`crate::SqliteStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How long an upstream (sending app, facility, control id) is remembered for
    /// de-duplication.
    pub dedup_window: Duration,
    /// Read-only connections kept open for queries.
    pub read_connections: usize,
    /// Most write operations drained into one transaction (one fsync).
    pub max_ops_per_commit: usize,
    /// Write batches that may wait for the writer before submitters block.
    pub queue_capacity: usize,
    /// While faulted, least time between probe writes triggered by new intake.
    pub probe_interval: Duration,
    /// Bytes a probe write must be able to commit before intake resumes after a fault.
    pub probe_bytes: u64,
    /// Run `PRAGMA quick_check` when opening an existing file (reads the whole file).
    pub check_on_open: bool,
    /// Test hook that makes commits fail as a failing disk would.
    pub fault_injector: Option<FaultInjector>,
    /// Source of "now" for timestamps and the de-duplication window.
    pub clock: Clock,
    /// Nice level the writer thread asks for (below 0: more CPU than the other
    /// threads when they compete for it; 0: leave it). Every ACK of a persisted
    /// message waits for that one thread, so on a busy machine its share of the CPU
    /// bounds the persisted rate. Needs `CAP_SYS_NICE` or a nice limit (systemd
    /// `LimitNICE=`); without either the writer runs at the process's level.
    pub writer_nice: i32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            dedup_window: Duration::from_secs(24 * 3600),
            read_connections: 4,
            max_ops_per_commit: 4096,
            queue_capacity: 65_536,
            probe_interval: Duration::from_secs(1),
            probe_bytes: 1024 * 1024,
            check_on_open: true,
            fault_injector: None,
            clock: Clock::System,
            writer_nice: -10,
        }
    }
}

/// Makes the writer fail its commits (rolled back just before `COMMIT`) while set,
/// so tests can see what callers get from a failing disk.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    fail_commits: Arc<AtomicBool>,
    injected: Arc<AtomicU64>,
}

impl FaultInjector {
    /// A new injector that fails nothing yet.
    pub fn new() -> Self {
        FaultInjector::default()
    }

    /// Make every following commit (and probe) fail, or stop doing so.
    pub fn fail_commits(&self, fail: bool) {
        self.fail_commits.store(fail, Ordering::SeqCst);
    }

    /// How many commits were failed on purpose so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    pub(crate) fn should_fail(&self) -> bool {
        let fail = self.fail_commits.load(Ordering::SeqCst);
        if fail {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        fail
    }
}

/// Where the store takes the current time from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock the caller moves (tests of time windows).
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => hie_core::now_ms(),
            Clock::Manual(m) => m.now_ms(),
        }
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms` milliseconds since the Unix epoch.
    pub fn new(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// The time shown.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}
