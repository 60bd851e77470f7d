//! `hie messages`: search, show, trace, resend and purge stored messages through
//! the admin API (the same client as `hie ctl messages`).

use std::process::ExitCode;

use hie_admin::api::{MessageSummaryView, MessageView, Purged, Resent, TraceEventView};
use serde_json::json;

use super::ctl::{Client, Connection, outln, print_json, print_table, segment};

/// Arguments of `hie messages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: MessagesCommand,
}

/// What to do with stored messages.
#[derive(Debug, clap::Subcommand)]
pub enum MessagesCommand {
    /// Find messages, newest first (headers only).
    Search(SearchArgs),
    /// One message: header, body and the trace of its hops.
    Show {
        /// Message id.
        id: String,
    },
    /// The hops of a message (or of its whole session) with times and errors.
    Trace {
        /// Message id.
        id: String,
        /// Trace every message of the id's session.
        #[arg(long)]
        session: bool,
    },
    /// Queue a copy of a message again.
    Resend {
        /// Message id.
        id: String,
        /// Item to send it to (default: the item it was addressed to).
        #[arg(long)]
        to: Option<String>,
    },
    /// Delete old messages and give the space back.
    Purge {
        /// Age, e.g. `30d`, `12h`.
        #[arg(long)]
        older_than: String,
        /// Only messages whose every hop has this status (repeatable; default `done`).
        #[arg(long)]
        status: Vec<String>,
    },
}

/// Filters of `search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Created within this long before now, e.g. `2h`.
    #[arg(long)]
    since: Option<humantime::Duration>,
    /// Message type (MSH-9), e.g. `ADT^A01`.
    #[arg(long = "type")]
    message_type: Option<String>,
    /// Current status: queued, in-flight, done, failed, dead-lettered, discarded.
    #[arg(long)]
    status: Option<String>,
    /// Queued at this item at some point.
    #[arg(long)]
    item: Option<String>,
    /// Session id.
    #[arg(long)]
    session: Option<String>,
    /// Control id (MSH-10).
    #[arg(long)]
    control_id: Option<String>,
    /// Patient id (PID-3).
    #[arg(long)]
    patient_id: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Run `hie messages`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.conn)?;
    run_with(&client, args.conn.json, args.command)
}

/// Run one messages command with `client`.
pub fn run_with(client: &Client, json: bool, command: MessagesCommand) -> anyhow::Result<ExitCode> {
    match command {
        MessagesCommand::Search(s) => {
            let mut query = vec![format!("limit={}", s.limit)];
            if let Some(since) = s.since {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let since_ms = now.saturating_sub(since.into()).as_millis();
                query.push(format!("since_ms={since_ms}"));
            }
            for (name, value) in [
                ("type", &s.message_type),
                ("status", &s.status),
                ("item", &s.item),
                ("session", &s.session),
                ("control_id", &s.control_id),
                ("patient_id", &s.patient_id),
            ] {
                if let Some(v) = value {
                    query.push(format!("{name}={}", segment(v)));
                }
            }
            let found: Vec<MessageSummaryView> =
                client.get_json(&format!("/api/v1/messages?{}", query.join("&")))?;
            if json {
                return print_json(&found);
            }
            let rows = found
                .iter()
                .map(|m| {
                    vec![
                        m.id.clone(),
                        time(m.created_at_ms),
                        m.message_type.clone().unwrap_or_default(),
                        m.control_id.clone().unwrap_or_default(),
                        format!("{} -> {}", m.source, m.target),
                        m.body_len.to_string(),
                    ]
                })
                .collect();
            print_table(&["ID", "CREATED", "TYPE", "CONTROL-ID", "ROUTE", "BYTES"], rows);
        }
        MessagesCommand::Show { id } => {
            let m: MessageView = client.get_json(&format!("/api/v1/messages/{}", segment(&id)))?;
            if json {
                return print_json(&m);
            }
            let s = &m.summary;
            outln!("id          {}", s.id);
            outln!("session     {}", s.session_id);
            if let Some(p) = &s.parent_id {
                outln!("parent      {p}");
            }
            outln!("route       {} -> {}", s.source, s.target);
            outln!("created     {}", time(s.created_at_ms));
            outln!("type        {}", s.message_type.as_deref().unwrap_or("-"));
            outln!("control id  {}", s.control_id.as_deref().unwrap_or("-"));
            outln!();
            outln!("{}", m.body.replace('\r', "\n"));
            outln!();
            print_trace(&m.trace);
        }
        MessagesCommand::Trace { id, session } => {
            let path = format!(
                "/api/v1/messages/{}/trace{}",
                segment(&id),
                if session { "?session=true" } else { "" }
            );
            let trace: Vec<TraceEventView> = client.get_json(&path)?;
            if json {
                return print_json(&trace);
            }
            print_trace(&trace);
        }
        MessagesCommand::Resend { id, to } => {
            let r: Resent = client.send_json(
                "POST",
                &format!("/api/v1/messages/{}/resend", segment(&id)),
                Some(&json!({ "to": to })),
            )?;
            if json {
                return print_json(&r);
            }
            outln!("resent as {} to {}", r.id, r.to);
        }
        MessagesCommand::Purge { older_than, status } => {
            let p: Purged = client.send_json(
                "POST",
                "/api/v1/messages/purge",
                Some(&json!({ "older_than": older_than, "statuses": status })),
            )?;
            if json {
                return print_json(&p);
            }
            outln!("purged {} messages", p.purged);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_trace(trace: &[TraceEventView]) {
    let rows = trace
        .iter()
        .map(|e| {
            vec![
                time(e.at_ms),
                e.message_id.clone(),
                e.item.clone(),
                e.status.clone(),
                e.attempt.to_string(),
                e.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["AT", "MESSAGE", "ITEM", "STATUS", "ATTEMPT", "ERROR"], rows);
}

fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}
