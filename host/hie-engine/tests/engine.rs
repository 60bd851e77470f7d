//! Engine behaviour with native plugin doubles: routing, queues, broker,
//! hooks, restart policy, lifecycle. (The same paths with WebAssembly plugins
//! and the real binary are covered in `tests/tests/`.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hie_config::{HookConfig, ItemConfig, Production};
use hie_core::{Envelope, Failure, HostApi, Outcome, Plugin, PluginError, Routed};
use hie_engine::{
    BeforeAction, Engine, ErrorAction, ItemInstance, ItemState, MessageHook, OutboundAdapter, PluginFactory,
};
use hie_mllp::client::{ClientConfig, MllpClient};
use hie_mllp::server::{FrameHandler, HandlerFuture, HandlerReply, Listener, ListenerConfig, PeerInfo};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

type MakeItem = Arc<dyn Fn(Arc<dyn HostApi>) -> Box<dyn ItemInstance> + Send + Sync>;

/// Native doubles by item (or hook) name.
#[derive(Default, Clone)]
struct Doubles {
    items: HashMap<String, MakeItem>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Doubles {
    fn item(
        mut self,
        name: &str,
        make: impl Fn(Arc<dyn HostApi>) -> Box<dyn ItemInstance> + Send + Sync + 'static,
    ) -> Self {
        self.items.insert(name.into(), Arc::new(make));
        self
    }
}

impl PluginFactory for Doubles {
    fn item_instance(
        &self,
        item: &ItemConfig,
        host: Arc<dyn HostApi>,
        _adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        let make = self
            .items
            .get(&item.name)
            .ok_or_else(|| PluginError::Instantiate(format!("no double for {}", item.name)))?;
        Ok(make(host))
    }

    fn hook_instance(
        &self,
        hook: &HookConfig,
        _host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError> {
        Ok(Box::new(LogHook {
            name: hook.name.clone(),
            log: Arc::clone(&self.log),
        }))
    }
}

/// A plugin made of a closure.
struct FnPlugin<F>(F);

impl<F: FnMut(Envelope) -> Result<Outcome, PluginError> + Send> Plugin for FnPlugin<F> {
    fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
        (self.0)(msg)
    }
}

impl<F: FnMut(Envelope) -> Result<Outcome, PluginError> + Send> ItemInstance for FnPlugin<F> {}

fn plugin(f: impl FnMut(Envelope) -> Result<Outcome, PluginError> + Send + 'static) -> Box<dyn ItemInstance> {
    Box::new(FnPlugin(f))
}

/// A hook that writes every call to a shared log and lets everything through.
struct LogHook {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl LogHook {
    fn note(&self, what: String) {
        self.log.lock().push(format!("{}:{what}", self.name));
    }
}

impl MessageHook for LogHook {
    fn name(&self) -> &str {
        &self.name
    }
    fn on_before_process(&mut self, item: &str, msg: Envelope) -> BeforeAction {
        self.note(format!("before-process {item}"));
        BeforeAction::Continue(msg)
    }
    fn on_after_process(&mut self, item: &str, _msg: &Envelope, outcome: Outcome) -> Outcome {
        self.note(format!("after-process {item}"));
        outcome
    }
    fn on_process_error(&mut self, item: &str, _msg: &Envelope, error: &Failure) -> ErrorAction {
        self.note(format!("process-error {item} {}", error.code));
        ErrorAction::Default
    }
    fn on_before_send(&mut self, item: &str, target: &str, msg: Envelope) -> BeforeAction {
        self.note(format!("before-send {item}->{target}"));
        BeforeAction::Continue(msg)
    }
    fn on_after_send(&mut self, item: &str, target: &str, _msg: &Envelope, delivery: &Result<(), Failure>) {
        self.note(format!(
            "after-send {item}->{target} {}",
            if delivery.is_ok() { "ok" } else { "err" }
        ));
    }
}

fn production(text: &str) -> Production {
    let mut p =
        hie_config::check_str(Path::new("/test/production.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    // the store lives in the data directory: a fresh one per engine, left for the OS to clean
    p.data_dir = tempfile::tempdir().expect("temp dir").keep();
    p
}

/// Poll `f` until it is true or 10 s pass.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An MLLP sink recording what it gets and answering AA.
struct Sink {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Bytes>>>,
    stop: CancellationToken,
}

struct SinkHandler(Arc<Mutex<Vec<Bytes>>>);

impl FrameHandler for SinkHandler {
    fn handle(&self, frame: Bytes, _peer: PeerInfo) -> HandlerFuture<'_> {
        Box::pin(async move {
            let ack = hie_hl7::Message::parse(&frame)
                .map(|m| hie_hl7::ack::build_ack(&m, hie_hl7::ack::AckCode::AA, None))
                .unwrap_or_default();
            self.0.lock().push(frame);
            HandlerReply::Send(Bytes::from(ack))
        })
    }
}

impl Sink {
    async fn start() -> Sink {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), ListenerConfig::default())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let handler = Arc::new(SinkHandler(Arc::clone(&got)));
        tokio::spawn(listener.serve(handler, stop.clone()));
        Sink { addr, got, stop }
    }

    fn bodies(&self) -> Vec<String> {
        self.got
            .lock()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn hl7(kind: &str, control_id: &str, patient: &str) -> String {
    format!("MSH|^~\\&|SND|FAC|RCV|FAC|20260101000000||{kind}|{control_id}|P|2.5\rPID|1||{patient}\r")
}

fn msa1(ack: &[u8]) -> String {
    hie_hl7::ack::parse_ack(ack).unwrap().code.to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Routes by MSH-9.1: ADT → pas and ris, ORU → lab, else `no-route`.
fn router() -> Box<dyn ItemInstance> {
    plugin(|msg| {
        let kind = hie_hl7::Message::parse(&msg.body)
            .ok()
            .and_then(|m| m.get("MSH-9.1").ok().flatten())
            .unwrap_or_default();
        let to = |t: &str| Routed {
            target: t.into(),
            message: msg.clone(),
        };
        match kind.as_str() {
            "ADT" => Ok(Outcome::Forward(vec![to("pas"), to("ris")])),
            "ORU" => Ok(Outcome::Forward(vec![to("lab")])),
            other => Err(PluginError::Failed(Failure::permanent(
                "no-route",
                format!("no route for {other}"),
            ))),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_deliver_and_unknown_types_are_dead_lettered_with_ae() {
    let (pas, ris, lab) = (Sink::start().await, Sink::start().await, Sink::start().await);
    let port = free_port();
    let text = format!(
        r#"
[production]
name = "routes"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {port}, ack_mode = "application" }}
targets = ["router"]

[[items]]
name = "router"
kind = "process"
plugin = "native"

[[items]]
name = "pas"
kind = "operation"
adapter = {{ type = "mllp-out", port = {} }}

[[items]]
name = "ris"
kind = "operation"
adapter = {{ type = "mllp-out", port = {} }}

[[items]]
name = "lab"
kind = "operation"
adapter = {{ type = "mllp-out", port = {} }}
"#,
        pas.addr.port(),
        ris.addr.port(),
        lab.addr.port()
    );
    let doubles = Doubles::default().item("router", |_| router());
    let engine = Engine::start(production(&text), Arc::new(doubles)).await.unwrap();
    let mut client = MllpClient::new(ClientConfig::new(format!("127.0.0.1:{port}")));

    let adt = hl7("ADT^A01", "C1", "P1");
    assert_eq!(msa1(&client.call(adt.as_bytes()).await.unwrap()), "AA");
    let oru = hl7("ORU^R01", "C2", "P1");
    assert_eq!(msa1(&client.call(oru.as_bytes()).await.unwrap()), "AA");
    let unknown = hl7("ZZZ^Z01", "C3", "P1");
    let ack = client.call(unknown.as_bytes()).await.unwrap();
    assert_eq!(msa1(&ack), "AE");
    assert!(String::from_utf8_lossy(&ack).contains("no-route"));

    eventually("pas, ris and lab got their messages", || {
        pas.bodies().len() == 1 && ris.bodies().len() == 1 && lab.bodies().len() == 1
    })
    .await;
    assert_eq!(pas.bodies(), vec![adt.clone()], "bodies pass unchanged");
    assert_eq!(ris.bodies(), vec![adt]);
    assert_eq!(lab.bodies(), vec![oru]);
    let letters = engine.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].item, "router");
    assert_eq!(letters[0].reason.code, "no-route");
    assert!(engine.stop(Duration::from_secs(5)).await);
}

/// Records the body of every message it processes.
fn recorder(seen: Arc<Mutex<Vec<String>>>, delay: Duration) -> Box<dyn ItemInstance> {
    plugin(move |msg| {
        std::thread::sleep(delay);
        seen.lock().push(msg.body_str().unwrap_or_default().to_string());
        Ok(Outcome::Done)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_queue_serves_highest_first_and_pause_holds_messages() {
    let text = r#"
[production]
name = "prio"

[[items]]
name = "p"
kind = "process"
plugin = "native"
queue = { kind = "priority" }
execution = { mode = "single_process" }
"#;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let doubles = Doubles::default().item("p", move |_| recorder(Arc::clone(&s), Duration::ZERO));
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    engine.pause("p").unwrap();
    for (body, priority) in [("low", 1u8), ("high", 9), ("mid", 5), ("high2", 9), ("low2", 1)] {
        let mut m = Envelope::new("test", "text/plain", body.to_string());
        m.priority = priority;
        engine.send("p", m).unwrap();
    }
    eventually("five messages wait", || {
        engine.item_status("p").unwrap().queue.depth == 5
    })
    .await;
    assert!(seen.lock().is_empty(), "a paused item must not process");
    assert_eq!(engine.item_status("p").unwrap().state, ItemState::Paused);
    engine.resume("p").unwrap();
    eventually("all processed", || seen.lock().len() == 5).await;
    assert_eq!(*seen.lock(), ["high", "high2", "mid", "low", "low2"]);
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_queue_keeps_order_per_key_with_four_workers() {
    let text = r#"
[production]
name = "keyed"

[[items]]
name = "k"
kind = "process"
plugin = "native"
pool_size = 4
queue = { kind = "keyed", key = "PID-3" }
"#;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let doubles = Doubles::default().item("k", move |_| {
        let s = Arc::clone(&s);
        let mut n = 0u64;
        plugin(move |msg| {
            // uneven work so that workers overtake each other
            n += 1;
            std::thread::sleep(Duration::from_micros(200 * (n % 5)));
            let m = hie_hl7::Message::parse(&msg.body).unwrap();
            let key = m.get("PID-3").unwrap().unwrap();
            let seq = m.control_id().unwrap();
            s.lock().push((key, seq));
            Ok(Outcome::Done)
        })
    });
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    for i in 0..200 {
        let key = format!("P{}", i % 7);
        engine
            .send(
                "k",
                Envelope::hl7("test", hl7("ADT^A08", &format!("{i:04}"), &key)),
            )
            .unwrap();
    }
    eventually("all processed", || seen.lock().len() == 200).await;
    let seen = seen.lock().clone();
    for key in 0..7 {
        let key = format!("P{key}");
        let order: Vec<&String> = seen.iter().filter(|(k, _)| *k == key).map(|(_, s)| s).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "messages of {key} were processed out of order");
    }
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_requests_get_their_replies() {
    let text = r#"
[production]
name = "broker"

[[items]]
name = "requester"
kind = "process"
plugin = "native"

[[items]]
name = "async-requester"
kind = "process"
plugin = "native"

[[items]]
name = "responder"
kind = "process"
plugin = "native"

[[items]]
name = "results"
kind = "process"
plugin = "native"
"#;
    let results = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&results);
    struct AsyncRequester {
        host: Arc<dyn HostApi>,
    }
    impl Plugin for AsyncRequester {
        fn call(&mut self, msg: Envelope) -> Result<Outcome, PluginError> {
            self.host
                .send_request_async("async-requester", "responder", msg)
                .map_err(PluginError::Failed)?;
            Ok(Outcome::Done)
        }
        fn on_reply(&mut self, _id: &str, reply: Result<Envelope, Failure>) -> Result<Outcome, PluginError> {
            let reply = reply.map_err(PluginError::Failed)?;
            let body = format!("async:{}", reply.body_str().unwrap_or_default());
            Ok(Outcome::Forward(vec![Routed {
                target: "results".into(),
                message: reply.derive("async-requester", body),
            }]))
        }
    }
    impl ItemInstance for AsyncRequester {}
    let doubles = Doubles::default()
        .item("requester", |host| {
            plugin(move |msg| {
                let session = msg.session_id;
                let reply = host
                    .send_request_sync("requester", "responder", msg.clone(), 2_000)
                    .map_err(PluginError::Failed)?;
                assert_eq!(reply.session_id, session, "the reply belongs to the same session");
                let body = format!("sync:{}", reply.body_str().unwrap_or_default());
                Ok(Outcome::Forward(vec![Routed {
                    target: "results".into(),
                    message: msg.derive("requester", body),
                }]))
            })
        })
        .item("async-requester", |host| Box::new(AsyncRequester { host }))
        .item("responder", |_| {
            plugin(|msg| {
                let body = msg.body_str().unwrap_or_default().to_uppercase();
                Ok(Outcome::Reply(msg.derive("responder", body)))
            })
        })
        .item("results", move |_| recorder(Arc::clone(&r), Duration::ZERO));
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    engine
        .send("requester", Envelope::new("t", "text/plain", "ping"))
        .unwrap();
    engine
        .send("async-requester", Envelope::new("t", "text/plain", "pong"))
        .unwrap();
    eventually("both replies arrived", || results.lock().len() == 2).await;
    let mut got = results.lock().clone();
    got.sort();
    assert_eq!(got, ["async:PONG", "sync:PING"]);
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_itself_times_out_instead_of_hanging() {
    let text = r#"
[production]
name = "self"

[[items]]
name = "loop"
kind = "process"
plugin = "native"
retry = { max_attempts = 1 }
"#;
    let doubles = Doubles::default().item("loop", |host| {
        plugin(move |msg| {
            host.send_request_sync("loop", "loop", msg, 100)
                .map(|_| Outcome::Done)
                .map_err(PluginError::Failed)
        })
    });
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    engine
        .send("loop", Envelope::new("t", "text/plain", "x"))
        .unwrap();
    eventually("dead-lettered with timeout", || engine.dead_letters().len() == 1).await;
    assert_eq!(engine.dead_letters()[0].reason.code, "timeout");
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_fire_in_the_documented_order() {
    let text = r#"
[production]
name = "hooks"

[[hooks]]
name = "h1"
plugin = "native"

[[hooks]]
name = "h2"
plugin = "native"

[[items]]
name = "p"
kind = "process"
plugin = "native"
hooks = ["h1", "h2"]
targets = ["sink"]

[[items]]
name = "sink"
kind = "process"
plugin = "native"
"#;
    let doubles = Doubles::default()
        .item("p", |_| {
            plugin(|msg| match msg.body_str() {
                Some("fail") => Err(PluginError::Failed(Failure::permanent(
                    "boom",
                    "failed on purpose",
                ))),
                _ => Ok(Outcome::Pass(msg)),
            })
        })
        .item("sink", |_| plugin(|_| Ok(Outcome::Done)));
    let log = Arc::clone(&doubles.log);
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    engine.send("p", Envelope::new("t", "text/plain", "ok")).unwrap();
    eventually("hooks ran for the first message", || log.lock().len() == 8).await;
    engine
        .send("p", Envelope::new("t", "text/plain", "fail"))
        .unwrap();
    eventually("hooks ran for the second message", || log.lock().len() == 12).await;
    assert_eq!(
        *log.lock(),
        [
            "h1:before-process p",
            "h2:before-process p",
            "h1:after-process p",
            "h2:after-process p",
            "h1:before-send p->sink",
            "h2:before-send p->sink",
            "h1:after-send p->sink ok",
            "h2:after-send p->sink ok",
            "h1:before-process p",
            "h2:before-process p",
            "h1:process-error p boom",
            "h2:process-error p boom",
        ]
    );
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_item_restarts_then_fails_and_others_go_on() {
    let text = r#"
[production]
name = "restart"

[[items]]
name = "fragile"
kind = "process"
plugin = "native"
restart = { policy = "on-failure", max_restarts = 2, within = "60s", backoff = "10ms", max_backoff = "50ms" }

[[items]]
name = "steady"
kind = "process"
plugin = "native"
"#;
    let instances = Arc::new(Mutex::new(0));
    let steady = Arc::new(Mutex::new(Vec::new()));
    let (i, s) = (Arc::clone(&instances), Arc::clone(&steady));
    let doubles = Doubles::default()
        .item("fragile", move |_| {
            *i.lock() += 1;
            plugin(|msg| match msg.body_str() {
                Some("crash") => Err(PluginError::Trap {
                    message: "unreachable".into(),
                }),
                _ => Ok(Outcome::Done),
            })
        })
        .item("steady", move |_| recorder(Arc::clone(&s), Duration::ZERO));
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    for n in 1..=3 {
        engine
            .send("fragile", Envelope::new("t", "text/plain", "crash"))
            .unwrap();
        engine
            .send("steady", Envelope::new("t", "text/plain", "fine"))
            .unwrap();
        eventually("crash dead-lettered", || engine.dead_letters().len() == n).await;
    }
    eventually("fragile failed after two restarts", || {
        engine.item_status("fragile").unwrap().state == ItemState::Failed
    })
    .await;
    assert_eq!(engine.item_status("fragile").unwrap().restarts, 2);
    assert_eq!(*instances.lock(), 3, "one instance plus two restarts");
    eventually("steady processed everything", || steady.lock().len() == 3).await;
    // an operator restart brings it back
    engine.restart("fragile").await.unwrap();
    assert_eq!(engine.item_status("fragile").unwrap().state, ItemState::Running);
    engine
        .send("fragile", Envelope::new("t", "text/plain", "ok"))
        .unwrap();
    eventually("fresh instance", || *instances.lock() == 4).await;
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_then_dead_lettered_and_can_be_requeued() {
    let text = r#"
[production]
name = "retry"

[[items]]
name = "flaky"
kind = "process"
plugin = "native"
retry = { max_attempts = 3, backoff = "1ms" }
"#;
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let a = Arc::clone(&attempts);
    let doubles = Doubles::default().item("flaky", move |_| {
        let a = Arc::clone(&a);
        plugin(move |msg| {
            a.lock().push(msg.attempt);
            if msg.attempt < 5 {
                Err(PluginError::Failed(Failure::transient("busy", "try later")))
            } else {
                Ok(Outcome::Done)
            }
        })
    });
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    engine
        .send("flaky", Envelope::new("t", "text/plain", "x"))
        .unwrap();
    eventually("dead-lettered", || engine.dead_letters().len() == 1).await;
    assert_eq!(*attempts.lock(), [1, 2, 3]);
    let id = engine.dead_letters()[0].message.id;
    engine.requeue(id).unwrap();
    eventually("requeued and processed", || attempts.lock().len() >= 5).await;
    assert_eq!(*attempts.lock(), [1, 2, 3, 4, 5]);
    assert!(engine.dead_letters().is_empty());
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queues_reject_or_dead_letter_and_inbound_gets_ar() {
    let port = free_port();
    let text = format!(
        r#"
[production]
name = "overflow"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {port} }}
targets = ["slow"]

[[items]]
name = "slow"
kind = "process"
plugin = "native"
queue = {{ capacity = 1, overflow = "reject" }}

[[items]]
name = "dl"
kind = "process"
plugin = "native"
queue = {{ capacity = 1, overflow = "dead-letter" }}
"#
    );
    let doubles = Doubles::default()
        .item("slow", |_| plugin(|_| Ok(Outcome::Done)))
        .item("dl", |_| plugin(|_| Ok(Outcome::Done)));
    let engine = Engine::start(production(&text), Arc::new(doubles)).await.unwrap();
    engine.pause("slow").unwrap();
    engine.pause("dl").unwrap();
    let mut client = MllpClient::new(ClientConfig::new(format!("127.0.0.1:{port}")));
    assert_eq!(
        msa1(&client.call(hl7("ADT^A01", "1", "P").as_bytes()).await.unwrap()),
        "AA"
    );
    assert_eq!(
        msa1(&client.call(hl7("ADT^A01", "2", "P").as_bytes()).await.unwrap()),
        "AR"
    );
    engine.send("dl", Envelope::new("t", "text/plain", "a")).unwrap();
    let second = engine.send("dl", Envelope::new("t", "text/plain", "b"));
    assert_eq!(second.unwrap_err().code, "queue-full");
    assert_eq!(engine.dead_letters().len(), 1);
    assert_eq!(engine.dead_letters()[0].item, "dl");
    engine.resume("slow").unwrap();
    engine.resume("dl").unwrap();
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_overflow_holds_the_mllp_sender_until_resume() {
    let port = free_port();
    let text = format!(
        r#"
[production]
name = "backpressure"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {port} }}
targets = ["p"]

[[items]]
name = "p"
kind = "process"
plugin = "native"
queue = {{ capacity = 2, overflow = "block" }}
"#
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let doubles = Doubles::default().item("p", move |_| recorder(Arc::clone(&s), Duration::ZERO));
    let engine = Engine::start(production(&text), Arc::new(doubles)).await.unwrap();
    engine.pause("p").unwrap();
    let sender = tokio::spawn(async move {
        let mut client = MllpClient::new(ClientConfig::new(format!("127.0.0.1:{port}")));
        let mut codes = Vec::new();
        for i in 0..4 {
            codes.push(msa1(
                &client
                    .call(hl7("ADT^A01", &i.to_string(), "P").as_bytes())
                    .await
                    .unwrap(),
            ));
        }
        codes
    });
    eventually("queue full", || engine.item_status("p").unwrap().queue.depth == 2).await;
    assert!(!sender.is_finished(), "the third message must wait for room");
    engine.resume("p").unwrap();
    assert_eq!(sender.await.unwrap(), ["AA", "AA", "AA", "AA"]);
    eventually("all processed", || seen.lock().len() == 4).await;
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_messages_in_flight() {
    let text = r#"
[production]
name = "drain"

[[items]]
name = "a"
kind = "process"
plugin = "native"
targets = ["b"]

[[items]]
name = "b"
kind = "process"
plugin = "native"
"#;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let doubles = Doubles::default()
        .item("a", |_| {
            plugin(|m| {
                std::thread::sleep(Duration::from_millis(1));
                Ok(Outcome::Pass(m))
            })
        })
        .item("b", move |_| recorder(Arc::clone(&s), Duration::from_millis(1)));
    let engine = Engine::start(production(text), Arc::new(doubles)).await.unwrap();
    for i in 0..100 {
        engine
            .send("a", Envelope::new("t", "text/plain", i.to_string()))
            .unwrap();
    }
    assert!(engine.stop(Duration::from_secs(10)).await, "stop must drain");
    assert_eq!(seen.lock().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_in_to_file_out_moves_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[production]
name = "files"

[[items]]
name = "in"
kind = "service"
adapter = { type = "file-in", dir = "in", suffix = ".hl7", poll_interval = "10ms" }
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = { type = "file-out", dir = "out", filename = "{id}.hl7" }
"#;
    let p = hie_config::check_str(&dir.path().join("production.toml"), text).unwrap();
    let engine = Engine::start(p, Arc::new(Doubles::default())).await.unwrap();
    let body = hl7("ADT^A01", "F1", "P1");
    std::fs::write(dir.path().join("in/a.hl7"), &body).unwrap();
    std::fs::write(dir.path().join("in/ignored.txt"), "x").unwrap();
    let out = dir.path().join("out");
    eventually("file written", || {
        std::fs::read_dir(&out).map(|d| d.count() == 1).unwrap_or(false)
    })
    .await;
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), body);
    assert!(!written[0].file_name().unwrap().to_string_lossy().starts_with('.'));
    eventually("archived", || dir.path().join("in/archive/a.hl7").exists()).await;
    assert!(dir.path().join("in/ignored.txt").exists());
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_whose_peer_is_down_retries_then_dead_letters() {
    let dead_port = free_port();
    let text = format!(
        r#"
[production]
name = "down"

[[items]]
name = "op"
kind = "operation"
adapter = {{ type = "mllp-out", port = {dead_port}, connect_timeout = "200ms" }}
retry = {{ max_attempts = 2, backoff = "10ms" }}

[[items]]
name = "other"
kind = "process"
plugin = "native"
"#
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let doubles = Doubles::default().item("other", move |_| recorder(Arc::clone(&s), Duration::ZERO));
    let engine = Engine::start(production(&text), Arc::new(doubles)).await.unwrap();
    engine
        .send("op", Envelope::hl7("t", hl7("ADT^A01", "D1", "P")))
        .unwrap();
    engine
        .send("other", Envelope::new("t", "text/plain", "fine"))
        .unwrap();
    eventually("dead-lettered", || engine.dead_letters().len() == 1).await;
    assert_eq!(engine.dead_letters()[0].item, "op");
    assert_eq!(engine.dead_letters()[0].message.attempt, 2);
    eventually("other item unaffected", || seen.lock().len() == 1).await;
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn multi_process_without_a_plugin_is_refused_clearly() {
    // multi_process runs the item's plugin in `hie worker` processes; an item with
    // no plugin has nothing to run there.
    let text = r#"
[production]
name = "mp"

[[items]]
name = "p"
kind = "service"
execution = { mode = "multi_process", processes = 2 }
"#;
    let err = Engine::start(production(text), Arc::new(Doubles::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("item p: execution mode \"multi_process\" without a plugin"),
        "{err}"
    );
    assert!(err.contains("use \"thread_pool\""), "{err}");
}
