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

/// Send only the head of a request that announces a 100 MB body; the answer.
fn announce_100_mb(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        100 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).unwrap();
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

/// The statuses the description documents for `method` on `template`.
fn documented(spec: &Value, method: &str, template: &str) -> Vec<u16> {
    spec["paths"][template][method.to_lowercase()]["responses"]
        .as_object()
        .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

/// The JSON schema the description gives for a `status` answer, if any.
fn answer_schema<'a>(spec: &'a Value, method: &str, template: &str, status: u16) -> Option<&'a Value> {
    let content = &spec["paths"][template][method.to_lowercase()]["responses"][status.to_string()]["content"];
    content.get("application/json").map(|c| &c["schema"])
}

/// Check `value` against `schema` (the parts utoipa emits: `$ref`, `type` and
/// type lists, `required`, `properties`, `items`, `enum`, `oneOf`/`anyOf`/`allOf`);
/// the first mismatch, with where it is.
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").expect("local $ref");
        return conforms(spec, &spec["components"]["schemas"][name], value, at);
    }
    for (key, all) in [("oneOf", false), ("anyOf", false), ("allOf", true)] {
        if let Some(list) = schema[key].as_array() {
            let results: Vec<_> = list.iter().map(|s| conforms(spec, s, value, at)).collect();
            let ok = if all {
                results.iter().all(Result::is_ok)
            } else {
                results.iter().any(Result::is_ok)
            };
            if !ok {
                return Err(format!("{at}: {value} fits no {key} choice: {results:?}"));
            }
        }
    }
    if let Some(choices) = schema["enum"].as_array()
        && !choices.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {choices:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                return Err(format!("{at}: required field {key:?} is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (key, v) in object {
                match properties.get(key) {
                    Some(p) => conforms(spec, p, v, &format!("{at}.{key}"))?,
                    None => return Err(format!("{at}: field {key:?} is not in the description")),
                }
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            conforms(spec, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
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
    // the description lists every route the issue asks for, and no other
    let mut listed: Vec<String> = routes.iter().map(|(m, t)| format!("{m} {t}")).collect();
    listed.sort();
    let mut wanted = vec![
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /openapi.json",
        "GET /api/v1/production",
        "POST /api/v1/production/reload",
        "GET /api/v1/items",
        "GET /api/v1/items/{item}",
        "POST /api/v1/items/{item}/{action}",
        "GET /api/v1/dead-letters",
        "POST /api/v1/dead-letters/{id}/requeue",
        "DELETE /api/v1/dead-letters/{id}",
        "GET /api/v1/messages",
        "GET /api/v1/messages/{id}",
        "GET /api/v1/messages/{id}/trace",
        "POST /api/v1/messages/{id}/resend",
        "POST /api/v1/messages/purge",
    ];
    wanted.sort();
    assert_eq!(listed, wanted);
    let actions = &spec["components"]["schemas"]["ItemAction"]["enum"];
    for action in [
        "start", "stop", "pause", "resume", "enable", "disable", "restart", "reload", "rollback",
    ] {
        assert!(
            actions.as_array().unwrap().iter().any(|a| a == action),
            "action {action} not in the description: {actions}"
        );
    }
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

    // every route, every method it takes: a request announcing 100 MB gets its
    // answer without a byte of the body sent (were the body read first, the
    // server would wait for it and the read below would time out): 401 without
    // the token or with a wrong one, 413 with the right one
    for (method, template) in &routes {
        let path = fill(template, "in");
        for (token, want) in [(None, 401), (Some("wrong-token"), 401), (Some(TOKEN), 413)] {
            let (status, body) = announce_100_mb(p.admin, method, &path, token);
            assert_eq!(status, want, "{method} {path} with token {token:?}: {body}");
            let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            assert!(error["error"].is_string(), "{body}");
        }
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

    // outbound MLLP: out's worker opened its connection once and kept it for all N,
    // and no call failed
    assert_eq!(get("hie_mllp_out_connections_total{item=out}"), 1.0);
    assert_eq!(get("hie_mllp_out_connections_open{item=out}"), 1.0);
    assert!(
        !metrics.keys().any(|k| k.starts_with("hie_mllp_out_errors_total")),
        "{metrics:#?}"
    );
    // the downstream goes away: the next call fails (stale connection, then refused),
    // the connection is counted closed and the error by kind
    drop(sink);
    p.send("AFTER");
    let metrics = eventually(
        "an outbound error in the metrics",
        Duration::from_secs(20),
        || {
            let (_, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
            let m = parse_metrics(&text);
            m.get("hie_mllp_out_errors_total{item=out,kind=connection_refused}")
                .is_some_and(|v| *v >= 1.0)
                .then_some(m)
        },
    );
    assert_eq!(
        metrics.get("hie_mllp_out_connections_open{item=out}"),
        Some(&0.0),
        "{metrics:#?}"
    );
    assert_eq!(
        metrics.get("hie_mllp_out_connections_total{item=out}"),
        Some(&1.0)
    );
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

    // reload-config: what changed is applied and reported; an invalid file changes
    // nothing and the answer names the file, line and field
    let file = p.dir.path().join("production.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    let changed = toml.replace("ack_timeout = \"5s\"", "ack_timeout = \"7s\"");
    assert_ne!(changed, toml);
    std::fs::write(&file, &changed).unwrap();
    let report = p.ctl_json(&["reload-config"]);
    let names: Vec<&str> = report["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["out"], "{report}");
    assert_eq!(report["unchanged"], serde_json::json!(["in", "mid"]), "{report}");
    std::fs::write(&file, format!("{changed}\n[[items]]\nname = \"extra\"\n")).unwrap();
    let (ok, err) = p.ctl(&["reload-config"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("422") && err.contains("production.toml:") && err.contains("kind"),
        "{err}"
    );
    p.send("A6");
    assert_eq!(sink.wait_for(7).len(), 7);
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

fn probe(routes: usize, stored: Vec<String>) -> impl Strategy<Value = Probe> {
    let value = prop_oneof![
        proptest::sample::select(stored),
        Just("in".to_string()),
        Just("mid".to_string()),
        Just("out".to_string()),
        Just("0190f5a2-7c1e-7a3b-9d4e-123456789abc".to_string()),
        "[a-zA-Z0-9_%.~-]{0,40}",
        // percent-escapes that decode to bytes that are not UTF-8
        "[a-z]{0,4}%[89a-fA-F][0-9a-fA-F][a-z]{0,4}",
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
    let spec = spec(p.admin);
    let routes = routes(&spec);
    let admin = p.admin;
    // ids of stored messages, so show, trace and resend also answer 200
    let (status, found) = http(admin, "GET", "/api/v1/messages", Some(TOKEN), b"");
    assert_eq!(status, 200, "{found}");
    let stored: Vec<String> = serde_json::from_str::<Vec<Value>>(&found)
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!stored.is_empty(), "no stored message: {found}");
    // every route with a path value, given one that is not UTF-8 once decoded,
    // answers a status its description lists (a run of random cases rarely
    // draws this, so it is asked of each route here)
    for (method, template) in routes.iter().filter(|(_, t)| t.contains('{')) {
        for value in ["%a0", "x%C3%28", "%ff%fe"] {
            let path = fill(template, value);
            let (status, body) = http(admin, method, &path, Some(TOKEN), b"");
            let statuses = documented(&spec, method, template);
            assert!(
                statuses.contains(&status),
                "{method} {path} -> {status}, not among the statuses {statuses:?} the description gives: {body}"
            );
            if status == 400 {
                assert!(body.contains("percent-encoded"), "{method} {path}: {body}");
            }
        }
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&probe(routes.len(), stored), |probe| {
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
        // the answer is one the description documents for this operation (a value
        // that makes the path another route's, or none, gets 404/405 instead)
        if method == spec_method {
            let statuses = documented(&spec, method, template);
            let elsewhere = (status == 404 && body.contains("no route"))
                || (status == 405 && body.contains("does not take"));
            prop_assert!(
                statuses.contains(&status) || elsewhere,
                "{method} {path} -> {status}, not among the statuses {statuses:?} the description gives: {body}"
            );
            if !elsewhere
                && let Some(schema) = answer_schema(&spec, method, template, status)
            {
                let v: Value =
                    serde_json::from_str(&body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
                if let Err(e) = conforms(&spec, schema, &v, "body") {
                    return Err(TestCaseError::fail(format!(
                        "{method} {path} -> {status}: the answer does not fit the description: {e}\n{body}"
                    )));
                }
            }
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

/// `hie ctl` flags for the running engine, then `args`; exit success and all output.
fn ctl_with(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(hie_bin())
        .arg("ctl")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("HIE_PRODUCTION")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("hie ctl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn tls_with_the_token_in_a_variable_and_ctl_reading_both_from_the_production() {
    const VAR: &str = "HIE_TEST_ADMIN_TOKEN";
    let sink = Sink::start("sink");
    let inbound = free_port();
    let admin_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("self-signed certificate");
    std::fs::write(dir.path().join("admin.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("admin.key"), cert.signing_key.serialize_pem()).unwrap();
    let toml = production_toml(inbound, sink.port, Some("passthrough"), "").replace(
        "[admin]\ntoken_file = \"admin.token\"\n",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_env = \"{VAR}\"\ntls_cert = \"admin.crt\"\ntls_key = \"admin.key\"\n"
        ),
    );
    assert!(toml.contains("tls_cert"), "{toml}");
    std::fs::write(dir.path().join("production.toml"), toml).unwrap();
    let plugins = plugin_dir(&["passthrough"]);
    let mut proc = Proc::hie(
        "hie run",
        &["run", dir.path().to_str().unwrap(), "--log-format", "json"],
        &[
            ("HIE_PLUGIN_PATH", plugins.to_str().unwrap()),
            (VAR, TOKEN),
            ("RUST_LOG", "info"),
        ],
    );
    let line = proc.wait_for_line("admin api listening", Duration::from_secs(90));
    assert!(line.contains(r#""tls":true"#), "{line}");
    wait_for_port(inbound);
    let production = dir.path().to_str().unwrap();

    // address (https), token (the variable) and CA (the certificate) all from the production
    let (ok, out) = ctl_with(&[(VAR, TOKEN)], &["-p", production, "--json", "status"]);
    assert!(ok, "{out}\n--- engine:\n{}", proc.dump());
    let status: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(status["name"], "admin-e2e");
    assert_eq!(status["items"].as_array().unwrap().len(), 3);
    let ack = mllp_call(inbound, hl7("ADT^A01", "T1", "P1").as_bytes());
    assert_eq!(ack_code(&ack).0, "AA");
    sink.wait_for(1);
    let (ok, out) = ctl_with(&[(VAR, TOKEN)], &["-p", production, "pause", "out"]);
    assert!(ok && out.contains("paused"), "{out}");

    // a wrong token over TLS: 401; no variable: says which one to set
    let (ok, out) = ctl_with(&[(VAR, "not-the-token")], &["-p", production, "items"]);
    assert!(!ok && out.contains("401"), "{out}");
    let (ok, out) = ctl_with(&[], &["-p", production, "items"]);
    assert!(!ok && out.contains(VAR), "{out}");

    // flags instead of the production; without the CA the certificate is refused
    let token_file = dir.path().join("flag.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let url = format!("https://127.0.0.1:{admin_port}");
    let ca = dir.path().join("admin.crt");
    let (ok, out) = ctl_with(
        &[],
        &[
            "--addr",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
            "--ca-cert",
            ca.to_str().unwrap(),
            "--json",
            "items",
            "out",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["state"], "paused");
    let (ok, out) = ctl_with(
        &[],
        &[
            "--addr",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
            "items",
        ],
    );
    assert!(!ok && out.contains("--ca-cert"), "{out}");

    // plain HTTP on the TLS port gets no HTTP answer
    let mut s = TcpStream::connect(("127.0.0.1", admin_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(
        format!("GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/1.1 200"),
        "plain HTTP answered on the TLS port"
    );
}

#[test]
fn failure_metrics_and_ready_follow_traps_deadlines_and_a_failed_item() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let slow_in = free_port();
    let extra = format!(
        r#"
[[items]]
name = "slow-in"
kind = "service"
adapter = {{ type = "mllp-in", port = {slow_in} }}
targets = ["slow"]

[[items]]
name = "slow"
kind = "process"
plugin = "engine-faulty"
settings = {{ delay_ms = "400" }}
limits = {{ deadline = "50ms" }}
targets = ["out"]
"#
    );
    let toml = production_toml(inbound, sink.port, Some("engine-faulty"), &extra).replace(
        "name = \"mid\"\nkind = \"process\"\n",
        "name = \"mid\"\nkind = \"process\"\nrestart = { policy = \"on-failure\", max_restarts = 2, within = \"60s\", backoff = \"50ms\", max_backoff = \"1s\" }\n",
    );
    assert!(toml.contains("max_restarts = 2"), "{toml}");
    let p = Running::start(inbound, &toml, &[], &["engine-faulty"]);
    wait_for_port(slow_in);
    let metric = |name: &str| -> f64 {
        let (status, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
        assert_eq!(status, 200);
        *parse_metrics(&text)
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    // every limit's series is there before the first hit
    for limit in ["deadline", "fuel", "memory", "output"] {
        assert_eq!(
            metric(&format!("hie_plugin_limit_hits_total{{item=mid,limit={limit}}}")),
            0.0
        );
    }
    assert_eq!(metric("hie_plugin_traps_total{item=mid}"), 0.0);

    p.send("OK1");
    sink.wait_for(1);
    for i in 0..2 {
        let ack = mllp_call(inbound, hl7("ADT^A01", &format!("C{i}"), "CRASH").as_bytes());
        assert_eq!(ack_code(&ack).0, "AA");
        eventually("the trap counted", Duration::from_secs(20), || {
            (metric("hie_plugin_traps_total{item=mid}") == (i + 1) as f64).then_some(())
        });
        eventually("the worker restarted", Duration::from_secs(20), || {
            (metric("hie_worker_restarts_total{item=mid}") == (i + 1) as f64).then_some(())
        });
    }
    let ack = mllp_call(slow_in, hl7("ADT^A01", "SLOW1", "P2").as_bytes());
    assert_eq!(ack_code(&ack).0, "AA");
    eventually("the deadline hit counted", Duration::from_secs(20), || {
        (metric("hie_plugin_limit_hits_total{item=slow,limit=deadline}") == 1.0).then_some(())
    });
    eventually("failures counted", Duration::from_secs(20), || {
        (metric("hie_messages_failed_total{item=mid}") == 2.0
            && metric("hie_messages_failed_total{item=slow}") == 1.0)
            .then_some(())
    });
    assert_eq!(metric("hie_messages_in_total{item=mid}"), 3.0);
    assert_eq!(metric("hie_messages_out_total{item=mid}"), 1.0);
    assert_eq!(metric("hie_plugin_traps_total{item=slow}"), 0.0);
    let letters = p.ctl_json(&["dead-letters", "list"]);
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(letters.iter().filter(|l| l["item"] == "mid").count(), 2);
    assert_eq!(letters.iter().filter(|l| l["item"] == "slow").count(), 1);
    assert_eq!(http(p.admin, "GET", "/ready", Some(TOKEN), b"").0, 200);
    let (ok, out) = p.ctl(&["ready"]);
    assert!(ok && out.trim() == "ready", "{out}");

    // a third crash within the window is one more than max_restarts: mid fails,
    // and /ready says so until an operator restarts it
    mllp_call(inbound, hl7("ADT^A01", "C2", "CRASH").as_bytes());
    eventually("mid failed", Duration::from_secs(20), || {
        (p.ctl_json(&["items", "mid"])["state"] == "failed").then_some(())
    });
    let (status, body) = http(p.admin, "GET", "/ready", Some(TOKEN), b"");
    assert_eq!(status, 503, "{body}");
    let readiness: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(readiness["ready"], false);
    assert!(
        readiness["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("item mid is failed")),
        "{body}"
    );
    let (ok, out) = p.ctl(&["ready"]);
    assert!(!ok && out.contains("not ready") && out.contains("mid"), "{out}");
    assert_eq!(metric("hie_item_state{item=mid,state=failed}"), 1.0);
    assert_eq!(p.ctl_json(&["restart", "mid"])["state"], "running");
    assert_eq!(http(p.admin, "GET", "/ready", Some(TOKEN), b"").0, 200);
    p.send("OK2");
    sink.wait_for(2);
}

/// Unmounts a tmpfs when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(at.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `path` until a write fails.
fn fill_disk(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while let Ok(n) = file.write(&chunk) {
        if n == 0 {
            break;
        }
    }
    let small = [0u8; 512];
    while let Ok(n) = file.write(&small) {
        if n == 0 {
            break;
        }
    }
    let _ = file.sync_all();
}

#[test]
fn ready_is_false_while_the_store_cannot_be_written() {
    let disk = tempfile::tempdir().unwrap();
    let _mount = match Tmpfs::mount(disk.path(), "16m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("skipped: cannot mount a tmpfs to fill ({reason}); needs root");
            return;
        }
    };
    let data = disk.path().join("data");
    let sink = Sink::start("sink");
    let inbound = free_port();
    let toml = production_toml(inbound, sink.port, Some("passthrough"), "").replace(
        "drain_timeout = \"5s\"\n",
        &format!("drain_timeout = \"5s\"\ndata_dir = \"{}\"\n", data.display()),
    );
    let p = Running::start(inbound, &toml, &[], &["passthrough"]);
    p.send("D0");
    sink.wait_for(1);
    assert_eq!(http(p.admin, "GET", "/ready", Some(TOKEN), b"").0, 200);

    let filler = disk.path().join("filler");
    fill_disk(&filler);
    // intake needs a store commit: once one fails, messages are refused (AR)
    let refused = (0..200).find(|i| {
        let body = format!(
            "{}\rNTE|1||{}",
            hl7("ADT^A01", &format!("F{i}"), "P1"),
            "x".repeat(4096)
        );
        let ack = mllp_call(inbound, body.as_bytes());
        ack_code(&ack).0 != "AA"
    });
    assert!(
        refused.is_some(),
        "the store never refused a message on a full disk"
    );
    let (status, body) = http(p.admin, "GET", "/ready", Some(TOKEN), b"");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store"), "{body}");
    let (ok, out) = p.ctl(&["ready"]);
    assert!(!ok && out.contains("store"), "{out}");
    // the probes and the rest of the API still answer
    assert_eq!(http(p.admin, "GET", "/health", Some(TOKEN), b"").0, 200);
    assert_eq!(http(p.admin, "GET", "/api/v1/items", Some(TOKEN), b"").0, 200);

    std::fs::remove_file(&filler).unwrap();
    eventually("ready again once space is freed", Duration::from_secs(20), || {
        (http(p.admin, "GET", "/ready", Some(TOKEN), b"").0 == 200).then_some(())
    });
    p.send("D1");
}

#[test]
fn sigint_drains_the_queues_and_exits_0() {
    const N: usize = 20;
    let sink = Sink::start("sink");
    let inbound = free_port();
    // mid takes 50 ms a message, so most are still queued when the signal comes
    let toml = production_toml(inbound, sink.port, Some("engine-faulty"), "").replace(
        "plugin = \"engine-faulty\"\n",
        "plugin = \"engine-faulty\"\nsettings = { delay_ms = \"50\" }\n",
    );
    let mut p = Running::start(inbound, &toml, &[], &["engine-faulty"]);
    for i in 0..N {
        p.send(&format!("Q{i}"));
    }
    let before = sink.messages().len();
    p.proc.signal(nix::sys::signal::Signal::SIGINT);
    let status = p.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", p.proc.dump());
    assert!(
        before < N,
        "everything was delivered before the signal: nothing to drain"
    );
    assert_eq!(sink.wait_for(N).len(), N, "not drained before exit");
    assert_eq!(
        p.proc.lines_with(r#""signal":"SIGINT""#).len(),
        1,
        "{}",
        p.proc.dump()
    );
    assert!(
        p.proc.lines_with("stopped with messages left").is_empty(),
        "{}",
        p.proc.dump()
    );
}

#[test]
fn items_show_worker_pids_restarts_and_the_age_of_the_oldest_message() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let toml = production_toml(inbound, sink.port, Some("passthrough"), "").replace(
        "plugin = \"passthrough\"\n",
        "plugin = \"passthrough\"\nexecution = { mode = \"multi_process\", processes = 2, threads = 1 }\n",
    );
    assert!(toml.contains("multi_process"), "{toml}");
    let p = Running::start(inbound, &toml, &[], &["passthrough"]);
    let pids = |view: &Value| -> Vec<i32> {
        view["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect()
    };
    let is_worker = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("worker"))
    };
    let first = eventually("two worker pids", Duration::from_secs(60), || {
        let view = p.ctl_json(&["items", "mid"]);
        (pids(&view).len() == 2).then_some(view)
    });
    assert_eq!(first["workers"], 2, "{first}");
    assert_eq!(first["restarts"], 0, "{first}");
    let before = pids(&first);
    for pid in &before {
        assert!(is_worker(*pid), "pid {pid} is not a hie worker process");
    }
    let (ok, table) = p.ctl(&["items", "mid"]);
    assert!(
        ok && table.contains(&format!("pids {},{}", before[0], before[1])),
        "{table}"
    );

    // a worker killed: replaced, and counted as a restart in the view and /metrics
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(before[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let after = eventually("the killed worker replaced", Duration::from_secs(30), || {
        let view = p.ctl_json(&["items", "mid"]);
        let now = pids(&view);
        (now.len() == 2 && !now.contains(&before[0])).then_some(view)
    });
    assert_eq!(after["restarts"], 1, "{after}");
    assert!(pids(&after).contains(&before[1]), "{after}");
    let (_, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
    assert_eq!(parse_metrics(&text)["hie_worker_restarts_total{item=mid}"], 1.0);
    p.send("W1");
    sink.wait_for(1);

    // the age of the oldest waiting message, in the view and in /metrics
    assert_eq!(p.ctl_json(&["pause", "out"])["state"], "paused");
    p.send("W2");
    std::thread::sleep(Duration::from_millis(600));
    let out = p.ctl_json(&["items", "out"]);
    assert_eq!(out["queue_depth"], 1, "{out}");
    assert!(out["oldest_age_ms"].as_u64().unwrap() >= 600, "{out}");
    let (_, text) = http(p.admin, "GET", "/metrics", Some(TOKEN), b"");
    let metrics = parse_metrics(&text);
    assert!(metrics["hie_queue_oldest_age_seconds{item=out}"] >= 0.6, "{text}");
    assert_eq!(metrics["hie_queue_depth{item=out}"], 1.0);
    assert_eq!(p.ctl_json(&["resume", "out"])["state"], "running");
    sink.wait_for(2);
    eventually(
        "an empty queue has no oldest age",
        Duration::from_secs(20),
        || (p.ctl_json(&["items", "out"])["oldest_age_ms"] == Value::Null).then_some(()),
    );
}

#[test]
fn ctl_covers_every_route_with_tables_and_json() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let p = Running::start(
        inbound,
        &production_toml(inbound, sink.port, Some("passthrough"), ""),
        &[],
        &["passthrough"],
    );
    let ok = |args: &[&str]| -> String {
        let (ok, out) = p.ctl(args);
        assert!(ok, "hie ctl {args:?}: {out}\n--- engine:\n{}", p.proc.dump());
        out
    };
    // probes and descriptions
    assert!(ok(&["health"]).contains("alive (admin-e2e)"));
    assert_eq!(p.ctl_json(&["health"])["status"], "alive");
    assert_eq!(ok(&["ready"]).trim(), "ready");
    assert_eq!(p.ctl_json(&["ready"])["ready"], true);
    assert!(ok(&["metrics"]).contains("# TYPE hie_messages_in_total counter"));
    assert!(p.ctl_json(&["openapi"])["paths"]["/api/v1/items"].is_object());
    let status = ok(&["status"]);
    assert!(
        status.starts_with("production admin-e2e  (0 dead letters)") && status.contains("PLUGIN"),
        "{status}"
    );

    // disable dead-letters what waits; enable; requeue one, discard the other
    assert_eq!(p.ctl_json(&["pause", "out"])["state"], "paused");
    p.send("D1");
    p.send("D2");
    eventually("two waiting at out", Duration::from_secs(20), || {
        (p.depth("out") == 2).then_some(())
    });
    assert!(ok(&["disable", "out"]).contains("disabled"));
    let letters = p.ctl_json(&["dead-letters", "list"]);
    let ids: Vec<String> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{letters}");
    let table = ok(&["dead-letters", "list"]);
    assert!(table.starts_with("ID") && table.contains(&ids[0]), "{table}");
    assert_eq!(p.ctl_json(&["enable", "out"])["state"], "running");
    assert!(ok(&["dead-letters", "requeue", &ids[0]]).contains("requeued"));
    sink.wait_for(1);
    assert!(ok(&["dead-letters", "discard", &ids[1]]).contains("discarded"));
    assert_eq!(p.ctl_json(&["dead-letters", "list"]), serde_json::json!([]));
    let (failed, err) = p.ctl(&["dead-letters", "discard", &ids[1]]);
    assert!(!failed && err.contains("404"), "{err}");

    // stored messages: search, show, trace, resend, purge
    let found = p.ctl_json(&["messages", "search", "--control-id", "D1"]);
    let found = found.as_array().unwrap();
    assert!(!found.is_empty(), "{found:?}");
    let inbound_copy = found.iter().find(|m| m["source"] == "in").unwrap();
    let id = inbound_copy["id"].as_str().unwrap();
    let table = ok(&["messages", "search", "--control-id", "D1"]);
    assert!(table.starts_with("ID") && table.contains(id), "{table}");
    let shown = ok(&["messages", "show", id]);
    assert!(shown.contains("|D1|") && shown.contains("ITEM"), "{shown}");
    assert_eq!(
        p.ctl_json(&["messages", "show", id])["summary"]["control_id"],
        "D1"
    );
    let trace = p.ctl_json(&["messages", "trace", id, "--session"]);
    let items: Vec<&str> = trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item"].as_str().unwrap())
        .collect();
    assert!(items.contains(&"mid") && items.contains(&"out"), "{trace}");
    assert!(ok(&["messages", "trace", id]).starts_with("AT"));
    let to_out = found.iter().find(|m| m["target"] == "out").unwrap();
    let resent = p.ctl_json(&["messages", "resend", to_out["id"].as_str().unwrap()]);
    assert_eq!(resent["to"], "out", "{resent}");
    let again = sink.wait_for(2);
    assert!(String::from_utf8_lossy(&again[1]).contains("|D1|"));
    assert!(ok(&["messages", "resend", id, "--to", "mid"]).contains("resent as"));
    sink.wait_for(3);
    let purged = p.ctl_json(&["messages", "purge", "--older-than", "1h"]);
    assert_eq!(purged["purged"], 0, "{purged}");
    assert!(ok(&["messages", "purge", "--older-than", "1h"]).contains("purged 0 messages"));
    let (failed, err) = p.ctl(&["messages", "purge", "--older-than", "soon"]);
    assert!(!failed && err.contains("400") && err.contains("30d"), "{err}");

    // the rest of the item actions
    assert_eq!(p.ctl_json(&["restart", "mid"])["state"], "running");
    let (failed, err) = p.ctl(&["promote", "mid"]);
    assert!(!failed && err.contains("no canary"), "{err}");
    let (failed, err) = p.ctl(&["rollback", "mid"]);
    assert!(!failed && err.contains("no previous version"), "{err}");
}

#[test]
fn item_log_levels_reach_multi_process_workers() {
    let sink = Sink::start("sink");
    let inbound = free_port();
    let toml = production_toml(
        inbound,
        sink.port,
        Some("hl7-router"),
        "\n[log.items]\nmid = \"debug\"\n",
    )
    .replace(
        "plugin = \"hl7-router\"\n",
        "plugin = \"hl7-router\"\nexecution = { mode = \"multi_process\", processes = 1, threads = 1 }\nsettings = { \"rule.1\" = \"MSH-9.1 = ADT -> out\" }\n",
    );
    assert!(toml.contains("multi_process"), "{toml}");
    let p = Running::start(inbound, &toml, &[], &["hl7-router"]);
    p.send("L1");
    sink.wait_for(1);
    // the router's debug line, logged in the worker process, reaches the engine's
    // log at debug level under the item's name (RUST_LOG=info for everything else)
    let line = eventually("the worker's debug line", Duration::from_secs(20), || {
        p.proc.lines_with("rule.1 matched").into_iter().next()
    });
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "DEBUG", "{line}");
    assert_eq!(v["item"], "mid", "{line}");
    assert_eq!(v["target"], "hie_worker", "{line}");
    assert!(p.proc.lines_with("MSH|").is_empty(), "a message body was logged");
}
