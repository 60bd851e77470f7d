//! Outbound adapters of operations: `mllp-out` (one MLLP connection per worker,
//! replies judged by the reply-code policy) and `file-out` (atomic writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hie_config::{AdapterConfig, FileOutConfig, ItemConfig, MllpOutConfig};
use hie_core::{Envelope, Failure, Outcome, Plugin, PluginError};
use hie_mllp::blocking::BlockingClient;
use hie_mllp::client::{ClientConfig, MllpClient};
use hie_mllp::policy::{FinalAction, ReplyCodeActions, ReplyOutcome};
use tokio::runtime::Handle;

use crate::error::EngineError;
use crate::metrics::{EngineMetrics, MllpOutMetrics};
use crate::outward;
use crate::plugin::{ItemInstance, OutboundAdapter};

/// What an operation's workers need to open their adapter.
#[derive(Debug, Clone)]
pub enum OutboundSpec {
    /// An MLLP client per worker.
    Mllp {
        /// Client settings.
        client: ClientConfig,
        /// Reply-code policy.
        policy: ReplyCodeActions,
        /// Frames sent before their ACKs are read (`max_in_flight`).
        window: usize,
    },
    /// A file writer per worker.
    File {
        /// Where and how.
        config: FileOutConfig,
        /// Files written by all workers of the item, for the `%$+` counter.
        sequence: Arc<AtomicU64>,
    },
}

impl OutboundSpec {
    /// The spec of `item`'s adapter, if it has an outbound one; parses the reply policy.
    pub fn for_item(item: &ItemConfig, file: &std::path::Path) -> Result<Option<OutboundSpec>, EngineError> {
        match &item.adapter {
            Some(AdapterConfig::MllpOut(m)) => Ok(Some(mllp_spec(item, m, file)?)),
            Some(AdapterConfig::FileOut(f)) => Ok(Some(OutboundSpec::File {
                config: f.clone(),
                sequence: Arc::default(),
            })),
            _ => Ok(None),
        }
    }

    /// A fresh adapter for one worker of `item`, counted in `metrics`.
    pub fn open(&self, runtime: &Handle, metrics: &EngineMetrics, item: &str) -> Box<dyn OutboundAdapter> {
        match self {
            OutboundSpec::Mllp {
                client,
                policy,
                window,
            } => Box::new(MllpOut {
                // workers are OS threads: a blocking socket spares the reactor hop
                client: match BlockingClient::new(client.clone()) {
                    Some(blocking) => Client::Blocking(blocking),
                    None => Client::Async(MllpClient::new(client.clone()), runtime.clone()),
                },
                policy: policy.clone(),
                window: *window,
                metrics: metrics.mllp_out(item),
                connected: false,
                opened: 0,
            }),
            OutboundSpec::File { config, sequence } => Box::new(FileOut::new(config, sequence.clone())),
        }
    }
}

fn mllp_spec(
    item: &ItemConfig,
    m: &MllpOutConfig,
    file: &std::path::Path,
) -> Result<OutboundSpec, EngineError> {
    let policy = match &m.reply_actions {
        Some(text) => ReplyCodeActions::parse(text).map_err(|e| EngineError::Invalid {
            file: file.display().to_string(),
            line: m.reply_actions_location.line,
            item: item.name.clone(),
            field: "adapter.reply_actions".into(),
            message: e.to_string(),
        })?,
        None => ReplyCodeActions::default(),
    };
    let mut client = ClientConfig::new(format!("{}:{}", m.host, m.port));
    client.connect_timeout = m.connect_timeout;
    client.ack_timeout = m.ack_timeout;
    Ok(OutboundSpec::Mllp {
        client,
        policy,
        window: m.max_in_flight,
    })
}

/// One MLLP connection with its reply-code policy.
struct MllpOut {
    client: Client,
    policy: ReplyCodeActions,
    /// Frames sent before their ACKs are read.
    window: usize,
    metrics: MllpOutMetrics,
    /// Whether `metrics.open` counts this worker's connection.
    connected: bool,
    /// The client's opened-connections count already added to `metrics.opened`.
    opened: u64,
}

impl MllpOut {
    /// Bring the connection series up to date after a call.
    fn count_connection(&mut self) {
        let opened = self.client.connections_opened();
        if opened != self.opened {
            self.metrics.opened.inc_by(opened - self.opened);
            self.opened = opened;
        }
        let connected = self.client.is_connected();
        if connected != self.connected {
            if connected {
                self.metrics.open.inc();
            } else {
                self.metrics.open.dec();
            }
            self.connected = connected;
        }
    }
}

impl Drop for MllpOut {
    fn drop(&mut self) {
        if self.connected {
            self.metrics.open.dec();
        }
    }
}

/// The MLLP client of one operation worker: blocking on plain TCP, the async
/// client (driven from this thread) where it needs TLS.
enum Client {
    Blocking(BlockingClient),
    Async(MllpClient, Handle),
}

impl Client {
    fn call(&mut self, request: &[u8]) -> Result<Bytes, hie_mllp::MllpError> {
        match self {
            Client::Blocking(c) => c.call(request),
            Client::Async(c, runtime) => runtime.block_on(c.call(request)),
        }
    }

    /// Pipelined on the blocking client; one at a time on the async (TLS) one.
    fn call_many(&mut self, requests: &[&[u8]]) -> Vec<Result<Bytes, hie_mllp::MllpError>> {
        match self {
            Client::Blocking(c) => c.call_many(requests),
            Client::Async(..) => requests.iter().map(|r| self.call(r)).collect(),
        }
    }

    fn addr(&self) -> &str {
        match self {
            Client::Blocking(c) => &c.config().addr,
            Client::Async(c, _) => &c.config().addr,
        }
    }

    fn is_connected(&self) -> bool {
        match self {
            Client::Blocking(c) => c.is_connected(),
            Client::Async(c, _) => c.is_connected(),
        }
    }

    fn connections_opened(&self) -> u64 {
        match self {
            Client::Blocking(c) => c.connections_opened(),
            Client::Async(c, _) => c.connections_opened(),
        }
    }
}

impl MllpOut {
    /// The outcome of sending `request`: the reply if the reply-code policy takes it
    /// as done, else the failure it decides on.
    fn judge(
        &mut self,
        request: &[u8],
        result: Result<Bytes, hie_mllp::MllpError>,
    ) -> Result<Bytes, Failure> {
        if let Err(err) = &result {
            self.metrics.error(err.kind());
        }
        let sent_id = hie_hl7::Message::parse(request).ok().and_then(|m| m.control_id());
        let verdict = match &result {
            Ok(reply) => {
                let ack = hie_hl7::Message::parse(reply).ok();
                let code = ack.as_ref().and_then(|a| a.get("MSA-1").ok().flatten());
                let acked_id = ack.as_ref().and_then(|a| a.get("MSA-2").ok().flatten());
                let mismatch = matches!((&sent_id, &acked_id), (Some(s), Some(a)) if s != a);
                self.policy.evaluate(&ReplyOutcome::Reply {
                    code: code.as_deref(),
                    control_id_mismatch: mismatch,
                    type_mismatch: false,
                })
            }
            // never answered: it goes again, after the frame whose failure closed the
            // connection, whatever the policy says of missing replies
            Err(err) if err.kind() == hie_mllp::ErrorKind::Abandoned => {
                return Err(Failure::transient(outward::ABANDONED, err.to_string()));
            }
            Err(err) => self.policy.evaluate(&ReplyOutcome::NoReply(err)),
        };
        for warning in &verdict.warnings {
            tracing::warn!(addr = %self.client.addr(), rule = %warning, "mllp reply matched a warning rule");
        }
        match result {
            Ok(reply) if verdict.action.is_done() => Ok(reply),
            Ok(reply) => {
                let info = hie_hl7::ack::parse_ack(&reply).ok();
                let text = info
                    .and_then(|i| i.text.map(|t| format!("{}: {t}", i.code)))
                    .unwrap_or_else(|| "reply not accepted".into());
                Err(outward::reply_failure(
                    verdict.action.retry,
                    verdict.action.then,
                    text,
                ))
            }
            Err(err) => {
                let then = if verdict.action.is_done() {
                    FinalAction::Fail
                } else {
                    verdict.action.then
                };
                Err(outward::reply_failure(
                    verdict.action.retry,
                    then,
                    err.to_string(),
                ))
            }
        }
    }
}

impl OutboundAdapter for MllpOut {
    fn call(&mut self, request: &[u8]) -> Result<Bytes, Failure> {
        let result = self.client.call(request);
        self.count_connection();
        self.judge(request, result)
    }

    fn window(&self) -> usize {
        self.window
    }

    fn send_many(&mut self, msgs: &[Envelope]) -> Vec<Result<Bytes, Failure>> {
        let requests: Vec<&[u8]> = msgs.iter().map(|m| &m.body[..]).collect();
        let results = self.client.call_many(&requests);
        self.count_connection();
        requests
            .iter()
            .zip(results)
            .map(|(request, result)| self.judge(request, result))
            .collect()
    }
}

/// Writes each request to a file named by the item's template: atomically
/// (temporary name, then rename) when replacing, or appended to an existing file.
pub struct FileOut {
    config: FileOutConfig,
    written: AtomicU64,
    /// Shared by the item's workers (`%$+`).
    sequence: Arc<AtomicU64>,
}

/// The local time now, for IRIS time-stamp codes.
fn local_stamp() -> hie_config::Stamp {
    use chrono::{Datelike, Timelike};
    let now = chrono::Local::now();
    hie_config::Stamp {
        year: now.year(),
        month: now.month(),
        day: now.day(),
        hour: now.hour(),
        minute: now.minute(),
        second: now.second(),
        millis: now.timestamp_subsec_millis().min(999),
        day_of_year: now.ordinal(),
        weekday: now.weekday().num_days_from_sunday(),
    }
}

impl FileOut {
    /// A writer for one worker of a `file-out` item; `sequence` counts the files of
    /// all its workers (the `%$+` counter).
    pub fn new(config: &FileOutConfig, sequence: Arc<AtomicU64>) -> Self {
        FileOut {
            config: config.clone(),
            written: AtomicU64::new(0),
            sequence,
        }
    }

    /// The file name for a message of `session` from source file `source`.
    pub fn name_for(&self, session: &str, source: Option<&str>) -> String {
        let spec = &self.config.filename_spec;
        let count = self.written.fetch_add(1, Ordering::Relaxed);
        let id = if spec.uses_id() {
            uuid::Uuid::now_v7().to_string()
        } else {
            String::new()
        };
        let sequence = match spec.unique_mode() {
            Some(hie_config::UniqueMode::Sequence) => self.sequence.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let ctx = hie_config::NameContext {
            id: &id,
            session,
            count,
            source,
            stamp: if spec.uses_time() {
                local_stamp()
            } else {
                hie_config::Stamp::default()
            },
            sequence,
        };
        let dir = &self.config.dir;
        self.config
            .filename_spec
            .render(&ctx, &|name| dir.join(name).exists())
    }

    fn write(&self, name: &str, request: &[u8]) -> Result<Bytes, Failure> {
        let data = match self.config.segment_terminator {
            Some(t) => std::borrow::Cow::Owned(with_terminator(request, t.bytes())),
            None => std::borrow::Cow::Borrowed(request),
        };
        let result = if self.config.append {
            append(&self.config.dir, name, &data)
        } else {
            write_atomically(&self.config.dir, name, &data)
        };
        result
            .map(|()| Bytes::new())
            .map_err(|e| Failure::transient("file-write", format!("cannot write {name}: {e}")))
    }
}

impl OutboundAdapter for FileOut {
    fn call(&mut self, request: &[u8]) -> Result<Bytes, Failure> {
        let name = self.name_for("", None);
        self.write(&name, request)
    }

    fn send(&mut self, msg: &Envelope) -> Result<Bytes, Failure> {
        let session = msg.session_id.to_string();
        let source = msg.properties.get("file.name").map(String::as_str);
        let name = self.name_for(&session, source);
        self.write(&name, &msg.body)
    }
}

/// `body` with every segment ended by `terminator` (segments split at CR, LF or CRLF).
fn with_terminator(body: &[u8], terminator: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 40);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                out.extend_from_slice(terminator);
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(terminator),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Append `data` to `dir/name`, creating it if needed.
fn append(dir: &std::path::Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    file.write_all(data)?;
    file.sync_data()
}

/// Write `data` to `dir/name` through a temporary file in the same directory.
pub fn write_atomically(dir: &std::path::Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The built-in logic of an operation without a plugin: hand the body to the
/// adapter; the peer's reply (the ACK) becomes the reply to a waiting requester.
pub struct AdapterSend {
    adapter: Box<dyn OutboundAdapter>,
    source: String,
}

impl AdapterSend {
    /// Send through `adapter` on behalf of the item `source`.
    pub fn new(adapter: Box<dyn OutboundAdapter>, source: &str) -> Self {
        AdapterSend {
            adapter,
            source: source.to_string(),
        }
    }
}

impl AdapterSend {
    fn outcome(&self, msg: &Envelope, sent: Result<Bytes, Failure>) -> Result<Outcome, PluginError> {
        match sent {
            Ok(reply) if reply.is_empty() => Ok(Outcome::Done),
            Ok(reply) => Ok(Outcome::Reply(msg.derive(self.source.clone(), reply))),
            Err(f) => Err(PluginError::Failed(f)),
        }
    }
}

impl Plugin for AdapterSend {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        let sent = self.adapter.send(&msg);
        self.outcome(&msg, sent)
    }
}

impl ItemInstance for AdapterSend {
    fn window(&self) -> usize {
        self.adapter.window()
    }

    fn call_many(&mut self, msgs: Vec<Envelope>) -> Vec<Result<Outcome, PluginError>> {
        let sent = self.adapter.send_many(&msgs);
        msgs.iter().zip(sent).map(|(m, s)| self.outcome(m, s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, template: &str) -> OutboundSpec {
        OutboundSpec::File {
            config: FileOutConfig {
                dir: dir.to_owned(),
                filename: template.to_owned(),
                filename_spec: hie_config::FilenameSpec::parse(template).unwrap(),
                append: false,
                segment_terminator: None,
            },
            sequence: Arc::default(),
        }
    }

    fn writer(spec: &OutboundSpec) -> FileOut {
        match spec {
            OutboundSpec::File { config, sequence } => FileOut::new(config, sequence.clone()),
            OutboundSpec::Mllp { .. } => unreachable!("a file spec"),
        }
    }

    #[test]
    fn the_sequence_counter_is_shared_by_the_workers_of_one_item_only() {
        let dir = tempfile::tempdir().unwrap();
        let item = spec(dir.path(), "m%$+(00).txt");
        let (a, b) = (writer(&item), writer(&item));
        let names: Vec<String> = [&a, &b, &a, &b].iter().map(|w| w.name_for("s", None)).collect();
        assert_eq!(names, ["m00.txt", "m01.txt", "m02.txt", "m03.txt"]);
        // another item writing to the same directory with the same template counts on
        // its own; the names it would reuse are skipped while they exist
        std::fs::write(dir.path().join("m00.txt"), b"x").unwrap();
        let other = writer(&spec(dir.path(), "m%$+(00).txt"));
        assert_eq!(other.name_for("s", None), "m01.txt");
    }

    #[test]
    fn names_without_id_or_time_codes_need_neither() {
        let dir = tempfile::tempdir().unwrap();
        let plain = writer(&spec(dir.path(), "out-{n}.hl7"));
        assert_eq!(plain.name_for("s", None), "out-0.hl7");
        let spec = &plain.config.filename_spec;
        assert!(!spec.uses_id() && !spec.uses_time());
        let stamped = hie_config::FilenameSpec::parse("{id}_%Y%m%d.hl7").unwrap();
        assert!(stamped.uses_id() && stamped.uses_time());
    }
}
