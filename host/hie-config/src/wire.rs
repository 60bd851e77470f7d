//! The wire form: `production.toml` exactly as written, deserialized with serde.
//!
//! Every table refuses unknown fields. Values that later checks point at carry
//! their byte span (`Spanned`) so an error can name the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `[production]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductionTable {
    /// Name of the production.
    pub name: Spanned<String>,
    /// Directory for the store and other state, relative to the production file.
    pub data_dir: Option<Spanned<String>>,
    /// Drain timeout on stop, e.g. `"10s"`.
    pub drain_timeout: Option<Spanned<String>>,
}

/// `[store]`: the durable message store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTable {
    /// `sqlite` (the default: durable, in `data_dir`) or `none` (nothing persisted).
    pub backend: Option<Spanned<String>>,
    /// How long an upstream (MSH-3, MSH-4, MSH-10) is remembered for de-duplication.
    pub dedup_window: Option<Spanned<String>>,
    /// Purge finished messages older than this in the background (absent: keep them).
    pub retention: Option<Spanned<String>>,
    /// How often the background purge runs.
    pub retention_interval: Option<Spanned<String>>,
}

/// A `[[hooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookTable {
    /// Name that items list in their `hooks`.
    pub name: Spanned<String>,
    /// Plugin: a standard name or a path to a `.wasm` file.
    pub plugin: Spanned<String>,
    /// Settings passed to the hook's `init`.
    #[serde(default)]
    pub settings: BTreeMap<String, Spanned<SettingValue>>,
    /// Resource limits per call.
    pub limits: Option<Spanned<LimitsTable>>,
}

/// An `[[items]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemTable {
    /// Unique name of the item.
    pub name: Spanned<String>,
    /// `service`, `process` or `operation`.
    pub kind: Spanned<String>,
    /// Plugin: a standard name or a path to a `.wasm` file.
    pub plugin: Option<Spanned<String>>,
    /// Inbound or outbound adapter.
    pub adapter: Option<Spanned<AdapterTable>>,
    /// Whether the item starts enabled (default true).
    pub enabled: Option<bool>,
    /// Number of workers (default 1).
    pub pool_size: Option<Spanned<i64>>,
    /// How workers run.
    pub execution: Option<Spanned<ExecutionTable>>,
    /// The item's input queue.
    pub queue: Option<Spanned<QueueTable>>,
    /// What happens when a worker fails.
    pub restart: Option<Spanned<RestartTable>>,
    /// Retries of a message whose processing failed with a retryable error.
    pub retry: Option<Spanned<RetryTable>>,
    /// How long a `send-request-async` waits for its reply (default 30s).
    pub request_timeout: Option<Spanned<String>>,
    /// Plugin settings (string map passed to `on-init`).
    #[serde(default)]
    pub settings: BTreeMap<String, Spanned<SettingValue>>,
    /// Names of `[[hooks]]` attached to this item, in calling order.
    #[serde(default)]
    pub hooks: Vec<Spanned<String>>,
    /// Items that receive this item's `pass` outcome.
    #[serde(default)]
    pub targets: Vec<Spanned<String>>,
    /// Resource limits per plugin call.
    pub limits: Option<Spanned<LimitsTable>>,
    /// Capabilities granted to the plugin.
    pub grants: Option<Spanned<GrantsTable>>,
}

/// A setting value: strings as they are; numbers and booleans turned into text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    /// A string.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl SettingValue {
    /// The value as the string a plugin reads.
    pub fn to_text(&self) -> String {
        match self {
            SettingValue::Text(s) => s.clone(),
            SettingValue::Integer(i) => i.to_string(),
            SettingValue::Float(f) => f.to_string(),
            SettingValue::Bool(b) => b.to_string(),
        }
    }
}

/// `adapter = { type = ..., ... }`: one flat table; which fields apply depends on `type`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterTable {
    /// `mllp-in`, `mllp-out`, `file-in` or `file-out`.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// Listen or connect address.
    pub host: Option<Spanned<String>>,
    /// Listen or connect port.
    pub port: Option<Spanned<i64>>,
    /// `mllp-in`: `commit` (ACK once stored, the default), `application` (ACK after the
    /// route), `immediate` (ACK before storing; unsafe) or `never`; `accept` is a
    /// deprecated alias of `commit`.
    pub ack_mode: Option<Spanned<String>>,
    /// `mllp-in`: most connections at once.
    pub max_connections: Option<Spanned<i64>>,
    /// `mllp-in`: frames of one connection worked on at once (default 32).
    pub max_in_flight: Option<Spanned<i64>>,
    /// `mllp-in`, `file-in`: priority (0–9) of inbound messages no rule matches.
    pub priority: Option<Spanned<i64>>,
    /// `mllp-in`, `file-in`: priority rules, first match wins.
    pub priority_rules: Option<Vec<Spanned<PriorityRuleTable>>>,
    /// `mllp-in` in application mode, `mllp-out`: how long to wait for the reply.
    pub ack_timeout: Option<Spanned<String>>,
    /// `mllp-out`: connect timeout.
    pub connect_timeout: Option<Spanned<String>>,
    /// `mllp-out`: reply-code policy, IRIS (`":?R=RF,:?E=S"`) or native
    /// (`"accept=complete, error=retry-then-fail"`) spelling.
    pub reply_actions: Option<Spanned<String>>,
    /// `file-in`, `file-out`: the directory.
    pub dir: Option<Spanned<String>>,
    /// `file-in`: only files whose name ends with this suffix (e.g. `.hl7`).
    pub suffix: Option<Spanned<String>>,
    /// `file-in`: only files whose name matches one of these wildcard patterns
    /// (`*` any run of characters, `?` one character), separated by `;`, e.g.
    /// `"*.hl7;*.txt"` (IRIS `FileSpec`).
    pub file_spec: Option<Spanned<String>>,
    /// `file-in`: a file is moved here while it is being read (IRIS `WorkPath`);
    /// default: a hidden name in `dir`.
    pub work_dir: Option<Spanned<String>>,
    /// `file-in`: poll interval.
    pub poll_interval: Option<Spanned<String>>,
    /// `file-in`: where processed files go (default `<dir>/archive`).
    pub archive_dir: Option<Spanned<String>>,
    /// `file-out`: file name template: `{id}`, `{session}` and `{n}` are replaced,
    /// and IRIS `Filename` codes (`%f`, `%Q`, `%Y%m%d`, `%!+(_a)`, …) are applied.
    pub filename: Option<Spanned<String>>,
    /// `file-out`: append to a file that exists already (IRIS `Overwrite=0`)
    /// instead of replacing it (the default).
    pub append: Option<Spanned<bool>>,
    /// `file-out`: segment terminator written between HL7 segments: `"cr"`, `"lf"`
    /// or `"crlf"` (default: the body is written as it is).
    pub segment_terminator: Option<Spanned<String>>,
}

/// `{ field = "MSH-9", equals = "ORM^O01", priority = 7 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRuleTable {
    /// HL7 field path.
    pub field: Spanned<String>,
    /// Value the field must have.
    pub equals: Spanned<String>,
    /// Priority 0–9 of a matching message.
    pub priority: Spanned<i64>,
}

/// `execution = { mode = ..., threads = N, processes = N }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionTable {
    /// `async`, `single_process`, `thread_pool` or `multi_process`.
    pub mode: Spanned<String>,
    /// Threads (thread_pool) or threads per process (multi_process).
    pub threads: Option<Spanned<i64>>,
    /// Worker processes (multi_process).
    pub processes: Option<Spanned<i64>>,
}

/// `queue = { kind = ..., key = ..., capacity = N, overflow = ... }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueTable {
    /// `fifo`, `priority`, `lifo` or `keyed`.
    pub kind: Option<Spanned<String>>,
    /// HL7 path giving the key of a keyed queue, e.g. `PID-3`.
    pub key: Option<Spanned<String>>,
    /// Most messages waiting.
    pub capacity: Option<Spanned<i64>>,
    /// `block`, `reject` or `dead-letter`.
    pub overflow: Option<Spanned<String>>,
}

/// `restart = { policy = ..., max_restarts = N, within = "60s", backoff = "100ms", max_backoff = "30s" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartTable {
    /// `never` (a failed worker fails the item), `on-failure` (restart with backoff;
    /// past the intensity limit the item is failed) or `always` (restart with
    /// backoff, past the limit at `max_backoff` with an alert; never failed).
    pub policy: Option<Spanned<String>>,
    /// Most restarts within `within` before the item is marked failed (`on-failure`)
    /// or restarts slow to `max_backoff` with an alert (`always`).
    pub max_restarts: Option<Spanned<i64>>,
    /// The restart-intensity window.
    pub within: Option<Spanned<String>>,
    /// First backoff.
    pub backoff: Option<Spanned<String>>,
    /// Largest backoff.
    pub max_backoff: Option<Spanned<String>>,
}

/// `retry = { max_attempts = N, backoff = "100ms", max_backoff = "10s" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryTable {
    /// Most delivery attempts of one message, the first included.
    pub max_attempts: Option<Spanned<i64>>,
    /// Wait before the first retry; doubles each time.
    pub backoff: Option<Spanned<String>>,
    /// Largest wait between retries.
    pub max_backoff: Option<Spanned<String>>,
}

/// `limits = { memory = "64MiB", deadline = "5s", fuel = N, max_output = "64MiB" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    /// Linear memory cap.
    pub memory: Option<Spanned<SizeValue>>,
    /// Wall-clock deadline per call.
    pub deadline: Option<Spanned<String>>,
    /// Fuel per call.
    pub fuel: Option<Spanned<i64>>,
    /// Cap on bytes a call returns.
    pub max_output: Option<Spanned<SizeValue>>,
}

/// A size: a number of bytes or a string such as `"64MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(i64),
    /// A size with a unit.
    Text(String),
}

/// `grants = { dirs = [...], env = [...] }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsTable {
    /// Directories the plugin may open.
    #[serde(default)]
    pub dirs: Vec<Spanned<String>>,
    /// Environment variables the plugin may read.
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
}

/// `[admin]`: the HTTP admin API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTable {
    /// Address and port, default `127.0.0.1:9090`.
    pub listen: Option<Spanned<String>>,
    /// File holding the bearer token (relative to the production file).
    pub token_file: Option<Spanned<String>>,
    /// Environment variable holding the bearer token.
    pub token_env: Option<Spanned<String>>,
    /// PEM certificate chain, to serve HTTPS.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<Spanned<String>>,
}

/// `[log]`: log levels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTable {
    /// Level of the whole production (`RUST_LOG` wins when set).
    pub level: Option<Spanned<String>>,
    /// `[log.items]`: item name → level of that item's log lines.
    #[serde(default)]
    pub items: BTreeMap<String, Spanned<String>>,
}
