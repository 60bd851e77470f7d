//! `hie run PRODUCTION`: run a production in the foreground.
//!
//! Logs go to stderr (`--log-format text|json`, level from `RUST_LOG`, default
//! `info`). SIGTERM or SIGINT stops intake, drains queues in order (services,
//! processes, operations) for at most the drain timeout, and exits 0; a
//! production that cannot start exits 1.
//!
//! `--control PATH` opens a Unix socket taking one command per line and answering
//! one line: `status`, `pause ITEM`, `resume ITEM`, `enable ITEM`, `disable ITEM`,
//! `restart ITEM`, `dead-letters`, `requeue MESSAGE-ID`. Answers start with `ok`
//! or `error`. (The HTTP admin API will replace it.)

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hie_engine::{Engine, WasmFactory};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `hie run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The production: a directory holding `production.toml`, or the file itself.
    pub production: PathBuf,
    /// Format of the log lines on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How long a stop waits for queues to drain (default: the production's `drain_timeout`).
    #[arg(long)]
    pub drain_timeout: Option<humantime::Duration>,
    /// Path of a Unix control socket (see the module docs).
    #[arg(long)]
    pub control: Option<PathBuf>,
}

/// Run `hie run`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let production = match super::validate::load(&args.production) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            anyhow::bail!("production is not valid ({} errors)", errors.len());
        }
    };
    let drain = args
        .drain_timeout
        .map(Duration::from)
        .unwrap_or(production.drain_timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hie-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(production, drain, args.control))
}

async fn serve(
    production: hie_config::Production,
    drain: Duration,
    control: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let factory =
        WasmFactory::new(hie_wasm::HostConfig::default()).context("cannot start the plugin host")?;
    if let Err(errors) = factory.preload(&production) {
        for e in &errors {
            tracing::error!(error = %e, "plugin cannot be loaded");
        }
        anyhow::bail!("{} plugins cannot be loaded", errors.len());
    }
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let engine = Arc::new(Engine::start(production, Arc::new(factory)).await?);
    let control_task = match &control {
        Some(path) => Some(start_control(path, Arc::clone(&engine))?),
        None => None,
    };
    let signal_name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = signal_name,
        drain_timeout_ms = drain.as_millis() as u64,
        "stop requested"
    );
    if let Some(task) = control_task {
        task.abort();
        let _ = task.await;
    }
    if let Some(path) = &control {
        let _ = std::fs::remove_file(path);
    }
    let drained = engine.stop(drain).await;
    if !drained {
        tracing::warn!("stopped with messages left in queues");
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn start_control(path: &std::path::Path, engine: Arc<Engine>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot open control socket {}", path.display()))?;
    tracing::info!(path = %path.display(), "control socket open");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                let (rd, mut wr) = stream.into_split();
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = control(&engine, line.trim()).await;
                    if wr.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    }))
}

async fn control(engine: &Engine, line: &str) -> String {
    let (command, arg) = line.split_once(' ').unwrap_or((line, ""));
    let done = |r: Result<(), hie_engine::EngineError>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error {e}"),
    };
    match command {
        "status" => {
            let items: Vec<String> = engine
                .status()
                .iter()
                .map(|s| {
                    format!(
                        "{}={:?}/depth:{}/in_flight:{}/restarts:{}",
                        s.name, s.state, s.queue.depth, s.queue.in_flight, s.restarts
                    )
                })
                .collect();
            format!("ok {}", items.join(" "))
        }
        "pause" => done(engine.pause(arg)),
        "resume" => done(engine.resume(arg)),
        "enable" => done(engine.enable(arg)),
        "disable" => done(engine.disable(arg).await),
        "restart" => done(engine.restart(arg).await),
        "dead-letters" => {
            let letters: Vec<String> = engine
                .dead_letters()
                .iter()
                .map(|l| format!("{}:{}:{}", l.message.id, l.item, l.reason.code))
                .collect();
            format!("ok {}", letters.join(" "))
        }
        "requeue" => match arg.parse() {
            Ok(id) => match engine.requeue(id) {
                Ok(()) => "ok".into(),
                Err(f) => format!("error {f}"),
            },
            Err(_) => "error not a message id".into(),
        },
        other => format!("error unknown command {other:?}"),
    }
}
