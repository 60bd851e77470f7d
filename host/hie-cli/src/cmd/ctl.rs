//! `hie ctl`: the admin API's client. One subcommand per route; human tables by
//! default, the API's JSON with `--json`. The address, token and TLS come from
//! the production's `[admin]` section (`--production DIR`) or from flags.
//!
//! Exit codes: 0 done, 1 the API refused or could not be reached (the message
//! says why and what to do), 2 bad command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hie_admin::api::{DeadLetterView, Done, ErrorBody, Health, ItemView, ProductionView, Readiness};
use serde_json::Value;

/// Where the admin API is and how to talk to it.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The production (directory or file): address, token and TLS from its `[admin]` section.
    #[arg(long, short = 'p', global = true, env = "HIE_PRODUCTION")]
    pub production: Option<PathBuf>,
    /// Admin API address, `HOST:PORT` or a URL (`https://HOST:PORT`); overrides the production's.
    #[arg(long, global = true, env = "HIE_ADMIN_ADDR")]
    pub addr: Option<String>,
    /// File holding the bearer token; overrides the production's.
    #[arg(long, global = true, env = "HIE_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to trust for an HTTPS admin API (a self-signed certificate itself works).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Arguments of `hie ctl`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CtlCommand {
    /// The production and every item.
    Status,
    /// Every item, or one: state, queue depth and oldest age, in flight, workers, restarts.
    Items {
        /// Only this item.
        item: Option<String>,
    },
    /// Start a stopped or failed item.
    Start { item: String },
    /// Stop an item's workers; its queue keeps and accepts messages.
    Stop { item: String },
    /// Hold an item's workers back; its queue accepts up to capacity.
    Pause { item: String },
    /// Let a paused item go on.
    Resume { item: String },
    /// Enable a disabled item (and start it).
    Enable { item: String },
    /// Disable an item: messages to it are refused, waiting ones dead-lettered.
    Disable { item: String },
    /// Replace an item's workers with fresh plugin instances.
    Restart { item: String },
    /// Load the item's plugin again (or `--file`) and swap it in without losing messages.
    Reload {
        item: String,
        /// Load this component file instead of the one the config names.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Publish as a canary getting this percentage of the messages.
        #[arg(long)]
        canary: Option<u8>,
    },
    /// Go back to the item's previous plugin version.
    Rollback { item: String },
    /// Make the item's canary version the one every message goes to.
    Promote { item: String },
    /// The dead-letter queue.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Stored messages: search, show, trace, resend, purge.
    #[command(subcommand)]
    Messages(super::messages::MessagesCommand),
    /// The Prometheus metrics text.
    Metrics,
    /// Whether the engine answers.
    Health,
    /// Whether the production takes messages (exit 1 if not).
    Ready,
}

#[derive(Debug, clap::Subcommand)]
enum DeadLetterCommand {
    /// List them, oldest first.
    List,
    /// Put one back on its item's queue.
    Requeue { id: String },
    /// Drop one for good.
    Discard { id: String },
}

/// Run `hie ctl`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.conn)?;
    let json = args.conn.json;
    match args.command {
        CtlCommand::Status => {
            let p: ProductionView = client.get_json("/api/v1/production")?;
            if json {
                return print_json(&p);
            }
            println!("production {}  ({} dead letters)", p.name, p.dead_letters);
            print_items(&p.items);
        }
        CtlCommand::Items { item: None } => {
            let items: Vec<ItemView> = client.get_json("/api/v1/items")?;
            if json {
                return print_json(&items);
            }
            print_items(&items);
        }
        CtlCommand::Items { item: Some(name) } => {
            let item: ItemView = client.get_json(&format!("/api/v1/items/{}", segment(&name)))?;
            if json {
                return print_json(&item);
            }
            print_items(&[item]);
        }
        CtlCommand::Start { item } => return action(&client, json, &item, "start"),
        CtlCommand::Stop { item } => return action(&client, json, &item, "stop"),
        CtlCommand::Pause { item } => return action(&client, json, &item, "pause"),
        CtlCommand::Resume { item } => return action(&client, json, &item, "resume"),
        CtlCommand::Enable { item } => return action(&client, json, &item, "enable"),
        CtlCommand::Disable { item } => return action(&client, json, &item, "disable"),
        CtlCommand::Restart { item } => return action(&client, json, &item, "restart"),
        CtlCommand::Reload { item, file, canary } => {
            let file = file.map(|f| std::path::absolute(&f).unwrap_or(f).display().to_string());
            let body = serde_json::json!({ "file": file, "canary": canary });
            return action_with(&client, json, &item, "reload", Some(&body));
        }
        CtlCommand::Rollback { item } => return action(&client, json, &item, "rollback"),
        CtlCommand::Promote { item } => return action(&client, json, &item, "promote"),
        CtlCommand::DeadLetters(DeadLetterCommand::List) => {
            let letters: Vec<DeadLetterView> = client.get_json("/api/v1/dead-letters")?;
            if json {
                return print_json(&letters);
            }
            let rows = letters
                .iter()
                .map(|l| {
                    vec![
                        l.id.clone(),
                        l.item.clone(),
                        l.code.clone(),
                        l.attempt.to_string(),
                        l.reason.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "ITEM", "CODE", "ATTEMPT", "REASON"], rows);
        }
        CtlCommand::DeadLetters(DeadLetterCommand::Requeue { id }) => {
            let done: Done = client.send_json(
                "POST",
                &format!("/api/v1/dead-letters/{}/requeue", segment(&id)),
                None,
            )?;
            return print_done(json, &done);
        }
        CtlCommand::DeadLetters(DeadLetterCommand::Discard { id }) => {
            let done: Done =
                client.send_json("DELETE", &format!("/api/v1/dead-letters/{}", segment(&id)), None)?;
            return print_done(json, &done);
        }
        CtlCommand::Messages(command) => return super::messages::run_with(&client, json, command),
        CtlCommand::Metrics => print!("{}", client.get_text("/metrics")?),
        CtlCommand::Health => {
            let h: Health = client.get_json("/health")?;
            if json {
                return print_json(&h);
            }
            println!("{} ({})", h.status, h.production);
        }
        CtlCommand::Ready => {
            let (status, body) = client.request("GET", "/ready", None)?;
            let r: Readiness = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from /ready (HTTP {status}): {body}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.ready {
                println!("ready");
            } else {
                println!("not ready");
                for reason in &r.reasons {
                    println!("  {reason}");
                }
            }
            return Ok(if r.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn action(client: &Client, json: bool, item: &str, what: &str) -> anyhow::Result<ExitCode> {
    action_with(client, json, item, what, None)
}

fn action_with(
    client: &Client,
    json: bool,
    item: &str,
    what: &str,
    body: Option<&Value>,
) -> anyhow::Result<ExitCode> {
    let view: ItemView =
        client.send_json("POST", &format!("/api/v1/items/{}/{what}", segment(item)), body)?;
    if json {
        return print_json(&view);
    }
    println!("{what} {item}: ok");
    print_items(&[view]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_done(json: bool, done: &Done) -> anyhow::Result<ExitCode> {
    if json {
        return print_json(done);
    }
    println!("{}", done.done);
    Ok(ExitCode::SUCCESS)
}

fn print_items(items: &[ItemView]) {
    let rows = items
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.kind.clone(),
                i.state.clone(),
                format!("{}/{}", i.queue_depth, i.queue_capacity),
                i.oldest_age_ms
                    .map(|ms| format!("{ms}ms"))
                    .unwrap_or_else(|| "-".into()),
                i.in_flight.to_string(),
                if i.pids.is_empty() {
                    i.workers.to_string()
                } else {
                    format!("{} (pids {})", i.workers, join(&i.pids))
                },
                i.restarts.to_string(),
                match (&i.plugin, &i.plugin_version) {
                    (Some(p), Some(v)) => format!("{p}@{}", hie_engine::short(v)),
                    (Some(p), None) => p.clone(),
                    (None, _) => "-".into(),
                },
            ]
        })
        .collect();
    print_table(
        &[
            "ITEM",
            "KIND",
            "STATE",
            "QUEUE",
            "OLDEST",
            "IN-FLIGHT",
            "WORKERS",
            "RESTARTS",
            "PLUGIN",
        ],
        rows,
    );
}

fn join(pids: &[u32]) -> String {
    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Columns padded to their widest cell.
pub(crate) fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A path segment with the characters that would change the URL escaped.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The admin API over HTTP(S), blocking.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client from flags, else the production's `[admin]` section.
    pub fn new(conn: &Connection) -> anyhow::Result<Self> {
        let admin = match &conn.production {
            Some(p) => {
                let production = hie_config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?;
                if production.admin.is_none() && conn.addr.is_none() {
                    bail!(
                        "{} has no [admin] section: add one (e.g. `[admin] listen = \"127.0.0.1:9090\"`) or pass --addr",
                        production.file.display()
                    );
                }
                production.admin
            }
            None => None,
        };
        let base = match (&conn.addr, &admin) {
            (Some(a), _) if a.starts_with("http://") || a.starts_with("https://") => {
                a.trim_end_matches('/').to_string()
            }
            (Some(a), _) => format!("http://{a}"),
            (None, Some(adm)) => {
                let scheme = if adm.tls.is_some() { "https" } else { "http" };
                let host = if adm.listen.ip().is_unspecified() {
                    std::net::SocketAddr::new([127, 0, 0, 1].into(), adm.listen.port())
                } else {
                    adm.listen
                };
                format!("{scheme}://{host}")
            }
            (None, None) => format!("http://{}", hie_config::DEFAULT_ADMIN_LISTEN),
        };
        let token = match (&conn.token_file, &admin) {
            (Some(f), _) => hie_admin::read_token(Some(f), None)?,
            (None, Some(adm)) => hie_admin::read_token(adm.token_file.as_deref(), adm.token_env.as_deref())?,
            (None, None) => None,
        };
        let ca = match (&conn.ca_cert, &admin) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(adm)) => adm.tls.as_ref().map(|(cert, _)| cert.clone()),
            (None, None) => None,
        };
        let mut tls = ureq::tls::TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        if let Some(ca) = ca {
            let pem =
                std::fs::read(&ca).with_context(|| format!("cannot read CA certificate {}", ca.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", ca.display());
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client { base, token, agent })
    }

    /// Send a request; the status and body text, whatever the status.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            "GET" | "DELETE" => {
                let mut req = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            _ => {
                let mut req = self.agent.post(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                match body {
                    Some(b) => req.send_json(b),
                    None => req.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the admin API at {}: {e}; is `hie run` running with an [admin] section or --admin?",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {method} {path}"))?;
        Ok((status, text))
    }

    /// A request whose 2xx answer is JSON of type `T`; any other answer is an error with the API's message.
    pub fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<T> {
        let (status, text) = self.request(method, path, body)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            bail!("{message} (HTTP {status})");
        }
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from {path}: {text}"))
    }

    /// GET with a JSON answer.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send_json("GET", path, None)
    }

    /// GET with a text answer.
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let (status, text) = self.request("GET", path, None)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            bail!("{message} (HTTP {status})");
        }
        Ok(text)
    }
}
