//! `hie run PRODUCTION`: run a production in the foreground.
//!
//! Logs go to stderr (`--log-format text|json`; level from `RUST_LOG`, else
//! `[log] level`, default `info`; `[log.items]` raises or lowers the level of one
//! item's lines; colours only when stderr is a terminal). Message bodies are logged at `trace` level only. SIGTERM or
//! SIGINT stops intake, drains queues in order (services, processes, operations)
//! for at most the drain timeout, and exits 0; see [`EXIT_CODES`].
//!
//! The admin API (`hie-admin`) is served when the production has an `[admin]`
//! section or `--admin ADDR` is given; `hie ctl` is its client.
//!
//! `--control PATH` opens a Unix socket taking one command per line and answering
//! one line: `status`, `pause ITEM`, `resume ITEM`, `enable ITEM`, `disable ITEM`,
//! `restart ITEM`, `dead-letters`, `requeue MESSAGE-ID`; hot reload:
//! `reload ITEM [PLUGIN-FILE] [--canary N%]`, `rollback ITEM`, `promote ITEM`,
//! `reload-config [PRODUCTION-FILE]`, `versions ITEM` (these answer `ok` and JSON).
//! Answers start with `ok` or `error`. (The HTTP admin API will replace it.)
//!
//! SIGHUP reloads the production file: only what changed is applied; an invalid
//! file changes nothing and every error is logged.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hie_engine::{Engine, WasmFactory};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

mod log_filter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What `hie run` exits with (shown by `hie run --help`).
pub const EXIT_CODES: &str = "Exit codes:
  0  stopped by SIGTERM or SIGINT after draining (or after the drain timeout; the log says what was left)
  1  the production could not start: invalid production file, plugin, port, store or admin token (the log says which)
  2  bad command line";

/// Arguments of `hie run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The production: a directory holding `production.toml`, or the file itself; or
    /// IRIS input (a production class, export package or a directory of them), which
    /// is imported first into ~/.local/share/hie/imported/NAME (printed).
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
    /// Serve the admin API on this address, overriding `[admin] listen` (`127.0.0.1:0`: any free port).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<std::net::SocketAddr>,
    /// File holding the admin API's bearer token, overriding `[admin] token_file` and `token_env`.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// Run `hie run`.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    // IRIS input (a production class, export or directory of them) is imported first
    args.production = super::import::production_for_run(&args.production)?;
    let loaded = super::validate::load(&args.production);
    init_logging(args.log_format, loaded.as_ref().ok().map(|p| &p.log));
    let production = match loaded {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            anyhow::bail!("production is not valid ({} errors)", errors.len());
        }
    };
    let admin = admin_options(&args, &production)?;
    let drain = args
        .drain_timeout
        .map(Duration::from)
        .unwrap_or(production.drain_timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hie-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(production, drain, args.control, admin))
}

/// The admin API's address, token and TLS from `[admin]` and the flags; `None`: not served.
fn admin_options(
    args: &Args,
    production: &hie_config::Production,
) -> anyhow::Result<Option<hie_admin::AdminOptions>> {
    let section = production.admin.as_ref();
    let Some(listen) = args.admin.or(section.map(|a| a.listen)) else {
        return Ok(None);
    };
    let token = match (&args.admin_token_file, section) {
        (Some(file), _) => hie_admin::read_token(Some(file), None)?,
        (None, Some(a)) => hie_admin::read_token(a.token_file.as_deref(), a.token_env.as_deref())?,
        (None, None) => None,
    };
    Ok(Some(hie_admin::AdminOptions {
        listen,
        token,
        tls: section.and_then(|a| a.tls.clone()),
    }))
}

async fn serve(
    production: hie_config::Production,
    drain: Duration,
    control: Option<PathBuf>,
    admin: Option<hie_admin::AdminOptions>,
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
    let admin_stop = tokio_util::sync::CancellationToken::new();
    if let Some(options) = admin
        && let Err(e) = hie_admin::start(Arc::clone(&engine), options, admin_stop.clone()).await
    {
        engine.stop(drain).await;
        return Err(e.into());
    }
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let signal_name = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => reload_on_sighup(&engine).await,
        }
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
    // the admin API answers during the drain, and stops with it
    admin_stop.cancel();
    if !drained {
        tracing::warn!("stopped with messages left in queues");
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: reload the production file the engine was started from; only what
/// changed is applied, and an invalid file changes nothing (every error is logged).
async fn reload_on_sighup(engine: &Engine) {
    tracing::info!("SIGHUP: reloading the production file");
    if let Err(e) = engine.reload_config(None).await {
        for error in e.errors() {
            tracing::error!(error = %error, "config reload refused");
        }
        tracing::error!("config reload changed nothing: fix the errors above and send SIGHUP again");
    }
}

/// `reload ITEM [FILE] [--canary N%]`: the item, the optional file and the canary share.
fn reload_args(arg: &str) -> Result<(&str, Option<PathBuf>, Option<u8>), String> {
    let mut words = arg.split_whitespace();
    let item = words
        .next()
        .ok_or("usage: reload ITEM [PLUGIN-FILE] [--canary N%]")?;
    let (mut file, mut canary) = (None, None);
    while let Some(w) = words.next() {
        if w == "--canary" {
            let share = words.next().ok_or("--canary needs a share such as 10%")?;
            let n = share
                .trim_end_matches('%')
                .parse::<u8>()
                .map_err(|_| format!("canary share {share:?}: expected a percentage such as 10%"))?;
            canary = Some(n);
        } else {
            file = Some(PathBuf::from(w));
        }
    }
    Ok((item, file, canary))
}

fn json_answer<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string(value) {
        Ok(json) => format!("ok {json}"),
        Err(e) => format!("error cannot encode the answer: {e}"),
    }
}

/// The log filter: `RUST_LOG`, else `[log] level`, else `info`; then the
/// `[log.items]` levels, each of which makes one item's lines louder or quieter
/// (see the `log_filter` module).
fn log_levels(log: Option<&hie_config::LogSettings>) -> log_filter::ItemLevels {
    use tracing_subscriber::EnvFilter;
    let base = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log.and_then(|l| l.level.as_deref()).unwrap_or("info")));
    let items = log
        .map(|l| &l.items)
        .into_iter()
        .flatten()
        // the config accepts only trace, debug, info, warn and error
        .filter_map(|(item, level)| Some((item.clone(), level.parse().ok()?)))
        .collect();
    log_filter::ItemLevels::new(base, items)
}

fn init_logging(format: LogFormat, log: Option<&hie_config::LogSettings>) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(log_levels(log));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        // colours only on a terminal: journald and files get plain text
        LogFormat::Text => registry
            .with(lines.with_ansi(std::io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => registry.with(lines.json().flatten_event(true)).init(),
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
        "reload" => match reload_args(arg) {
            Ok((item, file, canary)) => match engine.reload_plugin(item, file, canary).await {
                Ok(report) => json_answer(&report),
                Err(e) => format!("error {e}"),
            },
            Err(usage) => format!("error {usage}"),
        },
        "rollback" => match engine.rollback(arg).await {
            Ok(change) => json_answer(&change),
            Err(e) => format!("error {e}"),
        },
        "promote" => match engine.promote(arg).await {
            Ok(change) => json_answer(&change),
            Err(e) => format!("error {e}"),
        },
        "reload-config" => {
            let file = (!arg.is_empty()).then(|| std::path::Path::new(arg));
            match engine.reload_config(file).await {
                Ok(report) => json_answer(&report),
                Err(e) => {
                    for error in e.errors() {
                        tracing::error!(error = %error, "config reload refused");
                    }
                    format!("error {e}")
                }
            }
        }
        "versions" => match engine.item_status(arg) {
            Ok(s) => json_answer(&s.versions),
            Err(e) => format!("error {e}"),
        },
        other => format!("error unknown command {other:?}"),
    }
}
