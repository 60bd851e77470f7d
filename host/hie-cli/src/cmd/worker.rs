//! `hie worker` (hidden): one worker process of a multi_process item, started
//! by the engine from its own executable. Its stdin is the socket to the engine
//! (see `hie_engine::process`); its stdout and stderr land in the engine's log.
//!
//! Before anything else it asks the kernel to SIGKILL it when the engine dies
//! (`PR_SET_PDEATHSIG`) and checks the engine did not die before that, so a
//! worker never outlives its engine. Then it applies its resource limits
//! (`worker.memory_limit` → `RLIMIT_AS`, `worker.cpu_seconds` → `RLIMIT_CPU`),
//! loads the production, makes its plugin instances and serves calls.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hie_engine::WasmFactory;
use hie_engine::process::{ProcessSettings, WorkerOptions, refuse, serve_worker};
use nix::sys::resource::{Resource, setrlimit};

/// Arguments of `hie worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The production file the engine runs.
    #[arg(long)]
    pub production: PathBuf,
    /// The item whose plugin this worker runs.
    #[arg(long)]
    pub item: String,
    /// This worker's id, `ITEM-N`.
    #[arg(long)]
    pub worker: String,
    /// Process id of the engine; the worker exits if its parent is another.
    #[arg(long)]
    pub parent: Option<u32>,
    /// Threads, each with its own plugin instance.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Run `hie worker`. It exits 0 after a shutdown from the engine, 1 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot ask to die with the engine (PR_SET_PDEATHSIG)")?;
    if let Some(parent) = args.parent
        && nix::unistd::getppid().as_raw() as u32 != parent
    {
        anyhow::bail!(
            "the engine (pid {parent}) is already gone; hie worker is started by hie run, not by hand"
        );
    }
    let loaded = super::validate::load(&args.production);
    init_logging(match &loaded {
        Ok(p) => (p.log.level.clone(), p.log.items.get(&args.item).cloned()),
        // `serve` reports why the production does not load
        Err(_) => (None, None),
    });
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot take the engine socket from stdin")?;
    let stream = UnixStream::from(stdin);
    match serve(&args, loaded, &stream) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(worker = %args.worker, reason = %reason, "worker stops");
            refuse(&stream, &reason);
            // threads may be blocked on a dead engine: do not wait for them
            std::process::exit(1);
        }
    }
}

fn serve(
    args: &Args,
    loaded: Result<hie_config::Production, Vec<String>>,
    stream: &UnixStream,
) -> anyhow::Result<()> {
    let production = loaded.map_err(|errors| {
        anyhow::anyhow!(
            "production {} is not valid: {}",
            args.production.display(),
            errors.join("; ")
        )
    })?;
    let item = production.item(&args.item).with_context(|| {
        format!(
            "production {} has no item {}",
            production.file.display(),
            args.item
        )
    })?;
    let settings = ProcessSettings::of(item, &production.file)?;
    if let Some(bytes) = settings.memory_limit {
        setrlimit(Resource::RLIMIT_AS, bytes, bytes).context("cannot set RLIMIT_AS (worker.memory_limit)")?;
    }
    if let Some(secs) = settings.cpu_seconds {
        // SIGXCPU at the soft limit, SIGKILL one second later
        setrlimit(Resource::RLIMIT_CPU, secs, secs + 1)
            .context("cannot set RLIMIT_CPU (worker.cpu_seconds)")?;
    }
    let config = hie_wasm::HostConfig {
        // the pooling allocator reserves address space up front, which an
        // address-space limit would refuse; instances are few per worker anyway
        pooling: settings.memory_limit.is_none(),
        max_instances: (args.threads as u32).saturating_mul(2).saturating_add(8),
        ..hie_wasm::HostConfig::default()
    };
    let factory = WasmFactory::new(config).context("cannot start the plugin host")?;
    let stream = stream.try_clone().context("cannot clone the engine socket")?;
    serve_worker(
        stream,
        item,
        Arc::new(factory),
        WorkerOptions {
            worker: args.worker.clone(),
            threads: args.threads,
            file: production.file.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!(e))
}

/// Lines go to stderr, which the engine reads and logs again at the same level
/// under the item's name. The base level is `RUST_LOG`, else `[log] level`, else
/// `info`; the item's own level (`[log.items]`), if any, then applies to HIE's
/// and the plugin's lines, louder or quieter, as it does in the engine.
fn init_logging((level, item): (Option<String>, Option<String>)) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_deref().unwrap_or("info")));
    if let Some(item) = item {
        for target in ["hie", "hie_engine", "hie_wasm", "hie_plugin"] {
            if let Ok(directive) = format!("{target}={item}").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    // the engine prefixes each line with its own time, level and worker id
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
}
