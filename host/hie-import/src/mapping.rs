//! IRIS items and settings → HIE items, with a report line for every item and
//! every setting: how it maps, or why it does not carry over.

use std::collections::{BTreeMap, BTreeSet};

use crate::defaults::{Origin, Value, resolve};
use crate::production::{Item, Production, Setting, Target};
use crate::rules;
use crate::source::{At, Found};

/// A value in the production file.
#[derive(Debug, Clone, PartialEq)]
pub enum Toml {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// An item to write.
#[derive(Debug, Clone, Default)]
pub struct OutItem {
    /// Comment lines above the item.
    pub comments: Vec<String>,
    /// Name.
    pub name: String,
    /// `service`, `process` or `operation`.
    pub kind: &'static str,
    /// Plugin name.
    pub plugin: Option<String>,
    /// Whether it starts enabled.
    pub enabled: bool,
    /// Workers.
    pub pool_size: Option<i64>,
    /// Adapter table (type first).
    pub adapter: Vec<(&'static str, Toml)>,
    /// Retry table.
    pub retry: Vec<(&'static str, Toml)>,
    /// Plugin settings.
    pub settings: Vec<(String, String)>,
    /// Targets.
    pub targets: Vec<String>,
}

/// The report of one item.
#[derive(Debug, Clone, Default)]
pub struct ItemReport {
    /// Item name.
    pub name: String,
    /// IRIS class.
    pub class: String,
    /// Where the item is defined.
    pub at: Option<At>,
    /// What it became.
    pub became: String,
    /// Why it is disabled, if it is and IRIS had it enabled.
    pub disabled: Option<String>,
    /// One line per setting or attribute.
    pub lines: Vec<String>,
}

/// A plugin skeleton to create for a custom class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    /// Crate name (`mypkg-myprocess`).
    pub crate_name: String,
    /// `service`, `process` or `operation`.
    pub kind: &'static str,
    /// The IRIS class.
    pub class: String,
    /// The item using it.
    pub item: String,
}

/// Everything the mapping produced.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Production name.
    pub name: String,
    /// Where the production is defined.
    pub at: Option<At>,
    /// Drain timeout (from ShutdownTimeout).
    pub drain_timeout: Option<String>,
    /// Production description.
    pub description: String,
    /// Items.
    pub items: Vec<OutItem>,
    /// Per item report.
    pub reports: Vec<ItemReport>,
    /// Production-level report lines.
    pub production_lines: Vec<String>,
    /// Items that log at debug (LogTraceEvents).
    pub debug_items: Vec<String>,
    /// Plugin skeletons.
    pub skeletons: Vec<Skeleton>,
    /// Compiled rule sets: rule class → JSON.
    pub rule_files: BTreeMap<String, String>,
    /// Rule report lines.
    pub rule_lines: Vec<String>,
    /// System default report lines.
    pub default_lines: Vec<String>,
    /// Count of settings not carried over.
    pub not_carried: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    TcpService,
    FileService,
    Router,
    TcpOperation,
    FileOperation,
}

fn known(class: &str) -> Option<Known> {
    match class {
        "EnsLib.HL7.Service.TCPService" => Some(Known::TcpService),
        "EnsLib.HL7.Service.FileService" => Some(Known::FileService),
        "EnsLib.HL7.MsgRouter.RoutingEngine"
        | "EnsLib.MsgRouter.RoutingEngine"
        | "EnsLib.MsgRouter.VDocRoutingEngine" => Some(Known::Router),
        "EnsLib.HL7.Operation.TCPOperation" => Some(Known::TcpOperation),
        "EnsLib.HL7.Operation.FileOperation" => Some(Known::FileOperation),
        _ => None,
    }
}

fn is_builtin(class: &str) -> bool {
    ["EnsLib.", "Ens.", "HS.", "%"]
        .iter()
        .any(|p| class.starts_with(p))
}

/// Settings every business host has that HIE does not use, with why.
fn host_setting_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "AlertOnError"
        | "AlertGroups"
        | "AlertRetryGracePeriod"
        | "QueueCountAlert"
        | "QueueWaitAlert"
        | "InactivityTimeout"
        | "AlertOnBadMessage" => {
            "IRIS alerting has no HIE equivalent; use /metrics (queue depth, failures) with your alert manager"
        }
        "ArchiveIO" => {
            "HIE stores every message and its hops in the message store already; there is no separate I/O archive"
        }
        "BusinessPartner" => "business partner profiles have no HIE equivalent",
        "ThrottleDelay" => "HIE has no per-item throttle delay",
        "SearchTableClass" => {
            "HIE indexes control id, type and patient id itself; custom search tables do not carry over"
        }
        "IOLogEntry" | "DeferResponse" | "SendSuperSession" => "no HIE equivalent",
        _ => return None,
    })
}

struct Ctx<'a> {
    production: &'a Production,
    found: &'a Found,
    names: BTreeSet<String>,
    used_defaults: Vec<At>,
    shadowed: Vec<(At, At)>,
    actor_pool: i64,
    /// System default entries that only matched settings HIE does not carry over.
    defaults_not_carried: Vec<At>,
    /// (item, setting) pairs the mapping looked up.
    asked: BTreeSet<(String, String)>,
    /// Listen ports taken, by item.
    listen_ports: BTreeMap<u16, String>,
    /// Services' MessageSchemaCategory: (service, its targets, category).
    categories: Vec<(String, Vec<String>, String)>,
    mapped: Mapped,
}

struct ItemWork<'a> {
    item: &'a Item,
    consumed: BTreeSet<String>,
    report: ItemReport,
}

impl ItemWork<'_> {
    fn line(&mut self, text: String) {
        self.report.lines.push(text);
    }

    /// Mark the item disabled; a second reason is added to the first.
    fn disable(&mut self, reason: String) {
        self.report.disabled = Some(match self.report.disabled.take() {
            Some(first) => format!("{first}; {reason}"),
            None => reason,
        });
    }
}

/// Map `production` using what else was `found` (rules, lookups, defaults, classes).
pub fn map(production: &Production, found: &Found) -> Mapped {
    let mut ctx = Ctx {
        production,
        found,
        names: production.items.iter().map(|i| i.name.clone()).collect(),
        used_defaults: Vec::new(),
        shadowed: Vec::new(),
        actor_pool: 1,
        categories: Vec::new(),
        listen_ports: BTreeMap::new(),
        asked: BTreeSet::new(),
        defaults_not_carried: Vec::new(),
        mapped: Mapped {
            name: production.name.clone(),
            at: Some(production.at.clone()),
            description: production.description.clone(),
            ..Mapped::default()
        },
    };
    ctx.production_settings();
    let mut seen = BTreeSet::new();
    for item in &production.items {
        if !seen.insert(item.name.clone()) {
            ctx.mapped.reports.push(ItemReport {
                name: item.name.clone(),
                class: item.class.clone(),
                at: Some(item.at.clone()),
                became: "not imported".into(),
                disabled: Some("a second item with this name; IRIS uses the first one".into()),
                lines: Vec::new(),
            });
            continue;
        }
        ctx.item(item);
    }
    ctx.router_categories();
    ctx.default_report();
    ctx.mapped
}

fn seconds(text: &str) -> Option<u64> {
    let v: f64 = text.trim().parse().ok()?;
    (v >= 0.0 && v.is_finite()).then(|| (v * 1000.0).round() as u64)
}

fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// `MyPkg.My_Process` → `mypkg-my-process`.
fn crate_name(class: &str) -> String {
    let mut out = String::new();
    for c in class.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out
    } else {
        format!("iris-{out}")
    }
}

impl Ctx<'_> {
    fn production_settings(&mut self) {
        for s in &self.production.settings {
            let line = match s.name.as_str() {
                "ShutdownTimeout" => match seconds(&s.value) {
                    Some(ms) => {
                        self.mapped.drain_timeout = Some(duration(ms));
                        format!("`ShutdownTimeout` = {} ({}) → `production.drain_timeout = \"{}\"`", s.value, s.at, duration(ms))
                    }
                    None => self.not_carried_prod(s, "not a number of seconds"),
                },
                "ActorPoolSize" => match s.value.parse::<i64>() {
                    Ok(n) if n > 0 => {
                        self.actor_pool = n;
                        format!("`ActorPoolSize` = {} ({}) → the pool size of items with `PoolSize=0` (HIE has no shared actor pool; each such item gets {n} workers of its own)", s.value, s.at)
                    }
                    _ => self.not_carried_prod(s, "not a positive number"),
                },
                "UpdateTimeout" => self.not_carried_prod(s, "HIE applies a configuration reload item by item without a production-wide update timeout"),
                "LogGeneralTraceEvents" => self.not_carried_prod(s, "set the production log level in `[log] level` instead"),
                "TestingEnabled" => self.not_carried_prod(s, "the IRIS testing service has no HIE equivalent; use `hie send` and `hie plugin test`"),
                "AlertNotificationManager" | "AlertNotificationOperation" | "AlertNotificationRecipients" | "AlertActionWindow" => {
                    self.not_carried_prod(s, "IRIS alert management has no HIE equivalent")
                }
                _ => self.not_carried_prod(s, "no HIE equivalent"),
            };
            self.mapped.production_lines.push(line);
        }
    }

    fn not_carried_prod(&mut self, s: &Setting, why: &str) -> String {
        self.mapped.not_carried += 1;
        format!(
            "`{}` = {:?} ({}): **not carried over** — {why}",
            s.name, s.value, s.at
        )
    }

    fn value(&mut self, w: &mut ItemWork<'_>, name: &str, target: Option<Target>) -> Option<Value> {
        w.consumed.insert(name.to_string());
        self.asked.insert((w.item.name.clone(), name.to_string()));
        resolve(
            &self.production.name,
            w.item,
            name,
            target,
            &self.found.defaults,
            &mut self.used_defaults,
            &mut self.shadowed,
        )
    }

    /// Record a mapped setting.
    fn mapped_line(w: &mut ItemWork<'_>, name: &str, v: &Value, to: &str) {
        w.line(format!("`{name}` = {:?} ({}) → {to}", v.value, v.origin));
    }

    /// Record a setting that does not carry over.
    fn not_carried(&mut self, w: &mut ItemWork<'_>, name: &str, v: &Value, why: &str) {
        self.mapped.not_carried += 1;
        w.line(format!(
            "`{name}` = {:?} ({}): **not carried over** — {why}",
            v.value, v.origin
        ));
    }

    fn item(&mut self, item: &Item) {
        let mut w = ItemWork {
            item,
            consumed: BTreeSet::new(),
            report: ItemReport {
                name: item.name.clone(),
                class: item.class.clone(),
                at: Some(item.at.clone()),
                ..ItemReport::default()
            },
        };
        let mut out = OutItem {
            name: item.name.clone(),
            enabled: true,
            ..OutItem::default()
        };
        self.attributes(&mut w, &mut out);
        let iris_enabled = out.enabled;
        match known(&item.class) {
            Some(Known::TcpService) => self.tcp_service(&mut w, &mut out),
            Some(Known::FileService) => self.file_service(&mut w, &mut out),
            Some(Known::Router) => self.router(&mut w, &mut out),
            Some(Known::TcpOperation) => self.tcp_operation(&mut w, &mut out),
            Some(Known::FileOperation) => self.file_operation(&mut w, &mut out),
            None => self.unsupported(&mut w, &mut out),
        }
        self.common_host_settings(&mut w);
        self.leftovers(&mut w);
        self.unused_defaults(&mut w);
        Self::defaults_seen(&mut w);
        if let Some(reason) = &w.report.disabled {
            out.enabled = false;
            for line in &mut w.report.lines {
                if line.starts_with("`Enabled`") {
                    *line = line.replace(
                        "→ `enabled = true`",
                        "→ `enabled = false`: disabled by the import (see above)",
                    );
                }
            }
            if iris_enabled {
                out.comments.push(format!("DISABLED by the import: {reason}"));
            } else {
                out.comments
                    .push(format!("also not runnable as imported: {reason}"));
            }
        }
        w.report.became = describe(&out);
        self.mapped.reports.push(w.report);
        self.mapped.items.push(out);
    }

    fn attributes(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        let attrs: Vec<Setting> = w.item.attributes.clone();
        for a in &attrs {
            w.consumed.insert(a.name.clone());
        }
        // Enabled may come from a system default; PoolSize may not.
        if let Some(v) = self.value(w, "Enabled", None) {
            out.enabled = truthy(&v.value) || v.value.is_empty();
            let to = format!("`enabled = {}`", out.enabled);
            Self::mapped_line(w, "Enabled", &v, &to);
        }
        if let Some(v) = self.value(w, "PoolSize", None) {
            match v.value.parse::<i64>() {
                Ok(0) if matches!(known(&w.item.class), Some(Known::TcpService | Known::FileService)) => {
                    w.disable(
                        "PoolSize 0: IRIS starts no job for this business service, so it takes in nothing; set enabled = true to run it"
                            .into(),
                    );
                    Self::mapped_line(
                        w,
                        "PoolSize",
                        &v,
                        "`enabled = false` (a service without a job in IRIS)",
                    );
                }
                Ok(0) => {
                    out.pool_size = Some(self.actor_pool);
                    let to = format!(
                        "`pool_size = {}` (IRIS 0 = the shared actor pool; HIE gives the item ActorPoolSize workers of its own)",
                        self.actor_pool
                    );
                    Self::mapped_line(w, "PoolSize", &v, &to);
                }
                Ok(n) if n > 0 => {
                    out.pool_size = Some(n);
                    Self::mapped_line(w, "PoolSize", &v, &format!("`pool_size = {n}`"));
                }
                _ => self.not_carried(w, "PoolSize", &v, "not a pool size; 1 worker is used"),
            }
        }
        for name in ["Category", "Comment"] {
            if let Some(v) = self.value(w, name, None)
                && !v.value.is_empty()
            {
                out.comments.push(format!("IRIS {name}: {}", v.value));
                Self::mapped_line(w, name, &v, "a comment above the item in production.toml");
            }
        }
        if let Some(v) = self.value(w, "Foreground", None)
            && truthy(&v.value)
        {
            self.not_carried(
                w,
                "Foreground",
                &v,
                "HIE items have no terminal window; logs go to the engine's log",
            );
        }
        if let Some(v) = self.value(w, "LogTraceEvents", None)
            && truthy(&v.value)
        {
            self.mapped.debug_items.push(w.item.name.clone());
            Self::mapped_line(
                w,
                "LogTraceEvents",
                &v,
                "`[log.items]` level \"debug\" for this item",
            );
        }
        if let Some(v) = self.value(w, "Schedule", None)
            && !v.value.is_empty()
        {
            self.not_carried(
                w,
                "Schedule",
                &v,
                "HIE items have no start/stop schedule; the item runs all the time (use `hie ctl stop`/`start` from a scheduler)",
            );
        }
        if let Some(v) = self.value(w, "DisableErrorTraps", None)
            && truthy(&v.value)
        {
            self.not_carried(
                w,
                "DisableErrorTraps",
                &v,
                "debugging switch with no HIE equivalent",
            );
        }
        for a in &attrs {
            let known_attr = [
                "Enabled",
                "PoolSize",
                "Category",
                "Comment",
                "Foreground",
                "LogTraceEvents",
                "Schedule",
                "DisableErrorTraps",
            ];
            if !known_attr.contains(&a.name.as_str()) {
                let v = Value {
                    value: a.value.clone(),
                    origin: Origin::Production(a.at.clone()),
                };
                self.not_carried(w, &a.name, &v, "item attribute with no HIE equivalent");
            }
        }
    }

    fn targets(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        let Some(v) = self.value(w, "TargetConfigNames", Some(Target::Host)) else {
            return;
        };
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for t in v.value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if self.names.contains(t) && t != w.item.name {
                if !kept.contains(&t.to_string()) {
                    kept.push(t.to_string());
                }
            } else {
                dropped.push(t.to_string());
            }
        }
        out.targets = kept.clone();
        Self::mapped_line(w, "TargetConfigNames", &v, &format!("`targets = {kept:?}`"));
        if !dropped.is_empty() {
            self.mapped.not_carried += 1;
            w.line(format!(
                "`TargetConfigNames`: targets {dropped:?} **not carried over** — no item of that name in the production"
            ));
        }
    }

    fn tcp_service(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        out.kind = "service";
        out.adapter.push(("type", Toml::Str("mllp-in".into())));
        out.adapter.push(("host", Toml::Str("0.0.0.0".into())));
        w.line("listens on all interfaces (`host = \"0.0.0.0\"`), as the IRIS TCP adapter does".into());
        match self.value(w, "Port", Some(Target::Adapter)) {
            Some(v) => match v.value.parse::<u16>() {
                Ok(p) if p > 0 => {
                    if let Some(other) = self.listen_ports.get(&p) {
                        // IRIS can hold two services on one port as long as one is
                        // disabled; HIE checks every listener, so this one gets none
                        out.adapter.push(("port", Toml::Int(0)));
                        w.disable(format!(
                            "port {p} is also the port of item `{other}`; IRIS runs only one of them at a time"
                        ));
                    } else {
                        self.listen_ports.insert(p, w.item.name.clone());
                        out.adapter.push(("port", Toml::Int(i64::from(p))));
                    }
                    Self::mapped_line(w, "Port", &v, &format!("`adapter.port = {p}`"));
                }
                _ => {
                    out.adapter.push(("port", Toml::Int(0)));
                    w.disable(format!("Port {:?} is not a TCP port", v.value));
                }
            },
            None => {
                out.adapter.push(("port", Toml::Int(0)));
                w.disable("no Port setting (on the item or in the system defaults)".into());
            }
        }
        let ack = self.value(w, "AckMode", Some(Target::Host));
        let (mode, note) = match ack.as_ref().map(|v| v.value.as_str()).unwrap_or("Immed") {
            "Never" => ("never", "no ACK is sent"),
            "App" => ("application", "the ACK waits for the router's outcome"),
            "MSH" => (
                "application",
                "IRIS decides per message from MSH-15/MSH-16; HIE sends the application ACK for every message",
            ),
            "Byte" => (
                "commit",
                "IRIS answers with a single ACK byte; HIE sends a full HL7 ACK once the message is stored — check the sender accepts it",
            ),
            _ => (
                "commit",
                "IRIS Immed acknowledges on receipt; HIE acknowledges once the message is stored (never before)",
            ),
        };
        out.adapter.push(("ack_mode", Toml::Str(mode.into())));
        match ack {
            Some(v) => Self::mapped_line(
                w,
                "AckMode",
                &v,
                &format!("`adapter.ack_mode = \"{mode}\"` ({note})"),
            ),
            None => w.line(format!(
                "`AckMode` not set (IRIS default Immed) → `adapter.ack_mode = \"{mode}\"` ({note})"
            )),
        }
        self.targets(w, out);
        self.schema_category(w, &out.targets);
        for name in [
            "JobPerConnection",
            "StayConnected",
            "ReadTimeout",
            "CallInterval",
            "QSize",
            "Endian",
            "UseFileStream",
        ] {
            if let Some(v) = self.value(w, name, Some(Target::Adapter)) {
                self.not_carried(w, name, &v, "HIE's MLLP listener serves every connection concurrently and keeps it open; no equivalent setting");
            }
        }
        for name in [
            "AllowedIPAddresses",
            "LocalInterface",
            "SSLConfig",
            "OSAcceptTimeout",
        ] {
            if let Some(v) = self.value(w, name, Some(Target::Adapter))
                && !v.value.is_empty()
            {
                self.not_carried(w, name, &v, "not supported by HIE's MLLP listener (bind address and TLS are not imported; restrict access with a firewall)");
            }
        }
        self.hl7_host_settings(w);
    }

    fn schema_category(&mut self, w: &mut ItemWork<'_>, targets: &[String]) {
        if let Some(v) = self.value(w, "MessageSchemaCategory", Some(Target::Host)) {
            let base = self.found.categories.get(&v.value).map(|(b, _)| b.clone());
            let note = match base {
                Some(b) => format!("a custom category based on {b}"),
                None => "an HL7 version".into(),
            };
            Self::mapped_line(
                w,
                "MessageSchemaCategory",
                &v,
                &format!(
                    "setting `schema-category.{}` of the routers it sends to ({note}; rules resolve names and docType through it); no schema validation is done",
                    w.item.name
                ),
            );
            if !v.value.is_empty() {
                self.categories
                    .push((w.item.name.clone(), targets.to_vec(), v.value.clone()));
            }
        }
    }

    fn hl7_host_settings(&mut self, w: &mut ItemWork<'_>) {
        let over_tcp = matches!(
            known(&w.item.class),
            Some(Known::TcpService | Known::TcpOperation)
        );
        if !w.consumed.contains("Framing")
            && let Some(v) = self.value(w, "Framing", Some(Target::Host))
        {
            let f = v.value.to_ascii_lowercase();
            let same = if over_tcp {
                matches!(f.as_str(), "" | "mllp" | "flexible")
            } else {
                matches!(f.as_str(), "" | "none" | "flexible")
            };
            if same {
                let how = if over_tcp {
                    "standard MLLP framing (as HIE speaks it)"
                } else {
                    "no framing (as HIE reads and writes files)"
                };
                Self::mapped_line(w, "Framing", &v, how);
            } else {
                let why = if over_tcp {
                    "HIE speaks standard MLLP framing only"
                } else {
                    "HIE reads and writes files without framing"
                };
                self.not_carried(w, "Framing", &v, why);
            }
        }
        if known(&w.item.class) == Some(Known::FileService)
            && let Some(v) = self.value(w, "AckMode", Some(Target::Host))
        {
            if v.value.eq_ignore_ascii_case("Never") {
                Self::mapped_line(w, "AckMode", &v, "no ACK messages (HIE's file-in makes none)");
            } else {
                self.not_carried(
                    w,
                    "AckMode",
                    &v,
                    "HIE's file-in does not make ACK messages for AckTargetConfigNames",
                );
            }
        }
        for name in [
            "DefCharEncoding",
            "UseAckCommitCodes",
            "IgnoreInboundAck",
            "AddNackERR",
            "NackErrorCode",
            "LocalFacilityApplication",
            "BadMessageHandler",
            "Validation",
            "BatchHandling",
            "AckTargetConfigNames",
            "ForceSyncSend",
        ] {
            if let Some(v) = self.value(w, name, Some(Target::Host)) {
                let why = match name {
                    "DefCharEncoding" => {
                        "HIE passes the bytes through unchanged; the character set is not converted"
                    }
                    "BadMessageHandler" => {
                        "HIE dead-letters messages an item cannot handle (see `hie ctl dead-letters`); there is no bad-message target"
                    }
                    "Validation" => "HIE does not validate messages against a schema",
                    "BatchHandling" => {
                        "HIE takes each file or MLLP frame as one message; batches are not split"
                    }
                    _ => "no HIE equivalent",
                };
                self.not_carried(w, name, &v, why);
            }
        }
    }

    fn file_service(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        out.kind = "service";
        out.adapter.push(("type", Toml::Str("file-in".into())));
        match self.value(w, "FilePath", Some(Target::Adapter)) {
            Some(v) if !v.value.is_empty() => {
                out.adapter.push(("dir", Toml::Str(v.value.clone())));
                Self::mapped_line(w, "FilePath", &v, &path_note("`adapter.dir`", &v.value));
            }
            other => {
                out.adapter
                    .push(("dir", Toml::Str(format!("unset/{}", safe_dir(&w.item.name)))));
                w.disable("no FilePath (on the item or in the system defaults)".into());
                if let Some(v) = other {
                    self.not_carried(w, "FilePath", &v, "empty");
                }
            }
        }
        match self.value(w, "FileSpec", Some(Target::Adapter)) {
            Some(v) if !v.value.is_empty() && v.value != "*" => {
                out.adapter.push(("file_spec", Toml::Str(v.value.clone())));
                Self::mapped_line(
                    w,
                    "FileSpec",
                    &v,
                    "`adapter.file_spec` (wildcards * and ?, patterns separated by ;)",
                );
            }
            Some(v) => Self::mapped_line(w, "FileSpec", &v, "every file (the default)"),
            None => w.line("`FileSpec` not set (IRIS default *) → every file".into()),
        }
        let dir = out.adapter.iter().find_map(|(k, v)| match (k, v) {
            (&"dir", Toml::Str(d)) => Some(d.clone()),
            _ => None,
        });
        let every_file = !out.adapter.iter().any(|(k, _)| *k == "file_spec");
        if let Some(dir) = dir.filter(|d| every_file && is_system_dir(d)) {
            w.disable(format!(
                "FilePath {dir} is a system directory and FileSpec takes every file: started, it would move every file there into its archive; give the service a directory of its own (or a FileSpec), then enable it"
            ));
        }
        match self.value(w, "ArchivePath", Some(Target::Adapter)) {
            Some(v) if !v.value.is_empty() => {
                out.adapter.push(("archive_dir", Toml::Str(v.value.clone())));
                Self::mapped_line(w, "ArchivePath", &v, &path_note("`adapter.archive_dir`", &v.value));
            }
            _ => w.line(
                "`ArchivePath` not set: IRIS deletes a file once processed; HIE keeps it in `<FilePath>/archive` (it never deletes patient data; clean that directory on your own schedule)"
                    .into(),
            ),
        }
        if let Some(v) = self.value(w, "WorkPath", Some(Target::Adapter))
            && !v.value.is_empty()
        {
            out.adapter.push(("work_dir", Toml::Str(v.value.clone())));
            Self::mapped_line(
                w,
                "WorkPath",
                &v,
                &path_note(
                    "`adapter.work_dir` (must be on the same file system as FilePath)",
                    &v.value,
                ),
            );
        }
        match self.value(w, "CallInterval", Some(Target::Adapter)) {
            Some(v) => match seconds(&v.value) {
                Some(ms) if ms > 0 => {
                    out.adapter.push(("poll_interval", Toml::Str(duration(ms))));
                    Self::mapped_line(
                        w,
                        "CallInterval",
                        &v,
                        &format!("`adapter.poll_interval = \"{}\"`", duration(ms)),
                    );
                }
                _ => self.not_carried(
                    w,
                    "CallInterval",
                    &v,
                    "not a positive number of seconds; HIE polls every 500 ms",
                ),
            },
            None => {
                out.adapter.push(("poll_interval", Toml::Str("5s".into())));
                w.line("`CallInterval` not set (IRIS default 5 s) → `adapter.poll_interval = \"5s\"`".into());
            }
        }
        for name in [
            "Charset",
            "SubdirectoryLevels",
            "SemaphoreSpecification",
            "AppendTimestamp",
            "ConfirmComplete",
            "FileAccessTimeout",
            "DeleteFromServer",
        ] {
            if let Some(v) = self.value(w, name, Some(Target::Adapter)) {
                let why = match name {
                    "Charset" => "HIE passes the bytes through unchanged; the character set is not converted",
                    "SubdirectoryLevels" => "HIE polls the directory itself, not its subdirectories",
                    "AppendTimestamp" => "HIE archives under the file's own name",
                    _ => "no HIE equivalent",
                };
                if name == "SubdirectoryLevels" && v.value.trim() == "0" {
                    Self::mapped_line(w, name, &v, "the directory itself (as HIE polls it)");
                    continue;
                }
                self.not_carried(w, name, &v, why);
            }
        }
        self.targets(w, out);
        self.schema_category(w, &out.targets);
        self.hl7_host_settings(w);
    }

    fn router(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        out.kind = "process";
        out.plugin = Some("hl7-router".into());
        let Some(v) = self.value(w, "BusinessRuleName", Some(Target::Host)) else {
            out.plugin = Some("passthrough".into());
            w.disable("no BusinessRuleName: the router has no rules".into());
            return;
        };
        let rule = self.found.rules.iter().find(|r| r.class == v.value);
        match rule {
            None => {
                out.plugin = Some("passthrough".into());
                w.disable(format!("rule class {} is not among the inputs", v.value));
                self.not_carried(
                    w,
                    "BusinessRuleName",
                    &v,
                    "the rule class is missing; import it together with the production",
                );
            }
            Some(rule) => match rules::compile(rule, self.found) {
                Ok(compiled) => {
                    for t in &compiled.targets {
                        if !self.names.contains(t) {
                            self.mapped.rule_lines.push(format!(
                                "{}: target {t:?} of rule class {} is not an item of the production; sends to it fail at run time",
                                rule.file.display(),
                                rule.class
                            ));
                        }
                    }
                    self.mapped.rule_lines.extend(compiled.lines.iter().cloned());
                    out.settings.push(("iris-rules".into(), compiled.json.clone()));
                    self.mapped.rule_files.insert(rule.class.clone(), compiled.json);
                    Self::mapped_line(
                        w,
                        "BusinessRuleName",
                        &v,
                        &format!(
                            "setting `iris-rules` (rule class {} compiled: {} rules run, {} disabled; also in rules/{}.json)",
                            rule.class, compiled.rules, compiled.disabled, rule.class
                        ),
                    );
                }
                Err(e) => {
                    out.plugin = Some("passthrough".into());
                    w.disable(format!("rule class {} cannot be compiled: {e}", v.value));
                    self.not_carried(
                        w,
                        "BusinessRuleName",
                        &v,
                        &format!("the rules do not compile: {e}"),
                    );
                }
            },
        }
        for name in [
            "ResponseFrom",
            "ResponseTargetConfigNames",
            "ResponseTimeout",
            "RuleLogging",
            "ActOnTransformError",
            "ActOnValidationError",
            "AlertOnBadMessage",
            "ReplyCodeActions",
        ] {
            if let Some(v) = self.value(w, name, Some(Target::Host)) {
                self.not_carried(w, name, &v, "HIE's router forwards without waiting for responses and logs through the engine; no equivalent");
            }
        }
        self.hl7_host_settings(w);
    }

    fn retry(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        let interval = self.value(w, "RetryInterval", Some(Target::Host));
        let timeout = self.value(w, "FailureTimeout", Some(Target::Host));
        let interval_ms = interval
            .as_ref()
            .and_then(|v| seconds(&v.value))
            .filter(|ms| *ms > 0)
            .unwrap_or(5_000);
        let timeout_s: f64 = timeout
            .as_ref()
            .and_then(|v| v.value.trim().parse().ok())
            .unwrap_or(15.0);
        let attempts: i64 = if timeout_s < 0.0 {
            // IRIS -1: retry for ever; HIE keeps a bound and dead-letters (re-queue with hie ctl)
            1_000_000
        } else {
            ((timeout_s * 1000.0) as u64 / interval_ms) as i64 + 1
        };
        out.retry.push(("max_attempts", Toml::Int(attempts.max(1))));
        out.retry.push(("backoff", Toml::Str(duration(interval_ms))));
        out.retry.push(("max_backoff", Toml::Str(duration(interval_ms))));
        let how = format!(
            "`retry = {{ max_attempts = {}, backoff = \"{}\", max_backoff = \"{}\" }}` (a retry every RetryInterval until FailureTimeout; then the message is dead-lettered{})",
            attempts.max(1),
            duration(interval_ms),
            duration(interval_ms),
            if timeout_s < 0.0 {
                "; IRIS -1 = for ever, HIE stops after 1,000,000 attempts"
            } else {
                ""
            }
        );
        match (interval, timeout) {
            (Some(i), t) => {
                Self::mapped_line(w, "RetryInterval", &i, &how);
                if let Some(t) = t {
                    Self::mapped_line(w, "FailureTimeout", &t, "see RetryInterval");
                }
            }
            (None, Some(t)) => Self::mapped_line(w, "FailureTimeout", &t, &how),
            (None, None) => w.line(format!(
                "`RetryInterval`/`FailureTimeout` not set (IRIS defaults 5 s / 15 s) → {how}"
            )),
        }
    }

    fn tcp_operation(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        out.kind = "operation";
        out.adapter.push(("type", Toml::Str("mllp-out".into())));
        match self.value(w, "IPAddress", Some(Target::Adapter)) {
            Some(v) if !v.value.is_empty() => {
                let host = v.value.trim_start_matches('!').to_string();
                out.adapter.push(("host", Toml::Str(host)));
                Self::mapped_line(w, "IPAddress", &v, "`adapter.host`");
            }
            _ => {
                out.adapter.push(("host", Toml::Str("127.0.0.1".into())));
                w.disable("no IPAddress (on the item or in the system defaults)".into());
            }
        }
        match self.value(w, "Port", Some(Target::Adapter)) {
            Some(v) => match v.value.parse::<u16>() {
                Ok(p) if p > 0 => {
                    out.adapter.push(("port", Toml::Int(i64::from(p))));
                    Self::mapped_line(w, "Port", &v, &format!("`adapter.port = {p}`"));
                }
                _ => {
                    out.adapter.push(("port", Toml::Int(1)));
                    w.disable(format!("Port {:?} is not a TCP port", v.value));
                }
            },
            None => {
                out.adapter.push(("port", Toml::Int(1)));
                w.disable("no Port (on the item or in the system defaults)".into());
            }
        }
        for (iris, ours, default) in [
            ("ConnectTimeout", "connect_timeout", 5_000u64),
            ("ResponseTimeout", "ack_timeout", 30_000),
        ] {
            match self.value(w, iris, Some(Target::Adapter)) {
                Some(v) => match seconds(&v.value) {
                    Some(ms) if ms > 0 => {
                        out.adapter.push((ours, Toml::Str(duration(ms))));
                        Self::mapped_line(w, iris, &v, &format!("`adapter.{ours} = \"{}\"`", duration(ms)));
                    }
                    _ => self.not_carried(
                        w,
                        iris,
                        &v,
                        "not a positive number of seconds; the HIE default is used",
                    ),
                },
                None => {
                    out.adapter.push((ours, Toml::Str(duration(default))));
                    w.line(format!(
                        "`{iris}` not set (IRIS default {} s) → `adapter.{ours} = \"{}\"`",
                        default / 1000,
                        duration(default)
                    ));
                }
            }
        }
        if let Some(v) = self.value(w, "ReplyCodeActions", Some(Target::Host)) {
            if v.value.is_empty() {
                Self::mapped_line(w, "ReplyCodeActions", &v, "HIE's default reply-code policy");
            } else {
                match hie_mllp::policy::ReplyCodeActions::parse(&v.value) {
                    Ok(_) => {
                        out.adapter.push(("reply_actions", Toml::Str(v.value.clone())));
                        Self::mapped_line(
                            w,
                            "ReplyCodeActions",
                            &v,
                            "`adapter.reply_actions` (IRIS syntax, same meaning)",
                        );
                    }
                    Err(e) => {
                        self.not_carried(w, "ReplyCodeActions", &v, &format!("cannot be read: {e}"));
                        w.report.disabled =
                            Some(format!("ReplyCodeActions {:?} cannot be read: {e}", v.value));
                    }
                }
            }
        }
        self.retry(w, out);
        if let Some(v) = self.value(w, "GetReply", Some(Target::Adapter))
            && !truthy(&v.value)
        {
            self.not_carried(w, "GetReply", &v, "HIE always waits for the peer's ACK");
        }
        for name in [
            "StayConnected",
            "ReconnectRetry",
            "NoFailWhileDisconnected",
            "SSLConfig",
            "LocalInterface",
            "QSize",
            "Endian",
            "UseFileStream",
        ] {
            if let Some(v) = self.value(w, name, None) {
                let why = match name {
                    "StayConnected" | "ReconnectRetry" => {
                        "HIE keeps one connection per worker and reconnects with backoff on its own"
                    }
                    "SSLConfig" => "TLS configurations are not imported; set up TLS for the peer separately",
                    _ => "no HIE equivalent",
                };
                self.not_carried(w, name, &v, why);
            }
        }
        self.hl7_host_settings(w);
    }

    fn file_operation(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        out.kind = "operation";
        out.adapter.push(("type", Toml::Str("file-out".into())));
        match self.value(w, "FilePath", Some(Target::Adapter)) {
            Some(v) if !v.value.is_empty() => {
                out.adapter.push(("dir", Toml::Str(v.value.clone())));
                Self::mapped_line(w, "FilePath", &v, &path_note("`adapter.dir`", &v.value));
            }
            _ => {
                out.adapter
                    .push(("dir", Toml::Str(format!("unset/{}", safe_dir(&w.item.name)))));
                w.disable("no FilePath (on the item or in the system defaults)".into());
            }
        }
        let filename = match self.value(w, "Filename", Some(Target::Host)) {
            Some(v) if !v.value.is_empty() => {
                Self::mapped_line(
                    w,
                    "Filename",
                    &v,
                    "`adapter.filename` (IRIS time-stamp and %f codes, same meaning)",
                );
                v.value
            }
            _ => {
                w.line(
                    "`Filename` not set (IRIS default %f_%Q%!+(_a)) → `adapter.filename = \"%f_%Q%!+(_a)\"`"
                        .into(),
                );
                "%f_%Q%!+(_a)".to_string()
            }
        };
        if let Err(e) = hie_config::FilenameSpec::parse(&filename) {
            w.disable(format!("Filename {filename:?}: {e}"));
            out.adapter.push(("filename", Toml::Str("{id}.hl7".into())));
        } else {
            out.adapter.push(("filename", Toml::Str(filename)));
        }
        let overwrite = self.value(w, "Overwrite", Some(Target::Adapter));
        let append = !overwrite.as_ref().is_some_and(|v| truthy(&v.value));
        if append {
            out.adapter.push(("append", Toml::Bool(true)));
        }
        match overwrite {
            Some(v) => Self::mapped_line(w, "Overwrite", &v, if append { "`adapter.append = true`" } else { "replace an existing file (HIE's default)" }),
            None => w.line("`Overwrite` not set (IRIS default false: append to an existing file) → `adapter.append = true`".into()),
        }
        // IRIS file operations write segments ended by the Separators' terminator (default CR LF)
        let seps = self.value(w, "Separators", Some(Target::Host));
        let terminator = match seps.as_ref().map(|v| v.value.as_str()) {
            None => Some(("crlf", true)),
            Some(s) => {
                let (fields, term) = split_separators(s);
                match term.as_str() {
                    "" => None,
                    "\\r\\n" => Some(("crlf", fields == "|^~\\&" || fields.is_empty())),
                    "\\r" => Some(("cr", fields == "|^~\\&" || fields.is_empty())),
                    "\\n" => Some(("lf", fields == "|^~\\&" || fields.is_empty())),
                    _ => None,
                }
            }
        };
        match (seps, terminator) {
            (None, _) => {
                out.adapter.push(("segment_terminator", Toml::Str("crlf".into())));
                w.line("`Separators` not set (IRIS default |^~\\&\\r\\n for file operations) → `adapter.segment_terminator = \"crlf\"`".into());
            }
            (Some(v), Some((t, true))) => {
                out.adapter.push(("segment_terminator", Toml::Str(t.into())));
                Self::mapped_line(
                    w,
                    "Separators",
                    &v,
                    &format!("`adapter.segment_terminator = \"{t}\"`"),
                );
            }
            (Some(v), _) => {
                self.not_carried(w, "Separators", &v, "HIE writes the message's own field separators; only a segment terminator of \\r, \\n or \\r\\n with the standard |^~\\& carries over (messages are written with CR LF)");
                out.adapter.push(("segment_terminator", Toml::Str("crlf".into())));
            }
        }
        if let Some(v) = self.value(w, "Framing", Some(Target::Host)) {
            if v.value.is_empty()
                || v.value.eq_ignore_ascii_case("None")
                || v.value.eq_ignore_ascii_case("Flexible")
            {
                Self::mapped_line(w, "Framing", &v, "no framing (as HIE writes files)");
            } else {
                self.not_carried(w, "Framing", &v, "HIE writes files without MLLP or other framing");
            }
        }
        self.retry(w, out);
        if let Some(v) = self.value(w, "Charset", Some(Target::Adapter)) {
            self.not_carried(
                w,
                "Charset",
                &v,
                "HIE writes the message bytes unchanged; the character set is not converted",
            );
        }
        if let Some(v) = self.value(w, "AutoBatchParentSegs", Some(Target::Host)) {
            self.not_carried(
                w,
                "AutoBatchParentSegs",
                &v,
                "HIE writes each message on its own; no batch headers",
            );
        }
        self.hl7_host_settings(w);
    }

    fn unsupported(&mut self, w: &mut ItemWork<'_>, out: &mut OutItem) {
        let class = w.item.class.clone();
        let supers = self
            .found
            .classes
            .get(&class)
            .map(|c| c.supers.clone())
            .unwrap_or_default();
        let kind = self.guess_kind(w.item, &supers);
        out.kind = kind;
        let defined = self
            .found
            .classes
            .get(&class)
            .map(|c| format!(" (defined at {})", c.at))
            .unwrap_or_default();
        let reason = if is_builtin(&class) {
            format!(
                "IRIS class {class} has no HIE equivalent (HIE's adapters carry HL7 v2 over MLLP and files; other transports and hosts do not carry over)"
            )
        } else {
            let crate_name = crate_name(&class);
            self.mapped.skeletons.push(Skeleton {
                crate_name: crate_name.clone(),
                kind,
                class: class.clone(),
                item: w.item.name.clone(),
            });
            format!(
                "custom class {class}{defined} cannot run in HIE; {} {kind} plugin skeleton is in plugins-src/{crate_name}: port the logic, `hie plugin build` it and point `plugin` at the .wasm",
                if kind == "operation" { "an" } else { "a" }
            )
        };
        match kind {
            "process" => out.plugin = Some("passthrough".into()),
            "operation" => {
                out.adapter.push(("type", Toml::Str("file-out".into())));
                out.adapter
                    .push(("dir", Toml::Str(format!("unsent/{}", safe_dir(&w.item.name)))));
                out.comments
                    .push("the file-out adapter only keeps what reaches this disabled placeholder".into());
            }
            _ => {}
        }
        if let Some(v) = self.value(w, "TargetConfigNames", Some(Target::Host)) {
            out.comments.push(format!("IRIS TargetConfigNames: {}", v.value));
            Self::mapped_line(
                w,
                "TargetConfigNames",
                &v,
                "kept as a comment (the placeholder forwards nothing)",
            );
        }
        w.disable(reason);
        for s in w.item.settings.clone() {
            if w.consumed.insert(s.name.clone()) {
                let v = Value {
                    value: s.value.clone(),
                    origin: Origin::Production(s.at.clone()),
                };
                self.not_carried(
                    w,
                    &s.name,
                    &v,
                    &format!("setting of {class}, which does not carry over"),
                );
            }
        }
    }

    /// service, process or operation: from the superclasses, the class name, then the routes.
    fn guess_kind(&self, item: &Item, supers: &[String]) -> &'static str {
        if let Some(kind) = supers.iter().find_map(|s| kind_of_word(s)) {
            return kind;
        }
        // IRIS naming habits: ...BS / ...BO / ...BP classes, bpl... processes
        let last = item.class.rsplit('.').next().unwrap_or_default();
        if last.ends_with("BS") {
            return "service";
        }
        if last.ends_with("BO") {
            return "operation";
        }
        if last.ends_with("BP") || last.to_ascii_lowercase().starts_with("bpl") {
            return "process";
        }
        if let Some(kind) = kind_of_word(&item.class) {
            return kind;
        }
        let targeted = self.production.items.iter().any(|other| {
            other
                .settings
                .iter()
                .any(|s| s.name == "TargetConfigNames" && s.value.split(',').any(|t| t.trim() == item.name))
        });
        let has_targets = item.settings.iter().any(|s| s.name == "TargetConfigNames");
        match (targeted, has_targets) {
            (false, _) => "service",
            (true, true) => "process",
            (true, false) => "operation",
        }
    }

    fn common_host_settings(&mut self, w: &mut ItemWork<'_>) {
        let names: Vec<String> = w.item.settings.iter().map(|s| s.name.clone()).collect();
        for name in names {
            if w.consumed.contains(&name) {
                continue;
            }
            if let Some(why) = host_setting_reason(&name)
                && let Some(v) = self.value(w, &name, None)
            {
                self.not_carried(w, &name, &v, why);
            }
        }
    }

    /// Settings and attributes written with an empty or default value that needs
    /// nothing in HIE still get their line, so none goes unmentioned.
    fn defaults_seen(w: &mut ItemWork<'_>) {
        let written: Vec<Setting> = w
            .item
            .attributes
            .iter()
            .chain(&w.item.settings)
            .cloned()
            .collect();
        for s in written {
            let at = format!("{})", s.at);
            let named = format!("`{}`", s.name);
            if !w
                .report
                .lines
                .iter()
                .any(|l| l.starts_with(&named) && l.contains(&at))
            {
                let twice = w.item.settings.iter().filter(|o| o.name == s.name).count() > 1;
                let why = if twice {
                    "**not carried over** — written twice on this item (Host and Adapter); the other one is used"
                } else {
                    "empty or the default; nothing to carry over"
                };
                w.line(format!(
                    "`{}` = {:?} (production definition, {}): {why}",
                    s.name, s.value, s.at
                ));
            }
        }
    }

    /// System defaults that match this item for settings its mapping did not use:
    /// named in the item's section too, with why they do not carry over.
    fn unused_defaults(&mut self, w: &mut ItemWork<'_>) {
        let mut names: Vec<String> = self
            .found
            .defaults
            .iter()
            .filter(|d| {
                (d.production == "*" || d.production == self.production.name)
                    && (d.item == "*" || d.item == w.item.name)
                    && (d.class == "*" || d.class == w.item.class)
                    && d.setting != "PoolSize"
                    && !w.consumed.contains(&d.setting)
            })
            .map(|d| d.setting.clone())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let before = self.used_defaults.len();
            let value = self.value(w, &name, None);
            // looked up to be reported, not applied
            let looked_up: Vec<At> = self.used_defaults.drain(before..).collect();
            self.defaults_not_carried.extend(looked_up);
            if let Some(v) = value {
                let why = host_setting_reason(&name)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("no HIE equivalent of this setting for {}", w.item.class));
                self.not_carried(w, &name, &v, &why);
            }
        }
    }

    fn leftovers(&mut self, w: &mut ItemWork<'_>) {
        for s in w.item.settings.clone() {
            if w.consumed.insert(s.name.clone()) {
                let v = Value {
                    value: s.value.clone(),
                    origin: Origin::Production(s.at.clone()),
                };
                let why = format!(
                    "{} setting of {} with no HIE equivalent",
                    s.target.as_str(),
                    w.item.class
                );
                self.not_carried(w, &s.name, &v, &why);
            }
        }
    }

    /// A router in IRIS mode gets the schema category of each service sending to it.
    fn router_categories(&mut self) {
        for out in self.mapped.items.iter_mut() {
            if out.plugin.as_deref() != Some("hl7-router")
                || !out.settings.iter().any(|(k, _)| k == "iris-rules")
            {
                continue;
            }
            for (source, targets, category) in &self.categories {
                if targets.contains(&out.name) {
                    out.settings
                        .push((format!("schema-category.{source}"), category.clone()));
                    if let Some(r) = self.mapped.reports.iter_mut().find(|r| r.name == out.name) {
                        r.lines.push(format!(
                            "`schema-category.{source}` = {category:?}: the MessageSchemaCategory of `{source}`, which sends to this router"
                        ));
                    }
                }
            }
        }
    }

    fn default_report(&mut self) {
        let names: BTreeSet<&str> = self.production.items.iter().map(|i| i.name.as_str()).collect();
        for d in &self.found.defaults {
            let applies_here = (d.production == "*" || d.production == self.production.name)
                && (d.item == "*" || names.contains(d.item.as_str()));
            let line = if d.setting == "PoolSize" {
                format!(
                    "{}: `PoolSize` = {:?}: **not applied** — PoolSize cannot be a system default (IRIS documentation)",
                    d.at, d.value
                )
            } else if self.defaults_not_carried.contains(&d.at) && !self.used_defaults.contains(&d.at) {
                format!(
                    "{}: `{}` = {:?} (production {}, item {}, class {}): **not carried over** — the items it matches have no HIE equivalent of this setting (named in their sections)",
                    d.at, d.setting, d.value, d.production, d.item, d.class
                )
            } else if self.used_defaults.contains(&d.at) {
                format!(
                    "{}: `{}` = {:?} (production {}, item {}, class {}): applied",
                    d.at, d.setting, d.value, d.production, d.item, d.class
                )
            } else if let Some((_, by)) = self.shadowed.iter().find(|(at, _)| *at == d.at) {
                format!(
                    "{}: `{}` = {:?}: not applied — the production definition sets it ({by}), which takes precedence",
                    d.at, d.setting, d.value
                )
            } else if !applies_here {
                format!(
                    "{}: `{}` = {:?}: not applied — for production {:?} / item {:?}, not this production",
                    d.at, d.setting, d.value, d.production, d.item
                )
            } else if self.production.items.iter().any(|i| {
                (d.item == "*" || d.item == i.name)
                    && (d.class == "*" || d.class == i.class)
                    && self.asked.contains(&(i.name.clone(), d.setting.clone()))
            }) {
                format!(
                    "{}: `{}` = {:?} (item {}, class {}): not applied — a more specific entry or the production definition gives the value",
                    d.at, d.setting, d.value, d.item, d.class
                )
            } else {
                format!(
                    "{}: `{}` = {:?} (item {}, class {}): **not carried over** — no item it matches has an HIE equivalent of this setting",
                    d.at, d.setting, d.value, d.item, d.class
                )
            };
            self.mapped.default_lines.push(line);
        }
    }
}

/// Directories other programs own: a file service that takes every file there
/// would carry off files that are not messages.
fn is_system_dir(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    matches!(
        if p.is_empty() { "/" } else { p },
        "/" | "/tmp"
            | "/var/tmp"
            | "/var"
            | "/etc"
            | "/usr"
            | "/home"
            | "/root"
            | "/opt"
            | "/bin"
            | "/sbin"
            | "/lib"
            | "/dev"
            | "/proc"
            | "/sys"
            | "/run"
            | "/boot"
            | "/srv"
            | "/mnt"
            | "/media"
    )
}

/// `to`, with a warning when `path` is a Windows path (`C:\in`, `\\server\share`),
/// which is kept as written but names no such directory on this machine.
fn path_note(to: &str, path: &str) -> String {
    let b = path.as_bytes();
    let windows = (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || path.contains('\\');
    if windows {
        format!("{to} — **check it**: a Windows path, kept as written; give the directory on this machine")
    } else {
        to.to_string()
    }
}

/// The kind a class or superclass name suggests.
fn kind_of_word(word: &str) -> Option<&'static str> {
    let l = word.to_ascii_lowercase();
    if l.contains("businessservice")
        || l.contains(".service.")
        || l.ends_with("service")
        || l.contains(".bs.")
    {
        return Some("service");
    }
    if l.contains("businessoperation")
        || l.contains(".operation.")
        || l.ends_with("operation")
        || l.contains(".bo.")
    {
        return Some("operation");
    }
    if l.contains("businessprocess")
        || l.contains("router")
        || l.contains(".process.")
        || l.ends_with("process")
        || l.contains(".bp.")
    {
        return Some("process");
    }
    None
}

/// `|^~\&\r\n` → (`|^~\&`, `\r\n`) as written (escapes kept as text): the five
/// HL7 separators, then the segment terminator.
fn split_separators(s: &str) -> (String, String) {
    if let Some(rest) = s.strip_prefix("|^~\\&") {
        ("|^~\\&".to_string(), rest.to_string())
    } else if s.is_empty() || s.starts_with('\\') {
        (String::new(), s.to_string())
    } else {
        (s.chars().take(5).collect(), s.chars().skip(5).collect())
    }
}

fn safe_dir(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn describe(out: &OutItem) -> String {
    let adapter = out
        .adapter
        .iter()
        .find(|(k, _)| *k == "type")
        .map(|(_, v)| match v {
            Toml::Str(s) => format!(" with adapter {s}"),
            _ => String::new(),
        })
        .unwrap_or_default();
    let plugin = out
        .plugin
        .as_ref()
        .map(|p| format!(" with plugin {p}"))
        .unwrap_or_default();
    format!(
        "{}{plugin}{adapter}{}",
        out.kind,
        if out.enabled { "" } else { ", disabled" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(crate_name("MyPkg.MyProcess"), "mypkg-myprocess");
        assert_eq!(crate_name("1Pkg.X_Y"), "iris-1pkg-x-y");
        assert_eq!(seconds("2.5"), Some(2500));
        assert_eq!(duration(2500), "2500ms");
        assert_eq!(duration(5000), "5s");
        assert_eq!(
            split_separators("|^~\\&\\r\\n"),
            ("|^~\\&".into(), "\\r\\n".into())
        );
        assert_eq!(split_separators("\\r\\n"), (String::new(), "\\r\\n".into()));
        assert!(path_note("d", "C:\\Test\\in").contains("Windows path"));
        assert_eq!(path_note("d", "/data/in"), "d");
        assert!(is_system_dir("/tmp/"));
        assert!(is_system_dir("/"));
        assert!(!is_system_dir("/tmp/hl7-in"));
        assert!(!is_system_dir("/data/in"));
        assert_eq!(kind_of_word("Ens.BusinessProcessBPL"), Some("process"));
        assert_eq!(kind_of_word("EnsLib.Kafka.Service"), Some("service"));
        assert_eq!(
            kind_of_word("EnsLib.SQL.Operation.GenericOperation"),
            Some("operation")
        );
        assert_eq!(kind_of_word("JBH.Antonum.Iris.Mqtt.MqttBO"), None);
    }
}
