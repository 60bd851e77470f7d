//! `hie plugin test`: run a component in the real host over sample cases.
//!
//! A case is `NAME.in.hl7` (the input; LF or CRLF line ends become CR segment
//! terminators) with what is expected of it: `NAME.out.hl7` (the body passed,
//! forwarded or replied) and/or `NAME.expect.toml` (the outcome). Settings and
//! lookup tables come from `settings.toml` (every case) and `NAME.settings.toml`
//! (this case; its keys win).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use hie_core::{Envelope, Failure, HostApi, LogLevel, Outcome, Plugin as _, PluginError};
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
}

/// A case's settings file: `[settings]`, `[lookups.TABLE]`, `[adapter]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    adapter: Option<AdapterFile>,
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
        expected_body,
        expect: expect.unwrap_or_default(),
    })
}

/// The host a case runs against: its lookup tables, and a record of what the plugin did.
#[derive(Default)]
struct CaseHost {
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    sent: Mutex<Vec<String>>,
    logs: Mutex<Vec<String>>,
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
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(target.to_owned());
        Ok(())
    }
    fn send_request_sync(
        &self,
        _from: &str,
        target: &str,
        _msg: Envelope,
        _timeout_ms: u32,
    ) -> Result<Envelope, Failure> {
        Err(Failure::transient(
            "timeout",
            format!("hie plugin test: no item {target} answers requests"),
        ))
    }
    fn send_request_async(&self, _from: &str, target: &str, _msg: Envelope) -> Result<String, Failure> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(target.to_owned());
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
    sent: Vec<String>,
    logs: Vec<String>,
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

fn describe(result: &Result<Outcome, PluginError>) -> String {
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
    let mut problems = Vec::new();
    let got = describe(&actual.result);
    let expect = &case.expect;
    let kind = match &actual.result {
        Ok(o) => kind_of(o),
        Err(PluginError::Failed(_)) => "fail",
        Err(_) => "error",
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
        match &actual.result {
            Err(PluginError::Failed(f)) => {
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
    if let Some(want) = &case.expected_body {
        problems.extend(compare_bodies(want, &actual.result, &got));
    }
    problems
}

fn compare_bodies(want: &[u8], result: &Result<Outcome, PluginError>, got: &str) -> Vec<String> {
    let bodies: Vec<(String, &[u8])> = match result {
        Ok(Outcome::Pass(m) | Outcome::Reply(m)) => vec![(String::new(), &m.body[..])],
        Ok(Outcome::Forward(routed)) => routed
            .iter()
            .map(|r| (format!(" (to {})", r.target), &r.message.body[..]))
            .collect(),
        _ => return vec![format!("expected a message body, got {got}")],
    };
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
    let runner = Runner::new(wasm, item)?;
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

/// The loaded component, instantiated afresh for every case.
struct Runner {
    component: Arc<hie_wasm::Component>,
    item: String,
}

impl Runner {
    fn new(wasm: &Path, item: &str) -> anyhow::Result<Runner> {
        let host = hie_wasm::WasmHost::new(hie_wasm::HostConfig::default()).map_err(one_line)?;
        Ok(Runner {
            component: host.load(wasm).map_err(one_line)?,
            item: item.to_owned(),
        })
    }

    /// Runs `on-init` (with the case's settings), `on-start` and `on-message` on a
    /// fresh instance; the test adapter answers with the case's ACK code.
    fn run(&self, case: &Case) -> Actual {
        let case_host = Arc::new(CaseHost {
            lookups: case.lookups.clone(),
            ..CaseHost::default()
        });
        let code = case.ack;
        let mut context = hie_wasm::ItemContext::new(self.item.clone(), case_host.clone());
        context.settings = case.settings.clone();
        context.adapter = Some(Arc::new(move |req: &[u8]| Ok(ack_for(req, code))));
        let input = Envelope::hl7(format!("{}-sender", self.item), case.input.clone());
        let result = self.component.instantiate(context).and_then(|mut plugin| {
            plugin.start()?;
            plugin.call(input)
        });
        let take = |m: &Mutex<Vec<String>>| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
        Actual {
            result,
            sent: take(&case_host.sent),
            logs: take(&case_host.logs),
        }
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
            expected_body: body.map(<[u8]>::to_vec),
            expect,
        }
    }

    fn actual(result: Result<Outcome, PluginError>) -> Actual {
        Actual {
            result,
            sent: Vec::new(),
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
