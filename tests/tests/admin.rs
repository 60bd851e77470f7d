//! The admin API and `hie ctl` end to end, with the real `hie run` on loopback:
//! the token is checked before any body is read, big bodies get 413, `/metrics`
//! parses as Prometheus text and counts what was sent, `hie ctl` actions change
//! what reaches the wire, and random requests built from `/openapi.json` never
//! get a 5xx.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;
use support::*;

const TOKEN: &str = "test-token-5f0c1d";

/// `in` (mllp-in, commit ACKs) → `mid` (a process running `mid_plugin`, or none) → `out` (mllp-out to `sink`).
fn production_toml(inbound: u16, sink: u16, mid_plugin: Option<&str>, extra: &str) -> String {
    let mid = match mid_plugin {
        Some(p) => format!("plugin = \"{p}\"\n"),
        None => String::new(),
    };
    format!(
        r#"
[production]
name = "admin-e2e"
drain_timeout = "5s"

[admin]
token_file = "admin.token"

[[items]]
name = "in"
kind = "service"
adapter = {{ type = "mllp-in", port = {inbound} }}
targets = ["mid"]

[[items]]
name = "mid"
kind = "process"
{mid}targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = {{ type = "mllp-out", port = {sink}, ack_timeout = "5s" }}
execution = {{ mode = "single_process" }}
{extra}"#
    )
}

/// A running `hie run` with its admin API on a free loopback port.
struct Running {
    dir: tempfile::TempDir,
    admin: SocketAddr,
    inbound: u16,
    proc: Proc,
}

impl Running {
    /// Write the production (and the token file), start it, wait for the admin API.
    fn start(inbound: u16, toml: &str, files: &[(&str, &[u8])], plugins: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("production.toml"), toml).unwrap();
        std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let plugin_path = if plugins.is_empty() {
            dir.path().to_path_buf()
        } else {
            plugin_dir(plugins)
        };
        let mut proc = Proc::hie(
            "hie run",
            &[
                "run",
                dir.path().to_str().unwrap(),
                "--log-format",
                "json",
                "--admin",
                "127.0.0.1:0",
            ],
            &[
                ("HIE_PLUGIN_PATH", plugin_path.to_str().unwrap()),
                ("RUST_LOG", "info"),
            ],
        );
        let line = proc.wait_for_line("admin api listening", Duration::from_secs(90));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let admin: SocketAddr = v["addr"].as_str().expect("addr field").parse().unwrap();
        wait_for_port(inbound);
        Running {
            dir,
            admin,
            inbound,
            proc,
        }
    }

    /// `hie ctl --addr ... --token-file ... ARGS`: exit success, stdout.
    fn ctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(hie_bin())
            .arg("ctl")
            .args(["--addr", &self.admin.to_string()])
            .arg("--token-file")
            .arg(self.dir.path().join("admin.token"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("hie ctl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `hie ctl ... --json ARGS` parsed; panics unless it succeeded.
    fn ctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (ok, text) = self.ctl(&all);
        assert!(
            ok,
            "hie ctl {args:?} failed: {text}\n--- engine:\n{}",
            self.proc.dump()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("hie ctl {args:?}: not JSON ({e}): {text}"))
    }

    fn depth(&self, item: &str) -> u64 {
        self.ctl_json(&["items", item])["queue_depth"].as_u64().unwrap()
    }

    fn send(&self, control_id: &str) {
        let ack = mllp_call(self.inbound, hl7("ADT^A01", control_id, "P1").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA", "{}", String::from_utf8_lossy(&ack));
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`): status and body.
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the admin api");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Every (method, path template) in the OpenAPI description.
fn routes(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for method in ops.as_object().unwrap().keys() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out
}

fn fill(template: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn spec(addr: SocketAddr) -> Value {
    let (status, body) = http(addr, "GET", "/openapi.json", Some(TOKEN), b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn every_route_needs_the_token_and_big_bodies_are_refused() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("passthrough"), ""),
        &[],
        &["passthrough"],
    );
    let spec = spec(p.admin);
    let routes = routes(&spec);
    assert!(routes.len() >= 16, "too few routes in /openapi.json: {routes:?}");
    for (method, template) in &routes {
        let path = fill(template, "in");
        for token in [None, Some("wrong-token"), Some("")] {
            let (status, body) = http(p.admin, method, &path, token, b"{}");
            assert_eq!(status, 401, "{method} {path} with token {token:?}: {body}");
            let error: Value = serde_json::from_str(&body).unwrap();
            assert!(error["error"].as_str().unwrap().contains("token"), "{body}");
        }
    }
    // an unknown route is no way around the token either
    assert_eq!(http(p.admin, "GET", "/nope", None, b"").0, 401);

    // a request announcing 100 MB gets its answer without sending the body
    for (token, want) in [(None, 401), (Some(TOKEN), 413)] {
        let mut s = TcpStream::connect(p.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST /api/v1/messages/purge HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            100 * 1024 * 1024
        );
        s.write_all(head.as_bytes()).unwrap();
        let (status, body) = read_response(&mut s);
        assert_eq!(status, want, "token {token:?}: {body}");
        assert!(
            serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(),
            "{body}"
        );
    }
    // a chunked body (no length announced) over the limit is cut off with 413 too
    let mut s = TcpStream::connect(p.admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let chunk = vec![b' '; 128 * 1024];
    let head = format!(
        "POST /api/v1/messages/purge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        chunk.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&chunk);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&request).unwrap();
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 413, "{body}");

    // with the token the same routes answer
    let (status, body) = http(p.admin, "GET", "/api/v1/items", Some(TOKEN), b"");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(p.admin, "GET", "/api/v1/items/nope", Some(TOKEN), b"");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("hie ctl items"),
        "the error says what to do: {body}"
    );
}

/// A strict reading of the text format: every sample belongs to a family
/// announced by `# TYPE`, names and labels are well formed, values are numbers.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).expect("prometheus text parses");
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line:?}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
                .unwrap_or(name);
            assert!(types.contains_key(family), "sample without # TYPE: {line:?}");
        }
    }
    let mut out = BTreeMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(h) => {
                let count = h.iter().map(|b| b.count).fold(0.0, f64::max);
                out.insert(format!("{}_count{{{}}}", sample.metric, labels.join(",")), count);
                continue;
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        out.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
    }
    out
}

#[test]
fn metrics_parse_and_count_what_was_sent() {
    const N: usize = 12;
    let sink = Sink::start("sink");
    let inbound = free_port();
    let log = "\n[log.items]\nout = \"debug\"\n";
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("passthrough"), log),
        &[],
        &["passthrough"],
    );
    for i in 0..N {
        p.send(&format!("M{i}"));
    }
    // one empty frame: a framing error at the listener, not a message
    let mut s = TcpStream::connect(("127.0.0.1", inbound)).unwrap();
    s.write_all(&[0x0b, 0x1c, 0x0d]).unwrap();
    drop(s);
    sink.wait_for(N);
    let metrics = eventually(
        "metrics to show every message out",
        Duration::from_secs(20),
        || {
            let (status, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
            assert_eq!(status, 200);
            let m = parse_metrics(&text);
            let done = m.get("hie_messages_out_total{item=out}") == Some(&(N as f64))
                && m.get("hie_mllp_frame_errors_total{item=in}") == Some(&1.0);
            done.then_some(m)
        },
    );
    let get = |k: &str| *metrics.get(k).unwrap_or_else(|| panic!("no {k} in {metrics:#?}"));
    for item in ["in", "mid", "out"] {
        assert_eq!(
            get(&format!("hie_messages_in_total{{item={item}}}")),
            N as f64,
            "{item}"
        );
        assert_eq!(
            get(&format!("hie_messages_out_total{{item={item}}}")),
            N as f64,
            "{item}"
        );
        assert_eq!(
            get(&format!("hie_messages_failed_total{{item={item}}}")),
            0.0,
            "{item}"
        );
        assert_eq!(get(&format!("hie_queue_depth{{item={item}}}")), 0.0, "{item}");
        assert_eq!(
            get(&format!("hie_item_state{{item={item},state=running}}")),
            1.0,
            "{item}"
        );
    }
    assert_eq!(get("hie_processing_seconds_count{item=out}"), N as f64);
    assert!(get("hie_mllp_connections_total{item=in}") >= (N + 1) as f64);
    assert_eq!(get("hie_mllp_frame_errors_total{item=in}"), 1.0);
    assert_eq!(get("hie_worker_restarts_total{item=out}"), 0.0);
    assert!(get("hie_store_commit_seconds_count{}") >= N as f64);
    assert!(get("process_resident_memory_bytes{}") > 0.0);
    assert!(get("process_cpu_seconds_total{}") >= 0.0);
    // labels are item names and fixed words: never message content
    let (_, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
    assert!(
        !text.contains("P1") && !text.contains("ADT"),
        "message data in metrics"
    );

    // [log.items] out = "debug": out's debug lines show, mid's (at info) do not,
    // and bodies (trace level) never do
    let processed = p.proc.lines_with("message processed");
    assert_eq!(
        processed.iter().filter(|l| l.contains(r#""item":"out""#)).count(),
        N,
        "{}",
        p.proc.dump()
    );
    assert!(
        processed.iter().all(|l| !l.contains(r#""item":"mid""#)),
        "{processed:?}"
    );
    assert!(p.proc.lines_with("message body").is_empty());
    assert!(p.proc.lines_with("MSH|").is_empty(), "a message body was logged");
}

#[test]
fn ctl_pause_resume_stop_start_round_trip_on_the_wire() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("passthrough"), ""),
        &[],
        &["passthrough"],
    );
    p.send("A0");
    sink.wait_for(1);

    let paused = p.ctl_json(&["pause", "out"]);
    assert_eq!(paused["state"], "paused");
    for i in 1..=3 {
        p.send(&format!("A{i}"));
    }
    eventually(
        "3 messages held in the paused queue",
        Duration::from_secs(20),
        || (p.depth("out") == 3).then_some(()),
    );
    assert_eq!(sink.messages().len(), 1, "a paused item sent something");
    assert_eq!(p.ctl_json(&["resume", "out"])["state"], "running");
    sink.wait_for(4);

    assert_eq!(p.ctl_json(&["stop", "out"])["state"], "stopped");
    for i in 4..=5 {
        p.send(&format!("A{i}"));
    }
    eventually(
        "2 messages kept by the stopped item",
        Duration::from_secs(20),
        || (p.depth("out") == 2).then_some(()),
    );
    assert_eq!(sink.messages().len(), 4, "a stopped item sent something");
    assert_eq!(p.ctl_json(&["start", "out"])["state"], "running");
    let got = sink.wait_for(6);
    let text: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .collect();
    for i in 0..=5 {
        assert!(
            text.iter().any(|m| m.contains(&format!("|A{i}|"))),
            "A{i} missing"
        );
    }

    // human output and errors that say what to do
    let (ok, table) = p.ctl(&["items"]);
    assert!(ok, "{table}");
    assert!(
        table.starts_with("ITEM") && table.contains("out") && table.contains("running"),
        "{table}"
    );
    let (ok, err) = p.ctl(&["pause", "nope"]);
    assert!(!ok);
    assert!(err.contains("no item named") && err.contains("404"), "{err}");
    let (ok, err) = Running::ctl_without_token(p.admin, &["items"]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
}

impl Running {
    fn ctl_without_token(addr: SocketAddr, args: &[&str]) -> (bool, String) {
        let out = Command::new(hie_bin())
            .arg("ctl")
            .args(["--addr", &addr.to_string()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

fn wasm(package: &str) -> PathBuf {
    hie_tests::build_plugin(package)
}

fn stamp_of(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    let zrv = text
        .split('\r')
        .find(|s| s.starts_with("ZRV|"))
        .unwrap_or_else(|| panic!("no ZRV in {text:?}"));
    zrv.split('|').nth(1).unwrap().to_string()
}

#[test]
fn ctl_reload_and_rollback_change_what_reaches_the_sink() {
    let v1 = std::fs::read(wasm("reload-v1")).unwrap();
    let v2 = std::fs::read(wasm("reload-v2")).unwrap();
    let sink = Sink::start("sink");
    let inbound = free_port();
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("mid.wasm"), ""),
        &[("mid.wasm", &v1)],
        &[],
    );
    p.send("R1");
    assert_eq!(stamp_of(&sink.wait_for(1)[0]), "v1");
    let before = p.ctl_json(&["items", "mid"])["plugin_version"].clone();

    std::fs::write(p.dir.path().join("mid.wasm"), &v2).unwrap();
    let reloaded = p.ctl_json(&["reload", "mid"]);
    assert_ne!(reloaded["plugin_version"], before, "{reloaded}");
    assert_eq!(reloaded["previous_version"], before, "{reloaded}");
    p.send("R2");
    assert_eq!(stamp_of(&sink.wait_for(2)[1]), "v2");

    let rolled = p.ctl_json(&["rollback", "mid"]);
    assert_eq!(rolled["plugin_version"], before, "{rolled}");
    p.send("R3");
    assert_eq!(stamp_of(&sink.wait_for(3)[2]), "v1");

    // a file that is not a component is refused and v1 keeps running
    std::fs::write(p.dir.path().join("broken.wasm"), b"not wasm").unwrap();
    let broken = p.dir.path().join("broken.wasm");
    let (ok, err) = p.ctl(&["reload", "mid", "--file", broken.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert!(err.contains("422"), "{err}");
    p.send("R4");
    assert_eq!(stamp_of(&sink.wait_for(4)[3]), "v1");
}

/// One random request: a route from the spec (or a near miss), a method, path
/// values, a query and a body.
#[derive(Debug, Clone)]
struct Probe {
    route: usize,
    method: Option<&'static str>,
    value: String,
    query: String,
    body: Vec<u8>,
    token: bool,
}

fn probe(routes: usize) -> impl Strategy<Value = Probe> {
    let value = prop_oneof![
        Just("in".to_string()),
        Just("mid".to_string()),
        Just("out".to_string()),
        Just("0190f5a2-7c1e-7a3b-9d4e-123456789abc".to_string()),
        "[a-zA-Z0-9_%.~-]{0,40}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?limit=5".to_string()),
        Just("?session=true".to_string()),
        Just("?status=done&type=ADT%5EA01".to_string()),
        Just("?limit=-1&since_ms=x".to_string()),
        "\\?[a-z_]{1,10}=[a-zA-Z0-9%]{0,12}",
    ];
    let body = prop_oneof![
        Just(Vec::new()),
        Just(b"{}".to_vec()),
        Just(br#"{"to":"out"}"#.to_vec()),
        Just(br#"{"older_than":"30d","statuses":["done"]}"#.to_vec()),
        Just(br#"{"older_than":"bogus","statuses":["nope"]}"#.to_vec()),
        Just(br#"{"file":"/nonexistent.wasm","canary":250}"#.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let method = prop_oneof![
        Just(None),
        Just(Some("GET")),
        Just(Some("POST")),
        Just(Some("DELETE")),
        Just(Some("PUT")),
    ];
    (0..routes, method, value, query, body, any::<bool>()).prop_map(
        |(route, method, value, query, body, token)| Probe {
            route,
            method,
            value,
            query,
            body,
            token,
        },
    )
}

#[test]
fn random_requests_from_the_openapi_description_get_no_5xx() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("passthrough"), ""),
        &[],
        &["passthrough"],
    );
    p.send("S1");
    sink.wait_for(1);
    let routes = routes(&spec(p.admin));
    let admin = p.admin;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&probe(routes.len()), |probe| {
        let (spec_method, template) = &routes[probe.route];
        let method = probe.method.unwrap_or(spec_method.as_str());
        let path = format!("{}{}", fill(template, &probe.value), probe.query);
        let token = probe.token.then_some(TOKEN);
        let (status, body) = http(admin, method, &path, token, &probe.body);
        prop_assert!(status < 500, "{method} {path} -> {status}: {body}");
        if !probe.token {
            prop_assert_eq!(status, 401);
        }
        if status >= 400 {
            let v: Value =
                serde_json::from_str(&body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
            prop_assert!(v["error"].is_string(), "{}", body);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n--- engine:\n{}", p.proc.dump());
    }
    // the engine is still up and answers
    assert_eq!(http(admin, "GET", "/health", Some(TOKEN), b"").0, 200);
}

#[test]
fn config_refuses_an_open_admin_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("production.toml");
    std::fs::write(
        &file,
        "[production]\nname = \"x\"\n\n[admin]\nlisten = \"0.0.0.0:9090\"\n\n[[items]]\nname = \"a\"\nkind = \"process\"\n",
    )
    .unwrap();
    let out = Command::new(hie_bin())
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(":5") && text.contains("admin.listen") && text.contains("token_file"),
        "{text}"
    );
}

#[test]
fn run_refuses_a_non_loopback_admin_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let inbound = free_port();
    let toml = format!(
        "[production]\nname = \"x\"\n\n[[items]]\nname = \"in\"\nkind = \"service\"\nadapter = {{ type = \"mllp-in\", port = {inbound} }}\n"
    );
    std::fs::write(dir.path().join("production.toml"), toml).unwrap();
    let mut p = Proc::hie(
        "hie run",
        &["run", dir.path().to_str().unwrap(), "--admin", "0.0.0.0:0"],
        &[],
    );
    let status = p.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{}", p.dump());
    assert!(p.dump().contains("without a token"), "{}", p.dump());
}
