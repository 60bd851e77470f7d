//! `[admin]` and `[log]`: the admin API's address, token and TLS, and log levels
//! (whole production and per item). Checked without I/O like the rest; the token
//! file is read by `hie run` when it starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::model::{AdminSettings, LogSettings};
use crate::wire::{AdminTable, LogTable};

/// Where the admin API listens when `[admin]` gives no `listen`.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

impl super::Checker<'_> {
    /// The checked `[admin]` section.
    pub(super) fn admin(&mut self, t: AdminTable, dir: &Path) -> Option<AdminSettings> {
        let listen = match &t.listen {
            Some(l) => match l.get_ref().parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.err(
                        Some(l.span()),
                        "admin.listen",
                        format!(
                            "{:?} is not an IP address and port such as \"127.0.0.1:9090\"",
                            l.get_ref()
                        ),
                    );
                    return None;
                }
            },
            None => DEFAULT_ADMIN_LISTEN.parse().expect("valid default address"),
        };
        if let (Some(_), Some(env)) = (&t.token_file, &t.token_env) {
            self.err(
                Some(env.span()),
                "admin.token_env",
                "give either token_file or token_env, not both",
            );
        }
        if let Some(env) = &t.token_env
            && env.get_ref().trim().is_empty()
        {
            self.err(
                Some(env.span()),
                "admin.token_env",
                "must name an environment variable",
            );
        }
        let has_token = t.token_file.is_some() || t.token_env.is_some();
        if !has_token && !listen.ip().is_loopback() {
            let span = t.listen.as_ref().map(|l| l.span());
            self.err(
                span,
                "admin.listen",
                format!(
                    "the admin API on a non-loopback address ({listen}) needs a token: set token_file or token_env"
                ),
            );
        }
        let tls = match (&t.tls_cert, &t.tls_key) {
            (Some(c), Some(k)) => Some((dir.join(c.get_ref()), dir.join(k.get_ref()))),
            (None, None) => None,
            (Some(c), None) => {
                self.err(
                    Some(c.span()),
                    "admin.tls_key",
                    "tls_cert needs tls_key (the PEM private key)",
                );
                None
            }
            (None, Some(k)) => {
                self.err(
                    Some(k.span()),
                    "admin.tls_cert",
                    "tls_key needs tls_cert (the PEM certificate chain)",
                );
                None
            }
        };
        Some(AdminSettings {
            listen,
            token_file: t.token_file.as_ref().map(|f| dir.join(f.get_ref())),
            token_env: t.token_env.as_ref().map(|e| e.get_ref().clone()),
            tls,
        })
    }

    /// The checked `[log]` section; `items` are the names of the production's items.
    pub(super) fn log(&mut self, t: LogTable, items: &[String]) -> LogSettings {
        let mut level = None;
        if let Some(l) = &t.level
            && self.level_ok(l, "log.level")
        {
            level = Some(l.get_ref().to_ascii_lowercase());
        }
        let mut per_item = BTreeMap::new();
        for (item, l) in &t.items {
            let field = format!("log.items.{item}");
            if !items.iter().any(|i| i == item) {
                self.err(
                    Some(l.span()),
                    field,
                    format!("no item named {item:?}: [log.items] keys are item names"),
                );
                continue;
            }
            if self.level_ok(l, &field) {
                per_item.insert(item.clone(), l.get_ref().to_ascii_lowercase());
            }
        }
        LogSettings {
            level,
            items: per_item,
        }
    }

    fn level_ok(&mut self, l: &toml::Spanned<String>, field: &str) -> bool {
        let ok = LEVELS.contains(&l.get_ref().to_ascii_lowercase().as_str());
        if !ok {
            self.err(
                Some(l.span()),
                field,
                format!(
                    "unknown log level {:?}, expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"",
                    l.get_ref()
                ),
            );
        }
        ok
    }
}
