//! `hie send`: send HL7 messages to an MLLP listener and report ACKs and latency.
//!
//! The work is done by [`hie_mllp::tools::send`]; this module parses arguments, shows
//! progress and prints the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use hie_mllp::client::ClientConfig;
use hie_mllp::tls::ClientTls;
use hie_mllp::tools::{SendOptions, SendProgress, SendReport, generate_adt_a01, load_messages, send};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Arguments of `hie send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to send: HOST:PORT.
    target: String,
    /// Message files or directories (files of several messages and FHS/BHS batches are split).
    #[arg(required_unless_present = "generate", conflicts_with = "generate")]
    inputs: Vec<PathBuf>,
    /// Send N generated ADT^A01 messages with unique control ids instead of files.
    #[arg(long, value_name = "N")]
    generate: Option<usize>,
    /// Connections to open in parallel.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,
    /// Frames in flight per connection (1: send, wait for the ACK, send the next).
    #[arg(long, short = 'w', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    window: u32,
    /// Time to wait for each ACK, e.g. `30s`, `500ms`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Time to wait for a connection (and TLS handshake).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Use TLS, trusting the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the host of TARGET).
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Exit non-zero unless every message gets AA (or CA) carrying its own control id.
    #[arg(long)]
    require_aa: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Run `hie send`: exit code 0 if every message got an ACK (an AA with `--require-aa`), else 1.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let messages = match args.generate {
        Some(count) => generate_adt_a01(count, &control_id_prefix()),
        None => load_messages(&args.inputs)?,
    };
    anyhow::ensure!(!messages.is_empty(), "no messages to send");
    let opts = SendOptions {
        client: client_config(&args)?,
        connections: args.connections as usize,
        window: args.window as usize,
    };
    let bar = progress_bar(messages.len() as u64, args.quiet);
    let progress = Arc::new(SendProgress::default());
    // one thread drives every connection: framing and matching ACKs is little work,
    // and a second thread only added hand-offs (as in `hie listen`)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let ticker = tokio::spawn(tick(bar.clone(), Arc::clone(&progress)));
        let report = send(messages, &opts, Arc::clone(&progress)).await;
        ticker.abort();
        report
    });
    bar.finish_and_clear();
    print_report(&report, args.json)?;
    let ok = report.all_acked() && (!args.require_aa || report.all_accepted());
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn client_config(args: &Args) -> anyhow::Result<ClientConfig> {
    let tls = match &args.tls_ca {
        None => None,
        Some(ca) => {
            let host = match &args.tls_server_name {
                Some(name) => name.clone(),
                None => host_of(&args.target).to_owned(),
            };
            Some(ClientTls::from_ca_file(ca, &host)?)
        }
    };
    Ok(ClientConfig {
        ack_timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        connect_attempts: 3,
        tls,
        ..ClientConfig::new(args.target.clone())
    })
}

/// The host part of `HOST:PORT` (or `[v6]:PORT`).
fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A prefix that keeps control ids unique across runs: seconds since the epoch.
fn control_id_prefix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("HIE{secs}")
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

async fn tick(bar: ProgressBar, progress: Arc<SendProgress>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        bar.set_position(progress.done.load(Ordering::Relaxed));
        let failed = progress.failed.load(Ordering::Relaxed);
        if failed > 0 {
            bar.set_message(format!("{failed} without ack"));
        }
    }
}

fn print_report(report: &SendReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_target() {
        assert_eq!(host_of("localhost:2575"), "localhost");
        assert_eq!(host_of("[::1]:2575"), "::1");
        assert_eq!(host_of("10.0.0.1:1"), "10.0.0.1");
    }
}
