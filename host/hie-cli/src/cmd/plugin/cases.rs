//! `hie plugin test`: run a component in the real host over sample cases.
//!
//! A case is `NAME.in.hl7` (the input; LF or CRLF line ends become CR segment
//! terminators) with what is expected of it: `NAME.out.hl7` (the body passed,
//! forwarded or replied) and/or `NAME.expect.toml` (the outcome). Settings, lookup
//! tables, the adapter's ACK code, replies to requests and message hooks come from
//! `settings.toml` (every case) and `NAME.settings.toml` (this case; its keys win).
//! Reply bodies may also be files: `replies/TARGET.hl7` (every case) and
//! `NAME.replies/TARGET.hl7` (this case).
//!
//! A case runs as the engine would run the item: `on-before-process` of each hook,
//! `on-message`, then `on-after-process` of each hook (or `on-process-error` on a
//! failure), then `on-before-send`/`on-after-send` of each hook for every forwarded
//! copy.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use hie_core::{
    BeforeAction, Envelope, ErrorAction, Failure, HostApi, LogLevel, Outcome, Plugin as _, PluginError,
};
use hie_hl7::ack::{AckCode, build_ack, build_nak_unparseable};
use serde::Deserialize;

use super::diff;

/// What a case expects of the outcome (`NAME.expect.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `done`, `pass`, `forward`, `reply`, `drop` or `fail`.
    outcome: Option<String>,
    /// For `forward`: the targets, in order.
    targets: Option<Vec<String>>,
    /// For `fail`: the failure code.
    code: Option<String>,
    /// For `fail`: whether the failure is retryable.
    retryable: Option<bool>,
    /// Targets of messages the plugin sent through `host.send`, in order.
    sent: Option<Vec<String>>,
    /// Targets of the plugin's `send-request-sync` and `send-request-async`, in order.
    requested: Option<Vec<String>>,
    /// For `fail`: what the hooks' `on-process-error` decided: `default`, `retry`,
    /// `dead-letter` or `suppress`.
    error_action: Option<String>,
    /// Properties every output message must have, with these values.
    properties: Option<BTreeMap<String, String>>,
}

/// A case's settings file: `[settings]`, `[lookups.TABLE]`, `[adapter]`,
/// `[replies.TARGET]`, `[[hooks]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    adapter: Option<AdapterFile>,
    #[serde(default)]
    replies: BTreeMap<String, ReplyFile>,
    /// The hooks attached to the item, in order; a case's own list replaces the shared one.
    hooks: Option<Vec<HookFile>>,
}

/// How a target answers `send-request-sync`: an ACK of the request with this code,
/// or a failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyFile {
    ack: Option<String>,
    fail: Option<String>,
    text: Option<String>,
    #[serde(default)]
    retryable: bool,
}

/// One message hook: its component (relative to the cases directory) and settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookFile {
    plugin: PathBuf,
    #[serde(default)]
    settings: toml::Table,
}

/// What a target answers a request with.
#[derive(Debug, Clone)]
enum Reply {
    Body(Vec<u8>),
    Ack(AckCode),
    Fail(Failure),
}

/// A hook of a case, ready to load.
#[derive(Debug, Clone)]
struct CaseHook {
    plugin: PathBuf,
    settings: BTreeMap<String, String>,
}

/// How the test adapter of an operation answers: with an ACK of this code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterFile {
    ack: String,
}

/// One loaded case.
struct Case {
    name: String,
    input: Vec<u8>,
    settings: BTreeMap<String, String>,
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    ack: AckCode,
    replies: BTreeMap<String, Reply>,
    hooks: Vec<CaseHook>,
    expected_body: Option<Vec<u8>>,
    expect: Expect,
}

/// HL7 text from a file: LF and CRLF line ends become CR segment terminators.
fn hl7_file(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                out.push(b'\r');
                i += 2;
            }
            (b'\n', _) => {
                out.push(b'\r');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `rule.1 = "x"` in TOML is a nested table; settings are flat, dotted keys.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                out.insert(key, v.to_string());
            }
            _ => bail!("setting {key}: expected a string, number or boolean"),
        }
    }
    Ok(())
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    Ok(Some(value))
}

fn parse_ack_code(code: &str) -> anyhow::Result<AckCode> {
    Ok(match code {
        "AA" => AckCode::AA,
        "AE" => AckCode::AE,
        "AR" => AckCode::AR,
        "CA" => AckCode::CA,
        "CE" => AckCode::CE,
        "CR" => AckCode::CR,
        other => bail!("adapter ack {other:?}: expected AA, AE, AR, CA, CE or CR"),
    })
}

fn load_cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot read the cases directory {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".in.hl7"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "{} has no cases: add NAME.in.hl7 with NAME.out.hl7 or NAME.expect.toml",
            dir.display()
        );
    }
    let shared: CaseFile = read_toml(&dir.join("settings.toml"))?.unwrap_or_default();
    names
        .into_iter()
        .map(|name| load_case(dir, name, &shared))
        .collect()
}

/// `DIR/TARGET.hl7` files as reply bodies.
fn reply_files(dir: &Path, replies: &mut BTreeMap<String, Reply>) -> anyhow::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let Some(target) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".hl7"))
        else {
            continue;
        };
        let body = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        replies.insert(target.to_owned(), Reply::Body(hl7_file(&body)));
    }
    Ok(())
}

/// `[replies.TARGET]` entries of a settings file.
fn reply_table(
    file: &str,
    table: &BTreeMap<String, ReplyFile>,
    replies: &mut BTreeMap<String, Reply>,
) -> anyhow::Result<()> {
    for (target, r) in table {
        let reply = match (&r.ack, &r.fail) {
            (Some(ack), None) => {
                Reply::Ack(parse_ack_code(ack).with_context(|| format!("{file}: [replies.{target}]"))?)
            }
            (None, Some(code)) => Reply::Fail(Failure {
                code: code.clone(),
                text: r
                    .text
                    .clone()
                    .unwrap_or_else(|| format!("{target} failed the request")),
                retryable: r.retryable,
            }),
            _ => bail!("{file}: [replies.{target}] needs exactly one of ack = \"AA\" or fail = \"CODE\""),
        };
        replies.insert(target.clone(), reply);
    }
    Ok(())
}

/// A case file's hooks, with paths resolved against the cases directory.
fn case_hooks(dir: &Path, hooks: &[HookFile]) -> anyhow::Result<Vec<CaseHook>> {
    hooks
        .iter()
        .map(|h| {
            let mut settings = BTreeMap::new();
            flatten("", &h.settings, &mut settings)?;
            Ok(CaseHook {
                plugin: dir.join(&h.plugin),
                settings,
            })
        })
        .collect()
}

fn load_case(dir: &Path, name: String, shared: &CaseFile) -> anyhow::Result<Case> {
    let file = |suffix: &str| dir.join(format!("{name}{suffix}"));
    let input =
        fs::read(file(".in.hl7")).with_context(|| format!("cannot read {}", file(".in.hl7").display()))?;
    let own: CaseFile = read_toml(&file(".settings.toml"))?.unwrap_or_default();
    let mut settings = BTreeMap::new();
    flatten("", &shared.settings, &mut settings)?;
    flatten("", &own.settings, &mut settings)?;
    let mut lookups = shared.lookups.clone();
    for (table, entries) in own.lookups {
        lookups.entry(table).or_default().extend(entries);
    }
    let ack = match own.adapter.as_ref().or(shared.adapter.as_ref()) {
        Some(a) => parse_ack_code(&a.ack).with_context(|| format!("case {name}"))?,
        None => AckCode::AA,
    };
    let mut replies = BTreeMap::new();
    reply_files(&dir.join("replies"), &mut replies)?;
    reply_table("settings.toml", &shared.replies, &mut replies)?;
    reply_files(&dir.join(format!("{name}.replies")), &mut replies)?;
    reply_table(&format!("{name}.settings.toml"), &own.replies, &mut replies)?;
    let hooks = case_hooks(
        dir,
        own.hooks
            .as_ref()
            .or(shared.hooks.as_ref())
            .map_or(&[], Vec::as_slice),
    )?;
    let expected_body = match fs::read(file(".out.hl7")) {
        Ok(bytes) => Some(hl7_file(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file(".out.hl7").display())),
    };
    let expect: Option<Expect> = read_toml(&file(".expect.toml"))?;
    if expected_body.is_none() && expect.is_none() {
        bail!("case {name} has no {name}.out.hl7 or {name}.expect.toml: nothing to compare with");
    }
    Ok(Case {
        name,
        input: hl7_file(&input),
        settings,
        lookups,
        ack,
        replies,
        hooks,
        expected_body,
        expect: expect.unwrap_or_default(),
    })
}

/// The host a case runs against: its lookup tables, and a record of what the plugin did.
#[derive(Default)]
struct CaseHost {
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    replies: BTreeMap<String, Reply>,
    sent: Mutex<Vec<String>>,
    requested: Mutex<Vec<String>>,
    logs: Mutex<Vec<String>>,
}

fn push(list: &Mutex<Vec<String>>, entry: &str) {
    list.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry.to_owned());
}

impl HostApi for CaseHost {
    fn log(&self, _item: &str, level: LogLevel, text: &str) {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{level:?}: {text}").to_lowercase());
    }
    fn lookup(&self, table: &str, key: &str) -> Option<String> {
        self.lookups.get(table)?.get(key).cloned()
    }
    fn send(&self, _from: &str, target: &str, _msg: Envelope) -> Result<(), Failure> {
        push(&self.sent, target);
        Ok(())
    }
    /// Answers at once from the case's replies; a target without one fails the
    /// request (permanently: waiting would not help).
    fn send_request_sync(
        &self,
        _from: &str,
        target: &str,
        msg: Envelope,
        _timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        push(&self.requested, target);
        let body = match self.replies.get(target) {
            Some(Reply::Body(body)) => body.clone(),
            Some(Reply::Ack(code)) => ack_for(&msg.body, *code),
            Some(Reply::Fail(failure)) => return Err(failure.clone()),
            None => {
                return Err(Failure::permanent(
                    "no-reply",
                    format!(
                        "hie plugin test: the case has no reply from {target}: add replies/{target}.hl7 \
                         or [replies.{target}] to settings.toml"
                    ),
                ));
            }
        };
        let mut reply = msg.derive(target, body);
        reply.correlation_id = Some(msg.id);
        Ok(reply)
    }
    fn send_request_async(&self, _from: &str, target: &str, _msg: Envelope) -> Result<String, Failure> {
        push(&self.requested, target);
        Ok(format!("test-request-{target}"))
    }
    fn counter_add(&self, _item: &str, _name: &str, _value: u64) {}
    fn histogram_record(&self, _item: &str, _name: &str, _value: f64) {}
}

/// The ACK the test adapter answers `request` with.
fn ack_for(request: &[u8], code: AckCode) -> Vec<u8> {
    match hie_hl7::Message::parse(request) {
        Ok(original) => build_ack(&original, code, None),
        Err(e) => build_nak_unparseable(&e.to_string()),
    }
}

/// What one run produced: the outcome or the failure, and what went out through the host.
struct Actual {
    result: Result<Outcome, PluginError>,
    /// A hook's `on-before-process` stopped the message before the item saw it.
    stopped: Option<Stopped>,
    /// What the hooks' `on-process-error` decided, when the item failed.
    error_action: Option<ErrorAction>,
    /// Forwarded copies a hook's `on-before-send` skipped or rejected: target and why.
    held_back: Vec<(String, String)>,
    /// Hooks that failed (trapped, hit a limit); the engine logs and ignores these.
    hook_errors: Vec<String>,
    sent: Vec<String>,
    requested: Vec<String>,
    logs: Vec<String>,
}

/// How a hook stopped a message before processing.
#[derive(Debug, Clone, PartialEq)]
enum Stopped {
    Skip(String),
    Reject(Failure),
}

fn error_action_name(action: ErrorAction) -> &'static str {
    match action {
        ErrorAction::Default => "default",
        ErrorAction::Retry => "retry",
        ErrorAction::DeadLetter => "dead-letter",
        ErrorAction::Suppress => "suppress",
    }
}

fn kind_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "done",
        Outcome::Pass(_) => "pass",
        Outcome::Forward(_) => "forward",
        Outcome::Reply(_) => "reply",
        Outcome::Drop(_) => "drop",
    }
}

fn describe(actual: &Actual) -> String {
    let mut text = match &actual.stopped {
        Some(Stopped::Skip(reason)) => format!("skip by a hook ({reason})"),
        Some(Stopped::Reject(f)) => format!("reject by a hook: {} ({})", f.code, f.text),
        None => describe_result(&actual.result),
    };
    if let Some(action) = actual.error_action {
        text.push_str(&format!(", hooks decided {}", error_action_name(action)));
    }
    for (target, why) in &actual.held_back {
        text.push_str(&format!(", copy to {target} {why}"));
    }
    text
}

fn describe_result(result: &Result<Outcome, PluginError>) -> String {
    match result {
        Ok(Outcome::Forward(routed)) => {
            let targets: Vec<&str> = routed.iter().map(|r| r.target.as_str()).collect();
            format!("forward to [{}]", targets.join(", "))
        }
        Ok(Outcome::Drop(reason)) => format!("drop ({reason})"),
        Ok(o) => kind_of(o).to_owned(),
        Err(PluginError::Failed(f)) => {
            format!(
                "fail {} ({}): {}",
                f.code,
                if f.retryable { "retryable" } else { "permanent" },
                f.text
            )
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Compares a run with its case; the problems, one per entry (a diff is one entry).
fn compare(case: &Case, actual: &Actual) -> Vec<String> {
    let mut problems: Vec<String> = actual
        .hook_errors
        .iter()
        .map(|e| format!("hook failed: {e}"))
        .collect();
    let got = describe(actual);
    let expect = &case.expect;
    let kind = match (&actual.stopped, &actual.result) {
        (Some(Stopped::Skip(_)), _) => "skip",
        (Some(Stopped::Reject(_)), _) => "reject",
        (None, Ok(o)) => kind_of(o),
        (None, Err(PluginError::Failed(_))) => "fail",
        (None, Err(_)) => "error",
    };
    if let Some(want) = &expect.outcome
        && want != kind
    {
        problems.push(format!("expected outcome {want}, got {got}"));
    }
    if let Some(want) = &expect.targets {
        let targets: Vec<&str> = match &actual.result {
            Ok(Outcome::Forward(routed)) => routed.iter().map(|r| r.target.as_str()).collect(),
            _ => Vec::new(),
        };
        if targets != *want {
            problems.push(format!("expected forward to [{}], got {got}", want.join(", ")));
        }
    }
    if expect.code.is_some() || expect.retryable.is_some() {
        let failure = match (&actual.stopped, &actual.result) {
            (Some(Stopped::Reject(f)), _) | (None, Err(PluginError::Failed(f))) => Some(f),
            _ => None,
        };
        match failure {
            Some(f) => {
                if let Some(code) = expect.code.as_ref().filter(|c| **c != f.code) {
                    problems.push(format!("expected failure code {code}, got {got}"));
                }
                if let Some(r) = expect.retryable.filter(|r| *r != f.retryable) {
                    problems.push(format!("expected retryable = {r}, got {got}"));
                }
            }
            _ => problems.push(format!("expected a failure, got {got}")),
        }
    }
    if let Some(want) = &expect.sent
        && *want != actual.sent
    {
        problems.push(format!(
            "expected sends to [{}], got [{}]",
            want.join(", "),
            actual.sent.join(", ")
        ));
    }
    if let Some(want) = &expect.requested
        && *want != actual.requested
    {
        problems.push(format!(
            "expected requests to [{}], got [{}]",
            want.join(", "),
            actual.requested.join(", ")
        ));
    }
    if let Some(want) = &expect.error_action {
        let got_action = actual
            .error_action
            .map_or("none (no failure or no hook)", error_action_name);
        if want != got_action {
            problems.push(format!("expected hooks to decide {want}, got {got_action}"));
        }
    }
    if let Some(want) = &expect.properties {
        problems.extend(compare_properties(want, &actual.result, &got));
    }
    if let Some(want) = &case.expected_body {
        if actual.stopped.is_some() {
            problems.push(format!("expected a message body, got {got}"));
        } else {
            problems.extend(compare_bodies(want, &actual.result, &got));
        }
    }
    problems
}

/// The messages an outcome carries, each labelled with its target (if forwarded).
fn outputs(result: &Result<Outcome, PluginError>) -> Option<Vec<(String, &Envelope)>> {
    match result {
        Ok(Outcome::Pass(m) | Outcome::Reply(m)) => Some(vec![(String::new(), m)]),
        Ok(Outcome::Forward(routed)) => Some(
            routed
                .iter()
                .map(|r| (format!(" (to {})", r.target), &r.message))
                .collect(),
        ),
        _ => None,
    }
}

fn compare_properties(
    want: &BTreeMap<String, String>,
    result: &Result<Outcome, PluginError>,
    got: &str,
) -> Vec<String> {
    let Some(messages) = outputs(result) else {
        return vec![format!("expected a message with properties, got {got}")];
    };
    let mut problems = Vec::new();
    for (label, m) in messages {
        for (key, value) in want {
            let actual = m.properties.get(key);
            if actual != Some(value) {
                problems.push(format!(
                    "expected property {key} = {value:?}{label}, got {actual:?}"
                ));
            }
        }
    }
    problems
}

fn compare_bodies(want: &[u8], result: &Result<Outcome, PluginError>, got: &str) -> Vec<String> {
    let Some(messages) = outputs(result) else {
        return vec![format!("expected a message body, got {got}")];
    };
    let bodies: Vec<(String, &[u8])> = messages.into_iter().map(|(l, m)| (l, &m.body[..])).collect();
    let want = diff::segments(want);
    bodies
        .into_iter()
        .filter_map(|(label, body)| {
            diff::unified(&want, &diff::segments(body), 3).map(|d| format!("body differs{label}:\n{d}"))
        })
        .collect()
}

/// Reads what a component is, or says in one line why it is not a plugin.
pub fn inspect(wasm: &Path) -> anyhow::Result<hie_wasm::ComponentInfo> {
    hie_wasm::inspect(wasm).map_err(one_line)
}

/// A load error as its own one-line message (its `Display` already names the cause).
fn one_line(e: hie_wasm::LoadError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Runs every case in `cases_dir` against the component `wasm`; prints a line per
/// case, the differences of failed ones, and a summary. Fails if any case failed.
pub fn run(wasm: &Path, cases_dir: &Path, item: &str) -> anyhow::Result<ExitCode> {
    let info = inspect(wasm)?;
    if !info.world.is_item() {
        bail!(
            "{}: a {} component has no on-message to test: test hooks natively with cargo test",
            wasm.display(),
            info.world
        );
    }
    let cases = load_cases(cases_dir)?;
    let runner = Runner::new(wasm, item, &cases)?;
    println!(
        "running {} cases from {} with {} (world {})",
        cases.len(),
        cases_dir.display(),
        wasm.display(),
        info.world
    );
    let mut failed = Vec::new();
    for case in &cases {
        let actual = runner.run(case);
        let problems = compare(case, &actual);
        if problems.is_empty() {
            println!("case {} ... ok", case.name);
            continue;
        }
        println!("case {} ... FAILED", case.name);
        for p in &problems {
            for line in p.lines() {
                println!("    {line}");
            }
        }
        if !actual.requested.is_empty() {
            println!("    requests to: {}", actual.requested.join(", "));
        }
        if !actual.logs.is_empty() {
            println!("    plugin log:");
            actual.logs.iter().for_each(|l| println!("      {l}"));
        }
        failed.push(case.name.as_str());
    }
    let passed = cases.len() - failed.len();
    if failed.is_empty() {
        println!("test result: ok. {passed} passed; 0 failed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "test result: FAILED. {passed} passed; {} failed ({})",
            failed.len(),
            failed.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The loaded component and hooks, instantiated afresh for every case.
struct Runner {
    component: Arc<hie_wasm::Component>,
    hooks: HashMap<PathBuf, Arc<hie_wasm::Component>>,
    item: String,
}

/// A live hook of a case: its name (file stem) and instance.
struct LiveHook {
    name: String,
    hook: hie_wasm::WasmHook,
}

impl Runner {
    fn new(wasm: &Path, item: &str, cases: &[Case]) -> anyhow::Result<Runner> {
        let host = hie_wasm::WasmHost::new(hie_wasm::HostConfig::default()).map_err(one_line)?;
        let mut hooks = HashMap::new();
        for hook in cases.iter().flat_map(|c| &c.hooks) {
            if hooks.contains_key(&hook.plugin) {
                continue;
            }
            let component = host.load(&hook.plugin).map_err(|e| {
                anyhow::anyhow!(
                    "hook of a case: {e} (paths in [[hooks]] are relative to the cases directory)"
                )
            })?;
            if component.world().is_item() {
                bail!(
                    "hook of a case: {}: is a {} component, not a message-hook",
                    hook.plugin.display(),
                    component.world()
                );
            }
            hooks.insert(hook.plugin.clone(), component);
        }
        Ok(Runner {
            component: host.load(wasm).map_err(one_line)?,
            hooks,
            item: item.to_owned(),
        })
    }

    /// Runs the case as the engine runs an item with hooks: fresh instances of the
    /// plugin (`on-init` with the case's settings, `on-start`) and of each hook;
    /// `on-before-process` of each hook, `on-message`, `on-after-process` or
    /// `on-process-error`, then the send hooks for every forwarded copy. The test
    /// adapter answers with the case's ACK code; requests get the case's replies.
    fn run(&self, case: &Case) -> Actual {
        let case_host = Arc::new(CaseHost {
            lookups: case.lookups.clone(),
            replies: case.replies.clone(),
            ..CaseHost::default()
        });
        let mut actual = Actual {
            result: Ok(Outcome::Done),
            stopped: None,
            error_action: None,
            held_back: Vec::new(),
            hook_errors: Vec::new(),
            sent: Vec::new(),
            requested: Vec::new(),
            logs: Vec::new(),
        };
        let mut hooks = Vec::new();
        for h in &case.hooks {
            let name = h
                .plugin
                .file_stem()
                .map_or_else(|| "hook".to_owned(), |s| s.to_string_lossy().into_owned());
            let mut ctx = hie_wasm::ItemContext::new(name.clone(), case_host.clone());
            ctx.settings = h.settings.clone();
            match self.hooks[&h.plugin].instantiate_hook(ctx) {
                Ok(hook) => hooks.push(LiveHook { name, hook }),
                Err(e) => actual.hook_errors.push(format!("{name}: {e}")),
            }
        }
        let code = case.ack;
        let mut context = hie_wasm::ItemContext::new(self.item.clone(), case_host.clone());
        context.settings = case.settings.clone();
        context.adapter = Some(Arc::new(move |req: &[u8]| Ok(ack_for(req, code))));
        let input = Envelope::hl7(format!("{}-sender", self.item), case.input.clone());
        self.process(&mut hooks, input, context, &mut actual);
        let take = |m: &Mutex<Vec<String>>| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
        actual.sent = take(&case_host.sent);
        actual.requested = take(&case_host.requested);
        actual.logs = take(&case_host.logs);
        actual
    }

    fn process(
        &self,
        hooks: &mut [LiveHook],
        mut input: Envelope,
        context: hie_wasm::ItemContext,
        actual: &mut Actual,
    ) {
        let item = self.item.as_str();
        let mut hook_failed = |hook: &str, call: &str, e: PluginError| {
            actual.hook_errors.push(format!("{hook}: {call}: {e}"));
        };
        for h in hooks.iter_mut() {
            match h.hook.before_process(item, &input) {
                Ok(BeforeAction::Continue(m)) => input = m,
                Ok(BeforeAction::Skip(reason)) => {
                    actual.stopped = Some(Stopped::Skip(reason));
                    return;
                }
                Ok(BeforeAction::Reject(f)) => {
                    actual.stopped = Some(Stopped::Reject(f));
                    return;
                }
                // as in the engine: a failed hook is reported and the message goes on
                Err(e) => hook_failed(&h.name, "on-before-process", e),
            }
        }
        let result = self.component.instantiate(context).and_then(|mut plugin| {
            plugin.start()?;
            plugin.call(input.clone())
        });
        let mut outcome = match result {
            Ok(outcome) => outcome,
            Err(err) => {
                if !hooks.is_empty() {
                    let failure = failure_of(&err);
                    let mut decided = ErrorAction::Default;
                    for h in hooks.iter_mut() {
                        match h.hook.process_error(item, &input, &failure) {
                            Ok(action) if decided == ErrorAction::Default => decided = action,
                            Ok(_) => {}
                            Err(e) => hook_failed(&h.name, "on-process-error", e),
                        }
                    }
                    actual.error_action = Some(decided);
                }
                actual.result = Err(err);
                return;
            }
        };
        for h in hooks.iter_mut() {
            match h.hook.after_process(item, &input, &outcome) {
                Ok(o) => outcome = o,
                Err(e) => hook_failed(&h.name, "on-after-process", e),
            }
        }
        if let Outcome::Forward(routed) = &mut outcome
            && !hooks.is_empty()
        {
            let mut kept = Vec::new();
            for mut r in std::mem::take(routed) {
                // Ok(reason): skipped; Err(failure): rejected
                let mut held: Option<Result<String, Failure>> = None;
                for h in hooks.iter_mut() {
                    match h.hook.before_send(item, &r.target, &r.message) {
                        Ok(BeforeAction::Continue(m)) => r.message = m,
                        Ok(BeforeAction::Skip(reason)) => {
                            held = Some(Ok(reason));
                            break;
                        }
                        Ok(BeforeAction::Reject(f)) => {
                            held = Some(Err(f));
                            break;
                        }
                        Err(e) => hook_failed(&h.name, "on-before-send", e),
                    }
                }
                match held {
                    Some(Ok(reason)) => {
                        actual
                            .held_back
                            .push((r.target, format!("skipped by a hook ({reason})")));
                    }
                    Some(Err(f)) => {
                        for h in hooks.iter_mut() {
                            if let Err(e) = h.hook.after_send(item, &r.target, &r.message, Err(&f)) {
                                hook_failed(&h.name, "on-after-send", e);
                            }
                        }
                        actual
                            .held_back
                            .push((r.target, format!("rejected by a hook: {} ({})", f.code, f.text)));
                    }
                    None => {
                        for h in hooks.iter_mut() {
                            if let Err(e) = h.hook.after_send(item, &r.target, &r.message, Ok(())) {
                                hook_failed(&h.name, "on-after-send", e);
                            }
                        }
                        kept.push(r);
                    }
                }
            }
            *routed = kept;
        }
        actual.result = Ok(outcome);
    }
}

/// The failure hooks see for a plugin error, as the engine makes it.
fn failure_of(err: &PluginError) -> Failure {
    match err {
        PluginError::Failed(f) => f.clone(),
        other => Failure {
            code: other.code().to_owned(),
            text: other.to_string(),
            retryable: other.is_retryable(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_segment_terminators() {
        assert_eq!(hl7_file(b"MSH|a\nPID|1\r\nPV1|\r"), b"MSH|a\rPID|1\rPV1|\r");
    }

    #[test]
    fn dotted_setting_keys_are_flattened() {
        let table: toml::Table =
            toml::from_str("rule.1 = \"a -> b\"\nrule.2 = \"c\"\nmatch = \"all\"\nn = 3").unwrap();
        let mut out = BTreeMap::new();
        flatten("", &table, &mut out).unwrap();
        let keys: Vec<_> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["match=all", "n=3", "rule.1=a -> b", "rule.2=c"]);
    }

    fn case(expect: Expect, body: Option<&[u8]>) -> Case {
        Case {
            name: "c".into(),
            input: Vec::new(),
            settings: BTreeMap::new(),
            lookups: BTreeMap::new(),
            ack: AckCode::AA,
            replies: BTreeMap::new(),
            hooks: Vec::new(),
            expected_body: body.map(<[u8]>::to_vec),
            expect,
        }
    }

    fn actual(result: Result<Outcome, PluginError>) -> Actual {
        Actual {
            result,
            stopped: None,
            error_action: None,
            held_back: Vec::new(),
            hook_errors: Vec::new(),
            sent: Vec::new(),
            requested: Vec::new(),
            logs: Vec::new(),
        }
    }

    #[test]
    fn outcome_mismatches_are_named() {
        let want = Expect {
            outcome: Some("forward".into()),
            targets: Some(vec!["pas".into()]),
            ..Expect::default()
        };
        let got = actual(Err(PluginError::Failed(Failure::permanent(
            "no-route",
            "no rule matched",
        ))));
        assert_eq!(
            compare(&case(want, None), &got),
            [
                "expected outcome forward, got fail no-route (permanent): no rule matched",
                "expected forward to [pas], got fail no-route (permanent): no rule matched"
            ]
        );
        let want = Expect {
            outcome: Some("fail".into()),
            code: Some("no-route".into()),
            ..Expect::default()
        };
        assert!(compare(&case(want, None), &got).is_empty());
    }

    #[test]
    fn body_differences_are_a_segment_diff() {
        let out = Outcome::Pass(Envelope::hl7("x", &b"MSH|a\rPID|M\r"[..]));
        let problems = compare(
            &case(Expect::default(), Some(b"MSH|a\rPID|F\r")),
            &actual(Ok(out)),
        );
        assert_eq!(
            problems,
            ["body differs:\n--- expected\n+++ actual\n@@ -1,2 +1,2 @@\n MSH|a\n-PID|F\n+PID|M\n"]
        );
    }
}
