//! Run a plugin natively under `cargo test` (not built for wasm32).
//!
//! The host functions in [`host`](crate::host) go to a test host kept per
//! thread: it answers settings and lookups you configured and records sends,
//! logs, counters and histograms. Rust runs each test on its own thread, so
//! tests do not see each other's host. [`Harness::new`] resets it.
//!
//! ```
//! use hie_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Ward;
//!
//! impl Plugin for Ward {
//!     fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
//!         let code = msg.property("ward").unwrap_or_default();
//!         let name = hie_sdk::host::lookup("wards", code)
//!             .ok_or_else(|| Failure::permanent("unknown-ward", format!("ward {code:?}")))?;
//!         hie_sdk::host::send("audit", &msg)?;
//!         Ok(Outcome::pass(msg.with_property("ward-name", name)))
//!     }
//! }
//!
//! let mut h = Harness::<Ward>::new().lookup("wards", "W1", "Ward One");
//! let out = h.message(Message::hl7("MSH|").with_property("ward", "W1")).unwrap();
//! let Outcome::Pass(passed) = out else { panic!("expected pass") };
//! assert_eq!(passed.property("ward-name"), Some("Ward One"));
//! assert_eq!(h.sent()[0].target, "audit");
//! assert_eq!(h.message(Message::hl7("MSH|")).unwrap_err().code, "unknown-ward");
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::message::{Failure, LogLevel, Message, Outcome, Settings};
use crate::plugin::Plugin;

/// How a message left the plugin through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendKind {
    /// [`host::send`](crate::host::send).
    Send,
    /// [`host::send_request_sync`](crate::host::send_request_sync), with its timeout.
    RequestSync {
        /// The timeout the plugin asked for.
        timeout_ms: u32,
    },
    /// [`host::send_request_async`](crate::host::send_request_async), with the id handed back.
    RequestAsync {
        /// The correlation id the plugin got.
        correlation_id: String,
    },
}

/// A message the plugin sent through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The target item.
    pub target: String,
    /// The message as sent.
    pub message: Message,
    /// Which host function sent it.
    pub kind: SendKind,
}

/// A log line the plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// Its text.
    pub text: String,
}

type Responder = Box<dyn FnMut(&Message) -> Result<Message, Failure>>;
type AdapterFn = Box<dyn FnMut(&[u8]) -> Result<Vec<u8>, Failure>>;

/// What the test host of one thread knows and has seen.
#[derive(Default)]
struct TestHost {
    settings: Vec<(String, String)>,
    lookups: HashMap<(String, String), String>,
    responders: HashMap<String, Responder>,
    adapter: Option<AdapterFn>,
    sent: Vec<Sent>,
    logs: Vec<LogLine>,
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, Vec<f64>>,
    adapter_requests: Vec<Vec<u8>>,
    next_id: u64,
}

impl TestHost {
    fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }
}

thread_local! {
    static HOST: RefCell<TestHost> = RefCell::new(TestHost::default());
}

fn with_host<R>(f: impl FnOnce(&mut TestHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Host calls answered by this thread's test host.
pub(crate) mod backend {
    use super::*;

    pub(crate) fn log(level: LogLevel, text: &str) {
        with_host(|h| {
            h.logs.push(LogLine {
                level,
                text: text.to_owned(),
            })
        });
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        with_host(|h| h.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    pub(crate) fn lookup(table: &str, key: &str) -> Option<String> {
        with_host(|h| h.lookups.get(&(table.to_owned(), key.to_owned())).cloned())
    }

    fn record(target: &str, msg: &Message, kind: SendKind) {
        let sent = Sent {
            target: target.to_owned(),
            message: msg.clone(),
            kind,
        };
        with_host(|h| h.sent.push(sent));
    }

    pub(crate) fn send(target: &str, msg: &Message) -> Result<(), Failure> {
        record(target, msg, SendKind::Send);
        Ok(())
    }

    pub(crate) fn send_request_sync(
        target: &str,
        msg: &Message,
        timeout_ms: u32,
    ) -> Result<Message, Failure> {
        record(target, msg, SendKind::RequestSync { timeout_ms });
        // Taken out while it runs, so a responder may itself use the host.
        let responder = with_host(|h| h.responders.remove(target));
        let Some(mut responder) = responder else {
            return Err(Failure::transient(
                "timeout",
                format!("test host: no responder for target {target}"),
            ));
        };
        let reply = responder(msg);
        with_host(|h| h.responders.insert(target.to_owned(), responder));
        reply
    }

    pub(crate) fn send_request_async(target: &str, msg: &Message) -> Result<String, Failure> {
        let correlation_id = with_host(|h| h.next_id("corr"));
        record(
            target,
            msg,
            SendKind::RequestAsync {
                correlation_id: correlation_id.clone(),
            },
        );
        Ok(correlation_id)
    }

    pub(crate) fn counter_add(name: &str, value: u64) {
        with_host(|h| *h.counters.entry(name.to_owned()).or_default() += value);
    }

    pub(crate) fn histogram_record(name: &str, value: f64) {
        with_host(|h| h.histograms.entry(name.to_owned()).or_default().push(value));
    }

    pub(crate) fn adapter_call(request: &[u8]) -> Result<Vec<u8>, Failure> {
        let adapter = with_host(|h| {
            h.adapter_requests.push(request.to_vec());
            h.adapter.take()
        });
        let Some(mut adapter) = adapter else {
            return Err(Failure::permanent(
                "no-adapter",
                "test host: no adapter configured",
            ));
        };
        let reply = adapter(request);
        with_host(|h| h.adapter = Some(adapter));
        reply
    }
}

/// Runs one plugin value against this thread's test host.
///
/// Configure with the builder methods, then call [`message`](Harness::message);
/// the first message runs `on_init` (with the configured settings) and
/// `on_start` unless [`init`](Harness::init) ran already. Inspect what the
/// plugin did with [`sent`](Harness::sent), [`logs`](Harness::logs),
/// [`counter`](Harness::counter).
pub struct Harness<P: Plugin> {
    plugin: P,
    started: bool,
}

impl<P: Plugin> Default for Harness<P> {
    fn default() -> Self {
        Harness::new()
    }
}

impl<P: Plugin> Harness<P> {
    /// A fresh plugin value and a fresh (empty) test host for this thread.
    pub fn new() -> Harness<P> {
        with_host(|h| *h = TestHost::default());
        Harness {
            plugin: P::default(),
            started: false,
        }
    }

    /// Adds the item setting `key = value`.
    pub fn setting(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        with_host(|h| match h.settings.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => h.settings.push((key, value)),
        });
        self
    }

    /// Adds `key → value` to the lookup table `table`.
    pub fn lookup(self, table: &str, key: &str, value: &str) -> Self {
        with_host(|h| {
            h.lookups
                .insert((table.to_owned(), key.to_owned()), value.to_owned())
        });
        self
    }

    /// Answers [`host::send_request_sync`](crate::host::send_request_sync) to
    /// `target` with `responder`; without one the request fails with `timeout`.
    pub fn respond(
        self,
        target: &str,
        responder: impl FnMut(&Message) -> Result<Message, Failure> + 'static,
    ) -> Self {
        with_host(|h| h.responders.insert(target.to_owned(), Box::new(responder)));
        self
    }

    /// Answers [`host::adapter_call`](crate::host::adapter_call) with `adapter`.
    pub fn adapter(self, adapter: impl FnMut(&[u8]) -> Result<Vec<u8>, Failure> + 'static) -> Self {
        with_host(|h| h.adapter = Some(Box::new(adapter)));
        self
    }

    /// Runs `on_init` with the configured settings, then `on_start`.
    pub fn init(&mut self) -> Result<(), String> {
        let settings = Settings::new(with_host(|h| h.settings.clone()));
        self.plugin.on_init(&settings)?;
        self.plugin.on_start()?;
        self.started = true;
        Ok(())
    }

    /// Delivers `msg` to `on_message`, as the host would: the message gets an
    /// id, a session id and the source `test` if it has none.
    ///
    /// # Panics
    /// If the plugin was not started yet and `on_init`/`on_start` fail; call
    /// [`init`](Harness::init) to test those errors.
    pub fn message(&mut self, mut msg: Message) -> Result<Outcome, Failure> {
        self.ensure_started();
        if msg.id.is_empty() {
            msg.id = with_host(|h| h.next_id("msg"));
        }
        if msg.session_id.is_empty() {
            msg.session_id = msg.id.clone();
        }
        if msg.source.is_empty() {
            msg.source = "test".to_owned();
        }
        self.plugin.on_message(msg)
    }

    /// Delivers an HL7 v2 message with this text body (segments end in `\r`).
    pub fn hl7(&mut self, body: &str) -> Result<Outcome, Failure> {
        self.message(Message::hl7(body))
    }

    /// Delivers the reply to an earlier async request to `on_reply`.
    pub fn reply(
        &mut self,
        correlation_id: &str,
        reply: Result<Message, Failure>,
    ) -> Result<Outcome, Failure> {
        self.ensure_started();
        self.plugin.on_reply(correlation_id, reply)
    }

    /// Runs `on_stop` and `on_teardown`.
    pub fn stop(&mut self) {
        self.plugin.on_stop();
        self.plugin.on_teardown();
        self.started = false;
    }

    /// The plugin value, to inspect its state.
    pub fn plugin(&mut self) -> &mut P {
        &mut self.plugin
    }

    /// Messages the plugin sent through the host, in order.
    pub fn sent(&self) -> Vec<Sent> {
        with_host(|h| h.sent.clone())
    }

    /// Log lines the plugin wrote, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        with_host(|h| h.logs.clone())
    }

    /// The current value of counter `name` (0 if never added to).
    pub fn counter(&self, name: &str) -> u64 {
        with_host(|h| h.counters.get(name).copied().unwrap_or(0))
    }

    /// The values recorded in histogram `name`.
    pub fn histogram(&self, name: &str) -> Vec<f64> {
        with_host(|h| h.histograms.get(name).cloned().unwrap_or_default())
    }

    /// The requests handed to the adapter, in order.
    pub fn adapter_requests(&self) -> Vec<Vec<u8>> {
        with_host(|h| h.adapter_requests.clone())
    }

    fn ensure_started(&mut self) {
        if !self.started
            && let Err(e) = self.init()
        {
            panic!("plugin refused to start: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host;

    /// Uses every host function so the harness's records can be checked.
    #[derive(Default)]
    struct Echo {
        prefix: String,
        stopped: bool,
    }

    impl Plugin for Echo {
        fn on_init(&mut self, settings: &Settings) -> Result<(), String> {
            self.prefix = settings.require("prefix")?.to_owned();
            Ok(())
        }

        fn on_message(&mut self, msg: Message) -> Result<Outcome, Failure> {
            host::info(&format!("got {}", msg.id()));
            host::counter_add("seen", 2);
            host::histogram_record("size", msg.body().len() as f64);
            let mut body = self.prefix.clone().into_bytes();
            body.extend_from_slice(msg.body());
            let reply = host::send_request_sync("pas", &msg, 500)?;
            let corr = host::send_request_async("ris", &msg)?;
            let ack = host::adapter_call(msg.body())?;
            Ok(Outcome::reply(
                reply
                    .with_body(body)
                    .with_property("corr", corr)
                    .with_property("ack", String::from_utf8_lossy(&ack)),
            ))
        }

        fn on_reply(
            &mut self,
            correlation_id: &str,
            reply: Result<Message, Failure>,
        ) -> Result<Outcome, Failure> {
            let reply = reply?;
            Ok(Outcome::forward(correlation_id, reply))
        }

        fn on_stop(&mut self) {
            self.stopped = true;
        }
    }

    fn harness() -> Harness<Echo> {
        Harness::<Echo>::new()
            .setting("prefix", "> ")
            .respond("pas", |m| Ok(m.clone().with_property("from", "pas")))
            .adapter(|req| Ok([b"ACK:", req].concat()))
    }

    #[test]
    fn records_every_host_call() {
        let mut h = harness();
        let out = h.message(Message::hl7("hello")).unwrap();
        let Outcome::Reply(reply) = out else {
            panic!("expected reply, got {out:?}")
        };
        assert_eq!(reply.body(), b"> hello");
        assert_eq!(reply.property("from"), Some("pas"));
        assert_eq!(reply.property("corr"), Some("corr-2"));
        assert_eq!(reply.property("ack"), Some("ACK:hello"));
        assert_eq!(reply.source(), "test");

        let sent = h.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            (sent[0].target.as_str(), &sent[0].kind),
            ("pas", &SendKind::RequestSync { timeout_ms: 500 })
        );
        assert_eq!(
            sent[1].kind,
            SendKind::RequestAsync {
                correlation_id: "corr-2".into()
            }
        );
        assert_eq!(
            h.logs(),
            [LogLine {
                level: LogLevel::Info,
                text: "got msg-1".into()
            }]
        );
        assert_eq!(h.counter("seen"), 2);
        assert_eq!(h.counter("unseen"), 0);
        assert_eq!(h.histogram("size"), [5.0]);
        assert_eq!(h.adapter_requests(), [b"hello".to_vec()]);
    }

    #[test]
    fn missing_setting_refuses_init() {
        let mut h = Harness::<Echo>::new();
        assert_eq!(h.init().unwrap_err(), "missing setting `prefix`");
    }

    #[test]
    fn request_without_responder_times_out() {
        let mut h = Harness::<Echo>::new().setting("prefix", "");
        let err = h.hl7("x").unwrap_err();
        assert_eq!(err.code, "timeout");
        assert!(err.retryable);
    }

    #[test]
    fn replies_and_lifecycle_reach_the_plugin() {
        let mut h = harness();
        let out = h.reply("corr-9", Ok(Message::hl7("r"))).unwrap();
        assert_eq!(out.targets(), ["corr-9"]);
        let failed = h.reply("corr-9", Err(Failure::transient("timeout", "late")));
        assert_eq!(failed.unwrap_err().code, "timeout");
        h.stop();
        assert!(h.plugin().stopped);
    }

    #[test]
    fn host_setting_reads_configured_settings() {
        let _h = Harness::<Echo>::new().setting("a", "1").setting("a", "2");
        assert_eq!(host::setting("a").as_deref(), Some("2"));
        assert_eq!(host::lookup("t", "k"), None);
    }
}
