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
use hie_admin::api::{
    ConfigReloadView, DeadLetterView, Done, ErrorBody, Health, ItemView, ProductionView, Readiness,
};
use serde_json::Value;

/// Write to stdout; a reader that went away (`hie ctl metrics | head`) ends the
/// command quietly instead of with a panic.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cmd::ctl::write_out(format_args!($($arg)*))
    };
}

/// `println!` through [`write_out`].
macro_rules! outln {
    () => {
        $crate::cmd::ctl::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cmd::ctl::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;

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
    /// Reload the production file the engine started from (as SIGHUP does): only
    /// what changed is applied; an invalid file changes nothing and every error is shown.
    #[command(alias = "reload-production")]
    ReloadConfig,
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
    /// The API's OpenAPI description (JSON).
    Openapi,
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
            outln!("production {}  ({} dead letters)", p.name, p.dead_letters);
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
        CtlCommand::ReloadConfig => {
            let r: ConfigReloadView = client.send_json("POST", "/api/v1/production/reload", None)?;
            if json {
                return print_json(&r);
            }
            print_config_reload(&r);
        }
        CtlCommand::Openapi => {
            let spec: Value = client.get_json("/openapi.json")?;
            return print_json(&spec);
        }
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
        CtlCommand::Metrics => out!("{}", client.get_text("/metrics")?),
        CtlCommand::Health => {
            let h: Health = client.get_json("/health")?;
            if json {
                return print_json(&h);
            }
            outln!("{} ({})", h.status, h.production);
        }
        CtlCommand::Ready => {
            let (status, body) = client.request("GET", "/ready", None)?;
            let r: Readiness = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from /ready (HTTP {status}): {body}"))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.ready {
                outln!("ready");
            } else {
                outln!("not ready");
                for reason in &r.reasons {
                    outln!("  {reason}");
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

fn print_config_reload(r: &ConfigReloadView) {
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    outln!("reloaded {}", r.file);
    outln!("  added      {}", list(&r.added));
    outln!("  removed    {}", list(&r.removed));
    let changed: Vec<String> = r
        .changed
        .iter()
        .map(|c| format!("{} ({})", c.name, c.fields.join(", ")))
        .collect();
    outln!("  changed    {}", list(&changed));
    outln!("  unchanged  {}", list(&r.unchanged));
    if r.lookups {
        outln!("  lookup tables replaced");
    }
    if r.moved > 0 {
        outln!(
            "  {} waiting messages moved to the new items ({} dead-lettered: their item was removed)",
            r.moved,
            r.dead_lettered
        );
    }
    if !r.needs_restart.is_empty() {
        outln!(
            "  take effect only after a restart: {}",
            r.needs_restart.join(", ")
        );
    }
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
    outln!("{what} {item}: ok");
    print_items(&[view]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_done(json: bool, done: &Done) -> anyhow::Result<ExitCode> {
    if json {
        return print_json(done);
    }
    outln!("{}", done.done);
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
        outln!("{}", padded.join("  ").trim_end());
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

/// The `[admin]` section of the production at `path`. The whole file is checked
/// first; when something elsewhere in it is wrong (say, an edit waiting for
/// `hie ctl reload-config`), `[admin]` alone is read so the engine can still be
/// reached.
fn admin_section(path: &std::path::Path) -> anyhow::Result<Option<hie_config::AdminSettings>> {
    let errors = match hie_config::load(path) {
        Ok(production) => return Ok(production.admin),
        Err(e) => e,
    };
    let file = hie_config::production_file(path);
    let fail = |why: String| {
        anyhow::anyhow!(
            "{errors}\n(cannot find the admin API in it: {why}; pass --addr and --token-file to reach the engine anyway)"
        )
    };
    let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| fail(e.message().to_string()))?;
    let Some(admin) = table.get("admin") else {
        return Ok(None);
    };
    let dir = std::path::absolute(&file)
        .ok()
        .and_then(|f| f.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default();
    let text_of = |key: &str| -> anyhow::Result<Option<String>> {
        match admin.get(key) {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some(v.clone())),
            Some(other) => Err(fail(format!("admin.{key} is {other}, not a string"))),
        }
    };
    let listen = match text_of("listen")? {
        Some(l) => l.parse().map_err(|_| {
            fail(format!(
                "admin.listen {l:?} is not an address such as 127.0.0.1:9090"
            ))
        })?,
        None => hie_config::DEFAULT_ADMIN_LISTEN
            .parse()
            .expect("valid default address"),
    };
    let tls = match (text_of("tls_cert")?, text_of("tls_key")?) {
        (Some(c), Some(k)) => Some((dir.join(c), dir.join(k))),
        _ => None,
    };
    eprintln!(
        "warning: {errors}\n(the running engine uses the file only when it reloads it; [admin] read on its own)"
    );
    Ok(Some(hie_config::AdminSettings {
        listen,
        token_file: text_of("token_file")?.map(|f| dir.join(f)),
        token_env: text_of("token_env")?,
        tls,
    }))
}

/// The system's CA bundle: `SSL_CERT_FILE`, else the usual Debian and Red Hat paths.
fn system_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.is_file())
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
                let admin = admin_section(p)?;
                if admin.is_none() && conn.addr.is_none() {
                    bail!(
                        "{} has no [admin] section: add one (e.g. `[admin] listen = \"127.0.0.1:9090\"`) or pass --addr",
                        hie_config::production_file(p).display()
                    );
                }
                admin
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
        // an https address with no certificate named: the system's CA bundle
        let ca = match ca {
            Some(c) => Some(c),
            None if base.starts_with("https://") => Some(system_ca_bundle().ok_or_else(|| {
                anyhow::anyhow!(
                    "the admin API at {base} is HTTPS and this system has no CA bundle: pass --ca-cert PEM \
                     (its CA, or the self-signed certificate itself)"
                )
            })?),
            None => None,
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
            let text = e.to_string();
            let hint = if text.to_ascii_lowercase().contains("certificate") {
                "the server's certificate is not trusted: pass --ca-cert PEM (its CA, or the self-signed certificate itself)"
            } else {
                "is `hie run` running with an [admin] section or --admin?"
            };
            anyhow::anyhow!("cannot reach the admin API at {}: {text}; {hint}", self.base)
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
