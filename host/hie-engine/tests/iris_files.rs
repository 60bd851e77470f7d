//! The file adapter features IRIS productions need: `file-in` FileSpec wildcards
//! and WorkPath, `file-out` IRIS `Filename` specifications (`%f`, time stamps,
//! `%!+(_a)`), append instead of replace, and CR LF segment terminators.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hie_config::{HookConfig, ItemConfig};
use hie_core::{HostApi, PluginError};
use hie_engine::{Engine, ItemInstance, MessageHook, OutboundAdapter, PluginFactory};

/// No item of these productions has a plugin.
struct NoPlugins;

impl PluginFactory for NoPlugins {
    fn item_instance(
        &self,
        item: &ItemConfig,
        _host: Arc<dyn HostApi>,
        _adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        Err(PluginError::Instantiate(format!("no plugin for {}", item.name)))
    }

    fn hook_instance(
        &self,
        hook: &HookConfig,
        _host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError> {
        Err(PluginError::Instantiate(format!("no hook {}", hook.name)))
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const ADT: &str = "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||123\r";

async fn start(dir: &Path, text: &str) -> Engine {
    let mut p = hie_config::check_str(&dir.join("production.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    p.data_dir = dir.join("data");
    Engine::start(p, Arc::new(NoPlugins)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iris_filename_spec_names_files_after_their_source_with_a_unique_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[production]
name = "iris files"

[[items]]
name = "HL7 File In"
kind = "service"
adapter = { type = "file-in", dir = "in", file_spec = "*.hl7;*.txt", work_dir = "work", poll_interval = "10ms" }
targets = ["HL7 File Out"]

[[items]]
name = "HL7 File Out"
kind = "operation"
adapter = { type = "file-out", dir = "out", filename = "%f_%Y%!+(_a)", segment_terminator = "crlf" }
"#;
    let engine = start(dir.path(), text).await;
    let out = dir.path().join("out");
    std::fs::write(dir.path().join("in/adt 1.hl7"), ADT).unwrap();
    std::fs::write(dir.path().join("in/skip.dat"), ADT).unwrap();
    eventually("first file", || names(&out).len() == 1).await;
    // the same source name again: the second file gets the _a counter
    std::fs::write(dir.path().join("in/adt 1.hl7"), ADT).unwrap();
    eventually("second file", || names(&out).len() == 2).await;
    std::fs::write(dir.path().join("in/note.txt"), ADT).unwrap();
    eventually("third file", || names(&out).len() == 3).await;
    let year = chrono::Local::now().format("%Y").to_string();
    assert_eq!(
        names(&out),
        vec![
            format!("adt_1.hl7_{year}"),
            format!("adt_1.hl7_{year}_a"),
            format!("note.txt_{year}"),
        ]
    );
    let written = std::fs::read_to_string(out.join(format!("adt_1.hl7_{year}"))).unwrap();
    assert_eq!(written, ADT.replace('\r', "\r\n"));
    // the .dat file does not match the FileSpec; the work directory is left empty
    assert!(dir.path().join("in/skip.dat").exists());
    assert!(names(&dir.path().join("work")).is_empty());
    eventually("archived", || dir.path().join("in/archive/note.txt").exists()).await;
    assert!(engine.stop(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_mode_adds_every_message_to_one_file_and_session_names_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[production]
name = "append"

[[items]]
name = "in"
kind = "service"
adapter = { type = "file-in", dir = "in", poll_interval = "10ms" }
targets = ["all", "per-session"]

[[items]]
name = "all"
kind = "operation"
adapter = { type = "file-out", dir = "all", filename = "batch_%Y.hl7", append = true }

[[items]]
name = "per-session"
kind = "operation"
adapter = { type = "file-out", dir = "sessions", filename = "{session}.hl7" }
"#;
    let engine = start(dir.path(), text).await;
    std::fs::write(dir.path().join("in/a.hl7"), ADT).unwrap();
    let sessions = dir.path().join("sessions");
    eventually("first", || names(&sessions).len() == 1).await;
    std::fs::write(dir.path().join("in/b.hl7"), ADT).unwrap();
    eventually("second", || names(&sessions).len() == 2).await;
    let year = chrono::Local::now().format("%Y").to_string();
    let batch = dir.path().join(format!("all/batch_{year}.hl7"));
    eventually("both appended", || {
        std::fs::read_to_string(&batch).is_ok_and(|t| t == format!("{ADT}{ADT}"))
    })
    .await;
    // {session} is the message's session id (a UUID), one file per inbound file
    for name in names(&sessions) {
        let id = name.strip_suffix(".hl7").unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{name}");
    }
    assert!(engine.stop(Duration::from_secs(5)).await);
}
