//! The checked form: a production that passed every check that needs no I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A checked production.
#[derive(Debug, Clone, PartialEq)]
pub struct Production {
    /// Name of the production.
    pub name: String,
    /// The production file.
    pub file: PathBuf,
    /// The directory holding the production file; relative paths start here.
    pub dir: PathBuf,
    /// Directory for state (store, dead letters), absolute or relative to `dir`.
    pub data_dir: PathBuf,
    /// How long a stop waits for in-flight messages.
    pub drain_timeout: Duration,
    /// The durable message store.
    pub store: StoreSettings,
    /// The admin API (`[admin]`); `None`: not served unless `hie run --admin` asks.
    pub admin: Option<AdminSettings>,
    /// Log levels (`[log]`).
    pub log: LogSettings,
    /// Lookup tables: table name → key → value.
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    /// Message hooks that items may attach.
    pub hooks: Vec<HookConfig>,
    /// Items, in file order.
    pub items: Vec<ItemConfig>,
}

impl Production {
    /// The item called `name`.
    pub fn item(&self, name: &str) -> Option<&ItemConfig> {
        self.items.iter().find(|i| i.name == name)
    }

    /// The hook called `name`.
    pub fn hook(&self, name: &str) -> Option<&HookConfig> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

/// Where messages are persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// Embedded SQLite in the data directory (durable; the default).
    Sqlite,
    /// Nothing is persisted: a crash loses queued messages (benchmarks, tests).
    None,
}

/// `[store]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Backend.
    pub backend: StoreBackend,
    /// De-duplication window of upstream (MSH-3, MSH-4, MSH-10).
    pub dedup_window: Duration,
    /// Background purge of finished messages older than this; `None`: keep them.
    pub retention: Option<Duration>,
    /// How often the background purge runs.
    pub retention_interval: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Sqlite,
            dedup_window: Duration::from_secs(24 * 3600),
            retention: None,
            retention_interval: Duration::from_secs(3600),
        }
    }
}

/// `[admin]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Address to listen on (loopback by default).
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token, resolved against the production directory.
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// PEM certificate chain and key, to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[log]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// Level of the whole production, if set.
    pub level: Option<String>,
    /// Level per item name.
    pub items: BTreeMap<String, String>,
}

/// Where in the production file something was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
}

/// The role of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// Inbound: turns what an adapter receives into messages.
    Service,
    /// Routing and orchestration.
    Process,
    /// Outbound: hands messages to an adapter.
    Operation,
}

impl ItemKind {
    /// The word used in the production file.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Service => "service",
            ItemKind::Process => "process",
            ItemKind::Operation => "operation",
        }
    }

    /// The WIT world a plugin for this kind must target.
    pub fn world(self) -> PluginWorld {
        match self {
            ItemKind::Service => PluginWorld::BusinessService,
            ItemKind::Process => PluginWorld::BusinessProcess,
            ItemKind::Operation => PluginWorld::BusinessOperation,
        }
    }
}

/// The WIT worlds of `hie:plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginWorld {
    /// `business-service`.
    BusinessService,
    /// `business-process`.
    BusinessProcess,
    /// `business-operation`.
    BusinessOperation,
    /// `message-hook`.
    MessageHook,
}

impl PluginWorld {
    /// The world's name in the WIT package.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginWorld::BusinessService => "business-service",
            PluginWorld::BusinessProcess => "business-process",
            PluginWorld::BusinessOperation => "business-operation",
            PluginWorld::MessageHook => "message-hook",
        }
    }
}

/// A plugin as written: a standard name looked up in the plugin search path, or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A standard plugin name such as `hl7-router`.
    Standard(String),
    /// A path to a `.wasm` component, resolved against the production directory.
    File(PathBuf),
}

/// A plugin reference plus, once resolved, the file it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// As written.
    pub reference: PluginRef,
    /// The component file; `None` until [`crate::resolve_plugins`] ran.
    pub path: Option<PathBuf>,
    /// Where the `plugin` field is.
    pub location: Location,
}

/// A `[[hooks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    /// Name.
    pub name: String,
    /// Its plugin (world `message-hook`).
    pub plugin: PluginSpec,
    /// Settings passed to `init`.
    pub settings: BTreeMap<String, String>,
    /// Limits per call.
    pub limits: Limits,
}

/// One item of the production.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemConfig {
    /// Unique name.
    pub name: String,
    /// Role.
    pub kind: ItemKind,
    /// Business logic; `None` means the built-in behaviour (a service passes
    /// each message to its targets; an operation hands the body to its adapter).
    pub plugin: Option<PluginSpec>,
    /// Adapter, for services and operations.
    pub adapter: Option<AdapterConfig>,
    /// Whether the item starts enabled.
    pub enabled: bool,
    /// Number of workers.
    pub pool_size: usize,
    /// How workers run.
    pub execution: Execution,
    /// The input queue.
    pub queue: QueueConfig,
    /// Worker restart policy.
    pub restart: RestartConfig,
    /// Message retry policy.
    pub retry: RetryConfig,
    /// How long a `send-request-async` waits for its reply before `on-reply` gets a timeout.
    pub request_timeout: Duration,
    /// Settings for `on-init`.
    pub settings: BTreeMap<String, String>,
    /// Hooks, in calling order.
    pub hooks: Vec<String>,
    /// Targets of a `pass` outcome.
    pub targets: Vec<String>,
    /// Limits per plugin call.
    pub limits: Limits,
    /// Capabilities granted to the plugin.
    pub grants: Grants,
    /// Where the item starts in the file.
    pub location: Location,
}

/// An adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterConfig {
    /// MLLP listener.
    MllpIn(MllpInConfig),
    /// MLLP client.
    MllpOut(MllpOutConfig),
    /// Directory poller.
    FileIn(FileInConfig),
    /// File writer.
    FileOut(FileOutConfig),
}

impl AdapterConfig {
    /// The `type` word.
    pub fn type_name(&self) -> &'static str {
        match self {
            AdapterConfig::MllpIn(_) => "mllp-in",
            AdapterConfig::MllpOut(_) => "mllp-out",
            AdapterConfig::FileIn(_) => "file-in",
            AdapterConfig::FileOut(_) => "file-out",
        }
    }
}

/// When an inbound MLLP message is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `AA` once the message is committed to the store (`AR` if it cannot be stored or
    /// the queue refuses it). The default; `accept` is a deprecated alias.
    Commit,
    /// Stored first, then `AA`/`AE`/`AR` after the first process (or operation) handled it.
    Application,
    /// `AA` before the message is stored: a crash can lose ACKed messages. Unsafe.
    Immediate,
    /// Stored, and no ACK is sent at all.
    Never,
}

/// `mllp-in` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MllpInConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free port).
    pub port: u16,
    /// When to ACK.
    pub ack_mode: AckMode,
    /// Most connections at once.
    pub max_connections: usize,
    /// Application mode: most time to wait for the route before `AE`.
    pub ack_timeout: Duration,
    /// Frames of one connection being worked on at once (pipelining); their ACKs
    /// still go back in frame order.
    pub max_in_flight: usize,
    /// Priority given to each inbound message.
    pub priority: InboundPriority,
}

/// The priority (0–9) an inbound adapter gives a message: the first rule whose
/// field matches, else `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPriority {
    /// Priority when no rule matches.
    pub default: u8,
    /// Rules, tried in order.
    pub rules: Vec<PriorityRule>,
}

impl Default for InboundPriority {
    fn default() -> Self {
        InboundPriority {
            default: 4,
            rules: Vec::new(),
        }
    }
}

/// `{ field = "MSH-9", equals = "ORM^O01", priority = 7 }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRule {
    /// HL7 field path.
    pub field: String,
    /// The value it must have; `ORM^O01` also matches `ORM^O01^ORM_O01` (leading components).
    pub equals: String,
    /// Priority of a matching message.
    pub priority: u8,
}

/// `mllp-out` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MllpOutConfig {
    /// Peer host.
    pub host: String,
    /// Peer port.
    pub port: u16,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// ACK wait.
    pub ack_timeout: Duration,
    /// Frames sent before their ACKs are read (1: each waits for the one before
    /// it to be ACKed). Above 1 the operation's worker sends up to this many queued
    /// messages back to back on its connection, then reads their ACKs in order.
    pub max_in_flight: usize,
    /// Reply-code policy text (`None`: the MLLP client's default); parsed when the engine is built.
    pub reply_actions: Option<String>,
    /// Line of the `reply_actions` field, for errors found when it is parsed.
    pub reply_actions_location: Location,
}

/// `file-in` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInConfig {
    /// Directory polled.
    pub dir: PathBuf,
    /// Only names ending with this.
    pub suffix: String,
    /// Only names matching one of these wildcard patterns (`*`, `?`); empty: any.
    pub file_spec: Vec<String>,
    /// Where a file is moved while it is read; `None`: a hidden name in `dir`.
    pub work_dir: Option<PathBuf>,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Where processed files go.
    pub archive_dir: PathBuf,
    /// Priority given to each inbound message.
    pub priority: InboundPriority,
}

/// `file-out` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutConfig {
    /// Directory written.
    pub dir: PathBuf,
    /// Name template as written.
    pub filename: String,
    /// The parsed name template (HIE `{id}`/`{session}`/`{n}` and IRIS `%` codes).
    pub filename_spec: crate::FilenameSpec,
    /// Append to an existing file rather than replacing it.
    pub append: bool,
    /// Segment terminator to write; `None`: the body's own.
    pub segment_terminator: Option<SegmentTerminator>,
}

/// The segment terminator a `file-out` writes between HL7 segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentTerminator {
    /// `\r`, as HL7 v2 and MLLP use.
    Cr,
    /// `\n`.
    Lf,
    /// `\r\n` (the IRIS file operation default).
    CrLf,
}

impl SegmentTerminator {
    /// The bytes written after each segment.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            SegmentTerminator::Cr => b"\r",
            SegmentTerminator::Lf => b"\n",
            SegmentTerminator::CrLf => b"\r\n",
        }
    }
}

/// How an item's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// Workers on the runtime's blocking pool, `pool_size` of them.
    Async,
    /// One dedicated thread, strictly serial.
    SingleProcess,
    /// N dedicated OS threads.
    ThreadPool {
        /// Threads.
        threads: usize,
    },
    /// N worker processes with M threads each.
    MultiProcess {
        /// Processes.
        processes: usize,
        /// Threads per process.
        threads: usize,
    },
}

/// Queue discipline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// First in, first out.
    Fifo,
    /// Highest priority first (0–9), FIFO within a priority.
    Priority,
    /// Last in, first out.
    Lifo,
    /// FIFO per key, parallel across keys.
    Keyed {
        /// HL7 path of the key, e.g. `PID-3`.
        key: String,
    },
}

/// What a full queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Make the sender wait (backpressure up to the socket).
    Block,
    /// Refuse it (a NAK for an inbound message).
    Reject,
    /// Move it to the dead-letter queue.
    DeadLetter,
}

/// An item's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Discipline.
    pub kind: QueueKind,
    /// Most messages waiting.
    pub capacity: usize,
    /// Overflow behaviour.
    pub overflow: Overflow,
}

/// When a failed worker is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never; the item is marked failed.
    Never,
    /// After a failure, until the intensity limit; then the item is failed.
    OnFailure,
    /// After any worker exit that the engine did not ask for (trap, failed
    /// instantiation, `on-start` refusal), without end: past the intensity limit
    /// it restarts at `max_backoff` and alerts instead of failing the item.
    Always,
}

/// Restart policy with backoff and intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    /// Policy.
    pub policy: RestartPolicy,
    /// Most restarts within `within`; one more marks the item failed.
    pub max_restarts: u32,
    /// Intensity window.
    pub within: Duration,
    /// First backoff; doubles per restart.
    pub backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

/// Message retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Most attempts, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
    /// Largest wait.
    pub max_backoff: Duration,
}

/// Limits per plugin call; `None` means the host default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Linear memory cap in bytes.
    pub memory: Option<u64>,
    /// Wall-clock deadline.
    pub deadline: Option<Duration>,
    /// Fuel.
    pub fuel: Option<u64>,
    /// Cap on returned bytes.
    pub max_output: Option<u64>,
}

/// Capabilities granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// Directories it may open.
    pub dirs: Vec<PathBuf>,
    /// Environment variables it may read.
    pub env: Vec<String>,
}
