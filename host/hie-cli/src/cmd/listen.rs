//! `hie listen`: an MLLP sink that ACKs, counts and optionally stores what it receives.
//!
//! The work is done by [`hie_mllp::tools::ListenSession`]; this module parses arguments,
//! prints a count line periodically and the summary on Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hie_hl7::ack::AckCode;
use hie_mllp::codec::{CodecConfig, DEFAULT_MAX_FRAME_LEN};
use hie_mllp::server::ListenerConfig;
use hie_mllp::tools::{ListenOptions, ListenSession};

/// Arguments of `hie listen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (0: any free port; the address is printed at start).
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// MSA-1 of every ACK for a parseable message: AA, AE or AR (CA, CE, CR too).
    #[arg(long, default_value = "AA", value_parser = parse_ack_code)]
    ack_code: AckCode,
    /// Write each message to DIR as `{sequence}_{control id}.hl7`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print a count line this often (`0s`: only at exit).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Largest frame accepted, in bytes; larger ones get AR and the connection is closed.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME_LEN)]
    max_frame_size: usize,
    /// Connections served at once; more are closed at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Close connections that complete no frame for this long (e.g. `5m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_ack_code(text: &str) -> Result<AckCode, String> {
    text.to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{text:?} is not an ack code (AA, AE, AR, CA, CE, CR)"))
}

/// Run `hie listen` until Ctrl-C or SIGTERM; exit code 0.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut listener = ListenerConfig {
        codec: CodecConfig {
            max_frame_len: args.max_frame_size,
            ..CodecConfig::default()
        },
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout,
        ..ListenerConfig::default()
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        listener = listener.with_tls_files(cert, key)?;
    }
    let opts = ListenOptions {
        addr: SocketAddr::new(args.host, args.port),
        ack_code: args.ack_code,
        out_dir: args.out.clone(),
        listener,
    };
    // one thread serves every connection: a sink's work per frame is small, and
    // handing sockets between threads cost more than the work (a quarter of its CPU
    // under load on two cores)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let session = ListenSession::start(opts)
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        eprintln!("listening on {}", session.local_addr());
        wait_for_stop(&session, args.every).await?;
        Ok::<_, anyhow::Error>(session.stop().await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

/// Print a count line every `every` until Ctrl-C or SIGTERM.
async fn wait_for_stop(session: &ListenSession, every: Duration) -> anyhow::Result<()> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut ticks = (!every.is_zero()).then(|| {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        interval
    });
    // The first tick of an interval is immediate; a count line of zeros says nothing.
    if let Some(ticks) = ticks.as_mut() {
        ticks.tick().await;
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
            _ = next_tick(&mut ticks) => eprintln!("{}", session.report().to_text()),
        }
    }
}

async fn next_tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}
