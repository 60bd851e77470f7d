//! Real guest components (from `plugins/testing/`) under the host's limits, grants
//! and host imports: each misbehaviour fails its own call with a typed error and
//! the next call on the same plugin succeeds.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Call, RecordingHost, command, context, host, load};
use hie_core::{Envelope, Failure, LogLevel, Outcome, Plugin, PluginError};
use hie_wasm::{BeforeAction, DirGrant, ErrorAction, Grants, Limits, WasmPlugin};

fn guest(limits: Limits, grants: Grants) -> (WasmPlugin, Arc<RecordingHost>) {
    let host = host();
    let component = load(&host, "wasm-guest");
    let recorder = Arc::new(RecordingHost::default());
    let mut ctx = context(&recorder);
    ctx.limits = limits;
    ctx.grants = grants;
    (component.instantiate(ctx).expect("instantiate"), recorder)
}

fn reply_body(outcome: Outcome) -> String {
    match outcome {
        Outcome::Reply(m) => String::from_utf8_lossy(&m.body).into_owned(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The plugin works again and runs in a fresh instance (its message count restarted).
fn assert_recovered(plugin: &mut WasmPlugin, replacements: u64) {
    let outcome = plugin
        .call(command("count"))
        .expect("the call after a failure succeeds");
    assert_eq!(reply_body(outcome), "1", "a fresh instance handled the next call");
    assert_eq!(plugin.replacements(), replacements);
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let deadline = Duration::from_millis(200);
    let (mut plugin, _) = guest(
        Limits {
            deadline,
            ..Limits::default()
        },
        Grants::default(),
    );
    let started = Instant::now();
    let err = plugin.call(command("loop")).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err, PluginError::Deadline { deadline_ms: 200 });
    assert!(elapsed >= deadline, "stopped early, after {elapsed:?}");
    assert!(
        elapsed < deadline + Duration::from_millis(100),
        "stopped late, after {elapsed:?}"
    );
    assert_recovered(&mut plugin, 1);
}

#[test]
fn a_memory_bomb_is_stopped_at_the_cap() {
    let cap = 16 * 1024 * 1024;
    let (mut plugin, _) = guest(
        Limits {
            memory_bytes: cap,
            ..Limits::default()
        },
        Grants::default(),
    );
    match plugin.call(command("grow")).unwrap_err() {
        PluginError::MemoryLimit {
            limit_bytes,
            requested_bytes,
        } => {
            assert_eq!(limit_bytes, cap);
            assert!(requested_bytes > cap, "requested {requested_bytes}");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert_recovered(&mut plugin, 1);
}

#[test]
fn an_oversized_output_fails_its_call() {
    let cap = 1024 * 1024;
    let (mut plugin, _) = guest(
        Limits {
            output_bytes: cap,
            ..Limits::default()
        },
        Grants::default(),
    );
    let ok = plugin
        .call(command(&format!("big:{}", cap / 2)))
        .expect("under the cap");
    assert_eq!(reply_body(ok).len() as u64, cap / 2);
    match plugin.call(command(&format!("big:{}", cap * 2))).unwrap_err() {
        PluginError::OutputTooLarge {
            size_bytes,
            limit_bytes,
        } => {
            assert_eq!(limit_bytes, cap);
            assert!(size_bytes >= cap * 2, "size {size_bytes}");
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
    assert_recovered(&mut plugin, 1);
}

#[test]
fn a_panic_is_a_trap_with_the_panic_message() {
    let (mut plugin, _) = guest(Limits::default(), Grants::default());
    match plugin.call(command("panic")).unwrap_err() {
        PluginError::Trap { message } => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(message.contains("asked to panic"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("expected Trap, got {other:?}"),
    }
    assert_recovered(&mut plugin, 1);
}

#[test]
fn fuel_runs_out_in_a_loop() {
    let (mut plugin, _) = guest(
        Limits {
            fuel: Some(1_000_000),
            ..Limits::default()
        },
        Grants::default(),
    );
    assert_eq!(
        plugin.call(command("loop")).unwrap_err(),
        PluginError::OutOfFuel { fuel: 1_000_000 }
    );
    assert_recovered(&mut plugin, 1);
}

#[test]
fn a_guest_failure_keeps_the_instance() {
    let (mut plugin, _) = guest(Limits::default(), Grants::default());
    let err = plugin.call(command("fail")).unwrap_err();
    assert_eq!(
        err,
        PluginError::Failed(Failure::transient("asked-to-fail", "as requested"))
    );
    let outcome = plugin.call(command("count")).unwrap();
    assert_eq!(reply_body(outcome), "2", "same instance");
    assert_eq!(plugin.replacements(), 0);
}

#[test]
fn on_init_refusal_carries_the_reason() {
    let host = host();
    let component = load(&host, "wasm-guest");
    let mut ctx = context(&Arc::new(RecordingHost::default()));
    ctx.settings.insert("refuse".into(), "no database".into());
    match component.instantiate(ctx).unwrap_err() {
        PluginError::Instantiate(message) => {
            assert!(
                message.contains("on-init refused: refused: no database"),
                "{message}"
            );
            assert!(message.contains("router"), "{message}");
        }
        other => panic!("expected Instantiate, got {other:?}"),
    }
}

fn dir_grant(host_path: &Path, guest_path: &str, writable: bool) -> Grants {
    Grants {
        dirs: vec![DirGrant {
            host_path: host_path.to_owned(),
            guest_path: guest_path.into(),
            writable,
        }],
        env: Vec::new(),
    }
}

fn assert_io_failure(result: Result<Outcome, PluginError>) {
    match result {
        Err(PluginError::Failed(f)) => assert_eq!(f.code, "io", "{f}"),
        other => panic!("expected an io failure, got {other:?}"),
    }
}

#[test]
fn files_are_invisible_without_a_grant() {
    let (mut plugin, _) = guest(Limits::default(), Grants::default());
    assert_io_failure(plugin.call(command("read:/etc/hostname")));
}

#[test]
fn a_read_only_grant_reads_but_does_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from the host").unwrap();
    let grants = dir_grant(dir.path(), "/data", false);
    let (mut plugin, _) = guest(Limits::default(), grants);
    let read = plugin.call(command("read:/data/hello.txt")).unwrap();
    assert_eq!(reply_body(read), "hello from the host");
    assert_io_failure(plugin.call(command("write:/data/new.txt")));
    assert!(!dir.path().join("new.txt").exists());
    assert_io_failure(plugin.call(command("read:/etc/hostname")));
}

#[test]
fn a_writable_grant_writes() {
    let dir = tempfile::tempdir().unwrap();
    let grants = dir_grant(dir.path(), "/out", true);
    let (mut plugin, _) = guest(Limits::default(), grants);
    plugin.call(command("write:/out/new.txt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "written"
    );
}

#[test]
fn only_allow_listed_env_vars_are_visible() {
    let home = std::env::var("HOME").expect("HOME is set for tests");
    let path = std::env::var("PATH").expect("PATH is set for tests");
    assert!(!path.is_empty());
    let grants = Grants {
        dirs: Vec::new(),
        env: vec!["HOME".into()],
    };
    let (mut plugin, _) = guest(Limits::default(), grants);
    assert_eq!(reply_body(plugin.call(command("env:HOME")).unwrap()), home);
    assert_eq!(reply_body(plugin.call(command("env:PATH")).unwrap()), "unset");
    let (mut ungranted, _) = guest(Limits::default(), Grants::default());
    assert_eq!(reply_body(ungranted.call(command("env:HOME")).unwrap()), "unset");
}

#[test]
fn host_imports_reach_the_host_api() {
    let host = host();
    let component = load(&host, "wasm-guest");
    let recorder = Arc::new(RecordingHost::default());
    let mut ctx = context(&recorder);
    ctx.settings.insert("color".into(), "blue".into());
    let mut plugin = component.instantiate(ctx).unwrap();
    let input = command("host");
    let outcome = plugin.call(input.clone()).unwrap();
    assert_eq!(
        reply_body(outcome),
        r#"setting=Some("blue") lookup=Some("Facility One") send=Ok(()) sync=Ok("pong") async=Ok("corr-1")"#
    );
    let calls = recorder.calls();
    assert_eq!(
        calls[0],
        Call::Log {
            item: "router".into(),
            level: LogLevel::Info,
            text: "host calls start".into()
        }
    );
    assert_eq!(
        calls[1],
        Call::Lookup {
            table: "facilities".into(),
            key: "F1".into()
        }
    );
    let sent = |call: &Call| -> (String, String, Envelope) {
        match call.clone() {
            Call::Send { from, target, msg } | Call::SendAsync { from, target, msg } => (from, target, msg),
            Call::SendSync {
                from,
                target,
                msg,
                timeout_ms,
            } => {
                assert_eq!(timeout_ms, 1500);
                (from, target, msg)
            }
            other => panic!("expected a send, got {other:?}"),
        }
    };
    for (call, want_target) in calls[2..5].iter().zip(["b", "c", "d"]) {
        let (from, target, msg) = sent(call);
        assert_eq!((from.as_str(), target.as_str()), ("router", want_target));
        assert_eq!(&msg.body[..], b"to-b");
        assert_eq!(msg.source, "router");
        assert_eq!(msg.parent_id, Some(input.id));
        assert_eq!(msg.session_id, input.session_id);
        assert_ne!(msg.id, input.id);
    }
    assert!(matches!(calls[4], Call::SendAsync { .. }), "{:?}", calls[4]);
    assert_eq!(
        calls[5..],
        [
            Call::Counter {
                item: "router".into(),
                name: "calls".into(),
                value: 2
            },
            Call::Histogram {
                item: "router".into(),
                name: "size".into(),
                value: 1.5
            }
        ]
    );
}

#[test]
fn output_identity_is_assigned_by_the_host() {
    let (mut plugin, _) = guest(Limits::default(), Grants::default());
    let mut input = command("echo");
    input.properties.insert("k".into(), "v".into());
    input.priority = 7;
    match plugin.call(input.clone()).unwrap() {
        Outcome::Reply(out) => {
            assert_ne!(out.id, input.id);
            assert_eq!(out.parent_id, Some(input.id));
            assert_eq!(out.session_id, input.session_id);
            assert_eq!(out.source, "router");
            assert_eq!(out.body, input.body);
            assert_eq!(out.properties, input.properties);
            assert_eq!(out.priority, 7);
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn lifecycle_calls_reach_the_guest() {
    let (mut plugin, _) = guest(Limits::default(), Grants::default());
    plugin.start().unwrap();
    plugin.stop().unwrap();
    plugin.start().unwrap();
    let reply = plugin.on_reply("corr-1", Ok(command("r"))).unwrap();
    assert!(
        matches!(reply, Outcome::Pass(ref m) if &m.body[..] == b"reply corr-1"),
        "{reply:?}"
    );
    assert_eq!(plugin.version().len(), 64);
    plugin.teardown().unwrap();
}

#[test]
fn an_operation_calls_its_adapter() {
    let host = host();
    let component = load(&host, "wasm-operation");
    assert_eq!(component.world(), hie_wasm::PluginWorld::Operation);
    let recorder = Arc::new(RecordingHost::default());
    let mut ctx = context(&recorder);
    ctx.adapter = Some(Arc::new(|request: &[u8]| -> Result<Vec<u8>, Failure> {
        Ok([b"ACK:".as_slice(), request].concat())
    }));
    let mut plugin = component.instantiate(ctx).unwrap();
    assert_eq!(reply_body(plugin.call(command("MSH|1")).unwrap()), "ACK:MSH|1");

    let mut without = component.instantiate(context(&recorder)).unwrap();
    match without.call(command("MSH|1")).unwrap_err() {
        PluginError::Failed(f) => assert_eq!(f.code, "no-adapter"),
        other => panic!("expected no-adapter, got {other:?}"),
    }
}

#[test]
fn hooks_continue_skip_reject_and_recover() {
    let host = host();
    let component = load(&host, "wasm-hook");
    let recorder = Arc::new(RecordingHost::default());
    let mut ctx = context(&recorder);
    ctx.item = "audit-hook".into();
    ctx.settings.insert("tag".into(), "audited".into());
    assert!(
        component.instantiate(ctx.clone()).is_err(),
        "a hook is not an item"
    );
    let mut hook = component.instantiate_hook(ctx).unwrap();

    let msg = command("ADT");
    match hook.before_process("router", &msg).unwrap() {
        BeforeAction::Continue(changed) => {
            assert_eq!(changed.id, msg.id, "a hook keeps identity");
            assert_eq!(
                changed.properties.get("hooked").map(String::as_str),
                Some("audited")
            );
        }
        other => panic!("expected continue, got {other:?}"),
    }
    assert_eq!(
        hook.before_send("router", "out", &command("skip")).unwrap(),
        BeforeAction::Skip("router: skipped".into())
    );
    assert!(matches!(
        hook.before_process("router", &command("reject")).unwrap(),
        BeforeAction::Reject(ref f) if f.code == "rejected"
    ));
    let after = hook
        .after_process("router", &msg, &Outcome::Reply(msg.derive("router", "ok")))
        .unwrap();
    assert!(
        matches!(after, Outcome::Reply(ref m) if &m.body[..] == b"ok (seen)"),
        "{after:?}"
    );
    assert_eq!(
        hook.process_error("router", &msg, &Failure::transient("timeout", "slow"))
            .unwrap(),
        ErrorAction::Retry
    );
    assert_eq!(
        hook.process_error("router", &msg, &Failure::permanent("bad", "no"))
            .unwrap(),
        ErrorAction::DeadLetter
    );
    hook.after_send("router", "out", &msg, Err(&Failure::permanent("down", "no peer")))
        .unwrap();
    assert!(matches!(
        hook.before_process("router", &command("panic")).unwrap_err(),
        PluginError::Trap { .. }
    ));
    assert!(
        matches!(
            hook.before_process("router", &msg).unwrap(),
            BeforeAction::Continue(ref m) if m.properties.get("hooked").map(String::as_str) == Some("audited")
        ),
        "a fresh hook instance was initialised with its settings"
    );
}
