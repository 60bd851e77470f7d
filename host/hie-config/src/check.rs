//! Wire form → checked form, without I/O. Every problem is collected; none stops the check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ConfigErrors, SourceFile};
use crate::model::*;
use crate::wire::*;

#[path = "admin.rs"]
mod admin;
pub use admin::DEFAULT_ADMIN_LISTEN;

/// Default capacity of an item queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default drain timeout on stop.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait of a `send-request-async` for its reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Parse and check the text of a production file read from `path`.
pub fn check_str(path: &Path, text: &str) -> Result<Production, ConfigErrors> {
    let src = SourceFile::new(path, text);
    let mut checker = Checker {
        src: &src,
        errors: Vec::new(),
        listeners: Vec::new(),
    };
    let production = checker.production();
    let mut errors = checker.errors;
    errors.sort_by_key(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0)));
    match production {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(ConfigErrors(errors)),
    }
}

struct Checker<'a> {
    src: &'a SourceFile,
    errors: Vec<ConfigError>,
    /// `mllp-in` listeners seen so far: host, port, item.
    listeners: Vec<(String, u16, String)>,
}

struct RawItem {
    table: ItemTable,
    field: String,
}

impl Checker<'_> {
    fn err(&mut self, span: Option<Range<usize>>, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(self.src.error(span, field, message));
    }

    fn toml_err(&mut self, err: &toml::de::Error, field: &str) {
        let message = err.message().trim().replace('`', "\"");
        self.err(err.span(), field, message);
    }

    fn line(&self, span: Range<usize>) -> Location {
        Location {
            line: self.src.line_col(span.start).0,
        }
    }

    fn production(&mut self) -> Option<Production> {
        let text = self.src.text();
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in &syntax {
                self.toml_err(e, "");
            }
            return None;
        }
        let root = root.into_inner();
        let mut production = None;
        let mut has_production = false;
        let mut lookups = BTreeMap::new();
        let mut hooks = Vec::new();
        let mut items = Vec::new();
        let mut store = None;
        let mut admin = None;
        let mut log = None;
        for (key, value) in root {
            let span = key.span();
            match key.get_ref().as_ref() {
                "production" => {
                    has_production = true;
                    production = self.deserialize::<ProductionTable>(value, "production")
                }
                "lookups" => lookups = self.lookups(value),
                "hooks" => hooks = self.array_of::<HookTable>(value, "hooks"),
                "store" => store = self.deserialize::<StoreTable>(value, "store"),
                "admin" => admin = self.deserialize::<AdminTable>(value, "admin"),
                "log" => log = self.deserialize::<LogTable>(value, "log"),
                "items" => {
                    items = self
                        .array_of::<ItemTable>(value, "items")
                        .into_iter()
                        .map(|table| {
                            let field = format!("items[{}]", table.name.get_ref());
                            RawItem { table, field }
                        })
                        .collect()
                }
                other => self.err(
                    Some(span),
                    other,
                    "unknown section, expected one of \"production\", \"store\", \"admin\", \"log\", \"lookups\", \"hooks\", \"items\"",
                ),
            }
        }
        // Without a usable [production] table the items are still checked, so
        // that every error is reported in one go.
        let production = production.unwrap_or_else(|| {
            if !has_production {
                self.err(Some(0..0), "production", "missing [production] section");
            }
            ProductionTable {
                name: Spanned::new(0..0, "unnamed".into()),
                data_dir: None,
                drain_timeout: None,
            }
        });
        let store = self.store(store);
        let mut production = self.build(production, lookups, hooks, items)?;
        production.store = store;
        production.admin = admin.and_then(|t| self.admin(t, &production.dir));
        if let Some(t) = log {
            let names: Vec<String> = production.items.iter().map(|i| i.name.clone()).collect();
            production.log = self.log(t, &names);
        }
        Some(production)
    }

    fn store(&mut self, table: Option<StoreTable>) -> StoreSettings {
        let mut settings = StoreSettings::default();
        let Some(t) = table else {
            return settings;
        };
        match t.backend.as_ref().map(|b| (b.get_ref().as_str(), b.span())) {
            None | Some(("sqlite", _)) => {}
            Some(("none", _)) => settings.backend = StoreBackend::None,
            Some((other, span)) => self.err(
                Some(span),
                "store.backend",
                format!("unknown store backend {other:?}, expected \"sqlite\" or \"none\""),
            ),
        }
        if let Some(d) = self.opt_duration(&t.dedup_window, "store", "dedup_window", settings.dedup_window) {
            settings.dedup_window = d;
        }
        if let Some(r) = &t.retention {
            settings.retention = self.duration(r, "store.retention");
        }
        if let Some(d) = self.opt_duration(
            &t.retention_interval,
            "store",
            "retention_interval",
            settings.retention_interval,
        ) {
            settings.retention_interval = d.max(Duration::from_secs(1));
        }
        settings
    }

    fn deserialize<T: for<'de> Deserialize<'de>>(
        &mut self,
        value: Spanned<DeValue<'_>>,
        field: &str,
    ) -> Option<T> {
        match T::deserialize(value.into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.toml_err(&e, field);
                None
            }
        }
    }

    fn array_of<T: for<'de> Deserialize<'de>>(&mut self, value: Spanned<DeValue<'_>>, field: &str) -> Vec<T> {
        let span = value.span();
        let DeValue::Array(array) = value.into_inner() else {
            self.err(
                Some(span),
                field,
                format!("expected an array of tables ([[{field}]])"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, entry) in array.into_iter().enumerate() {
            let name = entry
                .get_ref()
                .as_table()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.get_ref().as_str().map(str::to_owned));
            let label = match name {
                Some(n) => format!("{field}[{n}]"),
                None => format!("{field}[{i}]"),
            };
            if let Some(v) = self.deserialize::<T>(entry, &label) {
                out.push(v);
            }
        }
        out
    }

    fn lookups(&mut self, value: Spanned<DeValue<'_>>) -> BTreeMap<String, BTreeMap<String, String>> {
        self.deserialize::<BTreeMap<String, BTreeMap<String, String>>>(value, "lookups")
            .unwrap_or_default()
    }

    fn build(
        &mut self,
        production: ProductionTable,
        lookups: BTreeMap<String, BTreeMap<String, String>>,
        hooks: Vec<HookTable>,
        items: Vec<RawItem>,
    ) -> Option<Production> {
        let file = self.src.path().to_path_buf();
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        if production.name.get_ref().trim().is_empty() {
            self.err(
                Some(production.name.span()),
                "production.name",
                "must not be empty",
            );
        }
        let data_dir = match &production.data_dir {
            Some(d) => dir.join(d.get_ref()),
            None => dir.join("data"),
        };
        let drain_timeout = production
            .drain_timeout
            .as_ref()
            .and_then(|d| self.duration(d, "production.drain_timeout"))
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT);

        let hook_names = self.unique_names(hooks.iter().map(|h| &h.name), "hooks");
        let item_names = self.unique_names(items.iter().map(|i| &i.table.name), "items");

        let hooks: Vec<HookConfig> = hooks.into_iter().map(|h| self.hook(h)).collect();
        let checked: Vec<ItemConfig> = items
            .iter()
            .filter_map(|raw| self.item(raw, &item_names, &hook_names, &dir))
            .collect();

        Some(Production {
            name: production.name.into_inner(),
            file,
            dir,
            data_dir,
            drain_timeout,
            store: StoreSettings::default(),
            admin: None,
            log: LogSettings::default(),
            lookups,
            hooks,
            items: checked,
        })
    }

    fn unique_names<'n>(
        &mut self,
        names: impl Iterator<Item = &'n Spanned<String>>,
        section: &str,
    ) -> HashSet<String> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for name in names {
            let n = name.get_ref();
            let field = format!("{section}[{n}].name");
            if !valid_name(n) {
                self.err(
                    Some(name.span()),
                    field,
                    format!(
                        "invalid name {n:?}: names are 1 to 128 characters, without control characters or leading and trailing spaces"
                    ),
                );
            } else if let Some(first) = seen.get(n) {
                let first_line = self.src.line_col(*first).0;
                self.err(
                    Some(name.span()),
                    field,
                    format!("duplicate name {n:?} (first defined on line {first_line})"),
                );
            } else {
                seen.insert(n.clone(), name.span().start);
            }
        }
        seen.into_keys().collect()
    }

    fn hook(&mut self, h: HookTable) -> HookConfig {
        let field = format!("hooks[{}]", h.name.get_ref());
        let plugin = self.plugin(&h.plugin, &format!("{field}.plugin"));
        let settings = self.settings(&h.settings);
        let limits = self.limits(h.limits.as_ref(), &field);
        HookConfig {
            name: h.name.into_inner(),
            plugin,
            settings,
            limits,
        }
    }

    fn plugin(&mut self, p: &Spanned<String>, field: &str) -> PluginSpec {
        let value = p.get_ref().trim();
        if value.is_empty() {
            self.err(Some(p.span()), field, "must not be empty");
        }
        let reference = if value.contains('/') || value.ends_with(".wasm") {
            PluginRef::File(PathBuf::from(value))
        } else {
            PluginRef::Standard(value.to_string())
        };
        PluginSpec {
            reference,
            path: None,
            location: self.line(p.span()),
        }
    }

    fn settings(&mut self, s: &BTreeMap<String, Spanned<SettingValue>>) -> BTreeMap<String, String> {
        s.iter()
            .map(|(k, v)| (k.clone(), v.get_ref().to_text()))
            .collect()
    }

    fn item(
        &mut self,
        raw: &RawItem,
        items: &HashSet<String>,
        hooks: &HashSet<String>,
        dir: &Path,
    ) -> Option<ItemConfig> {
        let t = &raw.table;
        let f = raw.field.as_str();
        let kind = match t.kind.get_ref().as_str() {
            "service" => Some(ItemKind::Service),
            "process" => Some(ItemKind::Process),
            "operation" => Some(ItemKind::Operation),
            other => {
                self.err(
                    Some(t.kind.span()),
                    format!("{f}.kind"),
                    format!("unknown kind {other:?}, expected \"service\", \"process\" or \"operation\""),
                );
                None
            }
        };
        let plugin = t.plugin.as_ref().map(|p| self.plugin(p, &format!("{f}.plugin")));
        if plugin.is_none() && kind == Some(ItemKind::Process) {
            self.err(
                Some(t.name.span()),
                format!("{f}.plugin"),
                "a process needs a plugin",
            );
        }
        let adapter = t.adapter.as_ref().and_then(|a| self.adapter(a, kind, f, dir));
        if kind == Some(ItemKind::Operation) && adapter.is_none() && plugin.is_none() && t.adapter.is_none() {
            self.err(
                Some(t.name.span()),
                f,
                "an operation needs an adapter or a plugin",
            );
        }
        let pool_size = match &t.pool_size {
            Some(p) => self.positive(p, &format!("{f}.pool_size")).unwrap_or(1),
            None => 1,
        };
        let execution = self.execution(t.execution.as_ref(), pool_size, f);
        let queue = self.queue(t.queue.as_ref(), f);
        let restart = self.restart(t.restart.as_ref(), f);
        let retry = self.retry(t.retry.as_ref(), f);
        let request_timeout = t
            .request_timeout
            .as_ref()
            .and_then(|d| self.duration(d, &format!("{f}.request_timeout")))
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        for (i, target) in t.targets.iter().enumerate() {
            if !items.contains(target.get_ref()) {
                self.err(
                    Some(target.span()),
                    format!("{f}.targets[{i}]"),
                    format!("unknown target {:?}", target.get_ref()),
                );
            } else if target.get_ref() == t.name.get_ref() {
                self.err(
                    Some(target.span()),
                    format!("{f}.targets[{i}]"),
                    "an item cannot target itself",
                );
            }
        }
        for (i, hook) in t.hooks.iter().enumerate() {
            if !hooks.contains(hook.get_ref()) {
                self.err(
                    Some(hook.span()),
                    format!("{f}.hooks[{i}]"),
                    format!("unknown hook {:?}", hook.get_ref()),
                );
            }
        }
        let limits = self.limits(t.limits.as_ref(), f);
        let grants = t
            .grants
            .as_ref()
            .map(|g| Grants {
                dirs: g.get_ref().dirs.iter().map(|d| dir.join(d.get_ref())).collect(),
                env: g.get_ref().env.iter().map(|e| e.get_ref().clone()).collect(),
            })
            .unwrap_or_default();
        Some(ItemConfig {
            name: t.name.get_ref().clone(),
            kind: kind?,
            plugin,
            adapter,
            enabled: t.enabled.unwrap_or(true),
            pool_size,
            execution: execution?,
            queue: queue?,
            restart: restart?,
            retry: retry?,
            request_timeout,
            settings: self.settings(&t.settings),
            hooks: t.hooks.iter().map(|h| h.get_ref().clone()).collect(),
            targets: t.targets.iter().map(|h| h.get_ref().clone()).collect(),
            limits,
            grants,
            location: self.line(t.name.span()),
        })
    }

    fn adapter(
        &mut self,
        a: &Spanned<AdapterTable>,
        kind: Option<ItemKind>,
        item: &str,
        dir: &Path,
    ) -> Option<AdapterConfig> {
        let f = format!("{item}.adapter");
        let t = a.get_ref();
        let Some(ty) = &t.kind else {
            self.err(Some(a.span()), format!("{f}.type"), "missing adapter type");
            return None;
        };
        let (allowed, wants): (&[&str], ItemKind) = match ty.get_ref().as_str() {
            "mllp-in" => (
                &[
                    "host",
                    "port",
                    "ack_mode",
                    "max_connections",
                    "ack_timeout",
                    "max_in_flight",
                    "priority",
                    "priority_rules",
                ],
                ItemKind::Service,
            ),
            "mllp-out" => (
                &[
                    "host",
                    "port",
                    "ack_timeout",
                    "connect_timeout",
                    "reply_actions",
                    "max_in_flight",
                ],
                ItemKind::Operation,
            ),
            "file-in" => (
                &[
                    "dir",
                    "suffix",
                    "file_spec",
                    "work_dir",
                    "poll_interval",
                    "archive_dir",
                    "priority",
                    "priority_rules",
                ],
                ItemKind::Service,
            ),
            "file-out" => (
                &["dir", "filename", "append", "segment_terminator"],
                ItemKind::Operation,
            ),
            other => {
                self.err(
                    Some(ty.span()),
                    format!("{f}.type"),
                    format!("unknown adapter type {other:?}, expected \"mllp-in\", \"mllp-out\", \"file-in\" or \"file-out\""),
                );
                return None;
            }
        };
        if let Some(k) = kind
            && k != wants
        {
            self.err(
                Some(ty.span()),
                format!("{f}.type"),
                format!(
                    "adapter {:?} belongs on a {}, not a {}",
                    ty.get_ref(),
                    wants.as_str(),
                    k.as_str()
                ),
            );
        }
        for (name, span) in present_adapter_fields(t) {
            if !allowed.contains(&name) {
                self.err(
                    Some(span),
                    format!("{f}.{name}"),
                    format!("field does not apply to adapter {:?}", ty.get_ref()),
                );
            }
        }
        let host = t
            .host
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = |c: &mut Self| -> Option<u16> {
            match &t.port {
                Some(p) => match u16::try_from(*p.get_ref()) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        c.err(Some(p.span()), format!("{f}.port"), "must be between 0 and 65535");
                        None
                    }
                },
                None => {
                    c.err(Some(a.span()), format!("{f}.port"), "missing port");
                    None
                }
            }
        };
        let dur = |c: &mut Self, v: &Option<Spanned<String>>, name: &str, default: Duration| -> Duration {
            v.as_ref()
                .and_then(|d| c.duration(d, &format!("{f}.{name}")))
                .unwrap_or(default)
        };
        let dir_of = |c: &mut Self, v: &Option<Spanned<String>>| -> Option<PathBuf> {
            match v {
                Some(d) if !d.get_ref().is_empty() => Some(dir.join(d.get_ref())),
                Some(d) => {
                    c.err(Some(d.span()), format!("{f}.dir"), "must not be empty");
                    None
                }
                None => {
                    c.err(Some(a.span()), format!("{f}.dir"), "missing dir");
                    None
                }
            }
        };
        match ty.get_ref().as_str() {
            "mllp-in" => {
                let ack_mode = match t.ack_mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
                    // "accept" is the old name of "commit", kept as a deprecated alias
                    None | Some(("commit" | "accept", _)) => AckMode::Commit,
                    Some(("application", _)) => AckMode::Application,
                    Some(("immediate", _)) => AckMode::Immediate,
                    Some(("never", _)) => AckMode::Never,
                    Some((other, span)) => {
                        self.err(
                            Some(span),
                            format!("{f}.ack_mode"),
                            format!(
                                "unknown ack mode {other:?}, expected \"commit\", \"application\", \"immediate\" or \"never\""
                            ),
                        );
                        AckMode::Commit
                    }
                };
                let max_connections = match &t.max_connections {
                    Some(m) => self.positive(m, &format!("{f}.max_connections")).unwrap_or(1),
                    None => 1024,
                };
                let ack_timeout = dur(self, &t.ack_timeout, "ack_timeout", Duration::from_secs(30));
                let max_in_flight = match &t.max_in_flight {
                    Some(m) => self.positive(m, &format!("{f}.max_in_flight")).unwrap_or(1),
                    None => 32,
                };
                let priority = self.inbound_priority(t, &f);
                let port = port(self)?;
                self.listener(&host, port, t.port.as_ref().map(|p| p.span()), item, &f);
                Some(AdapterConfig::MllpIn(MllpInConfig {
                    host,
                    port,
                    ack_mode,
                    max_connections,
                    ack_timeout,
                    max_in_flight,
                    priority,
                }))
            }
            "mllp-out" => {
                let reply_actions = t.reply_actions.as_ref().map(|r| r.get_ref().clone());
                let reply_actions_location = t
                    .reply_actions
                    .as_ref()
                    .map(|r| self.line(r.span()))
                    .unwrap_or_default();
                let connect_timeout = dur(
                    self,
                    &t.connect_timeout,
                    "connect_timeout",
                    Duration::from_secs(5),
                );
                let ack_timeout = dur(self, &t.ack_timeout, "ack_timeout", Duration::from_secs(30));
                let max_in_flight = match &t.max_in_flight {
                    Some(m) => match self.positive(m, &format!("{f}.max_in_flight")) {
                        Some(n) if n > MAX_OUT_IN_FLIGHT => {
                            self.err(
                                Some(m.span()),
                                format!("{f}.max_in_flight"),
                                format!("at most {MAX_OUT_IN_FLIGHT} frames may wait for their ACKs"),
                            );
                            1
                        }
                        n => n.unwrap_or(1),
                    },
                    None => 1,
                };
                Some(AdapterConfig::MllpOut(MllpOutConfig {
                    host,
                    port: port(self)?,
                    connect_timeout,
                    ack_timeout,
                    max_in_flight,
                    reply_actions,
                    reply_actions_location,
                }))
            }
            "file-in" => {
                let d = dir_of(self, &t.dir)?;
                let poll_interval = dur(
                    self,
                    &t.poll_interval,
                    "poll_interval",
                    Duration::from_millis(500),
                );
                let archive_dir = t
                    .archive_dir
                    .as_ref()
                    .map(|p| dir.join(p.get_ref()))
                    .unwrap_or_else(|| d.join("archive"));
                let file_spec = match &t.file_spec {
                    Some(spec) => {
                        let patterns = file_spec_patterns(spec.get_ref());
                        if patterns.is_empty() {
                            self.err(
                                Some(spec.span()),
                                format!("{f}.file_spec"),
                                "must name at least one pattern, e.g. \"*.hl7\" or \"*.hl7;*.txt\"",
                            );
                        }
                        patterns
                    }
                    None => Vec::new(),
                };
                let work_dir = match &t.work_dir {
                    Some(w) if w.get_ref().trim().is_empty() => None,
                    Some(w) => Some(dir.join(w.get_ref())),
                    None => None,
                };
                Some(AdapterConfig::FileIn(FileInConfig {
                    dir: d,
                    suffix: t.suffix.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default(),
                    file_spec,
                    work_dir,
                    poll_interval,
                    archive_dir,
                    priority: self.inbound_priority(t, &f),
                }))
            }
            _ => {
                let d = dir_of(self, &t.dir);
                let filename = t
                    .filename
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_else(|| "{id}.hl7".into());
                let filename_spec = match crate::FilenameSpec::parse(&filename) {
                    Ok(spec) => Some(spec),
                    Err(e) => {
                        let span = t.filename.as_ref().map(|s| s.span());
                        self.err(span, format!("{f}.filename"), e);
                        None
                    }
                };
                let segment_terminator = match t
                    .segment_terminator
                    .as_ref()
                    .map(|s| (s.get_ref().as_str(), s.span()))
                {
                    None => None,
                    Some(("cr", _)) => Some(SegmentTerminator::Cr),
                    Some(("lf", _)) => Some(SegmentTerminator::Lf),
                    Some(("crlf", _)) => Some(SegmentTerminator::CrLf),
                    Some((other, span)) => {
                        self.err(
                            Some(span),
                            format!("{f}.segment_terminator"),
                            format!(
                                "unknown segment terminator {other:?}, expected \"cr\", \"lf\" or \"crlf\""
                            ),
                        );
                        None
                    }
                };
                Some(AdapterConfig::FileOut(FileOutConfig {
                    dir: d?,
                    filename,
                    filename_spec: filename_spec?,
                    append: t.append.as_ref().is_some_and(|a| *a.get_ref()),
                    segment_terminator,
                }))
            }
        }
    }

    /// `priority` and `priority_rules` of an inbound adapter.
    fn inbound_priority(&mut self, t: &AdapterTable, f: &str) -> InboundPriority {
        let mut out = InboundPriority::default();
        if let Some(p) = &t.priority
            && let Some(v) = self.priority_value(p, &format!("{f}.priority"))
        {
            out.default = v;
        }
        for (i, rule) in t.priority_rules.iter().flatten().enumerate() {
            let field = format!("{f}.priority_rules[{i}]");
            let r = rule.get_ref();
            if !valid_hl7_path(r.field.get_ref()) {
                self.err(
                    Some(r.field.span()),
                    format!("{field}.field"),
                    format!(
                        "{:?} is not an HL7 field path such as \"MSH-9\" or \"PV1-2.1\"",
                        r.field.get_ref()
                    ),
                );
                continue;
            }
            let Some(priority) = self.priority_value(&r.priority, &format!("{field}.priority")) else {
                continue;
            };
            out.rules.push(PriorityRule {
                field: r.field.get_ref().clone(),
                equals: r.equals.get_ref().clone(),
                priority,
            });
        }
        out
    }

    fn priority_value(&mut self, v: &Spanned<i64>, field: &str) -> Option<u8> {
        match u8::try_from(*v.get_ref()) {
            Ok(p) if p <= 9 => Some(p),
            _ => {
                self.err(
                    Some(v.span()),
                    field,
                    "must be a priority from 0 (lowest) to 9 (highest)",
                );
                None
            }
        }
    }

    fn execution(
        &mut self,
        e: Option<&Spanned<ExecutionTable>>,
        pool_size: usize,
        item: &str,
    ) -> Option<Execution> {
        let Some(e) = e else {
            return Some(Execution::ThreadPool { threads: pool_size });
        };
        let f = format!("{item}.execution");
        let t = e.get_ref();
        let threads = match &t.threads {
            Some(n) => Some(self.positive(n, &format!("{f}.threads"))?),
            None => None,
        };
        let processes = match &t.processes {
            Some(n) => Some(self.positive(n, &format!("{f}.processes"))?),
            None => None,
        };
        let mode = t.mode.get_ref().as_str();
        if processes.is_some() && mode != "multi_process" {
            self.err(
                Some(e.span()),
                format!("{f}.processes"),
                "only applies to mode \"multi_process\"",
            );
        }
        match mode {
            "async" | "single_process" if threads.is_some() => {
                self.err(
                    Some(e.span()),
                    format!("{f}.threads"),
                    format!("does not apply to mode {mode:?}"),
                );
                None
            }
            "async" => Some(Execution::Async),
            "single_process" => Some(Execution::SingleProcess),
            "thread_pool" => Some(Execution::ThreadPool {
                threads: threads.unwrap_or(pool_size),
            }),
            "multi_process" => Some(Execution::MultiProcess {
                processes: processes.unwrap_or(pool_size),
                threads: threads.unwrap_or(1),
            }),
            other => {
                self.err(
                    Some(t.mode.span()),
                    format!("{f}.mode"),
                    format!(
                        "unknown mode {other:?}, expected \"async\", \"single_process\", \"thread_pool\" or \"multi_process\""
                    ),
                );
                None
            }
        }
    }

    fn queue(&mut self, q: Option<&Spanned<QueueTable>>, item: &str) -> Option<QueueConfig> {
        let f = format!("{item}.queue");
        let default = QueueTable::default();
        let t = q.map(|q| q.get_ref()).unwrap_or(&default);
        let capacity = match &t.capacity {
            Some(c) => self.positive(c, &format!("{f}.capacity"))?,
            None => DEFAULT_QUEUE_CAPACITY,
        };
        let kind = match t.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
            None | Some(("fifo", _)) => QueueKind::Fifo,
            Some(("priority", _)) => QueueKind::Priority,
            Some(("lifo", _)) => QueueKind::Lifo,
            Some(("keyed", span)) => match &t.key {
                Some(k) if valid_hl7_path(k.get_ref()) => QueueKind::Keyed {
                    key: k.get_ref().clone(),
                },
                Some(k) => {
                    self.err(
                        Some(k.span()),
                        format!("{f}.key"),
                        format!("{:?} is not an HL7 field path such as \"PID-3\"", k.get_ref()),
                    );
                    return None;
                }
                None => {
                    self.err(
                        Some(span),
                        format!("{f}.key"),
                        "a keyed queue needs a key, e.g. \"PID-3\"",
                    );
                    return None;
                }
            },
            Some((other, span)) => {
                self.err(
                    Some(span),
                    format!("{f}.kind"),
                    format!(
                        "unknown queue kind {other:?}, expected \"fifo\", \"priority\", \"lifo\" or \"keyed\""
                    ),
                );
                return None;
            }
        };
        if let Some(k) = &t.key
            && !matches!(kind, QueueKind::Keyed { .. })
        {
            self.err(
                Some(k.span()),
                format!("{f}.key"),
                "only applies to kind \"keyed\"",
            );
        }
        let overflow = match t.overflow.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
            None | Some(("block", _)) => Overflow::Block,
            Some(("reject", _)) => Overflow::Reject,
            Some(("dead-letter", _)) => Overflow::DeadLetter,
            Some((other, span)) => {
                self.err(
                    Some(span),
                    format!("{f}.overflow"),
                    format!("unknown overflow {other:?}, expected \"block\", \"reject\" or \"dead-letter\""),
                );
                return None;
            }
        };
        Some(QueueConfig {
            kind,
            capacity,
            overflow,
        })
    }

    fn restart(&mut self, r: Option<&Spanned<RestartTable>>, item: &str) -> Option<RestartConfig> {
        let f = format!("{item}.restart");
        let default = RestartTable::default();
        let t = r.map(|r| r.get_ref()).unwrap_or(&default);
        let policy = match t.policy.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
            None | Some(("on-failure", _)) => RestartPolicy::OnFailure,
            Some(("never", _)) => RestartPolicy::Never,
            Some(("always", _)) => RestartPolicy::Always,
            Some((other, span)) => {
                self.err(
                    Some(span),
                    format!("{f}.policy"),
                    format!("unknown policy {other:?}, expected \"never\", \"on-failure\" or \"always\""),
                );
                return None;
            }
        };
        let max_restarts = match &t.max_restarts {
            Some(m) => u32::try_from(self.non_negative(m, &format!("{f}.max_restarts"))?).unwrap_or(u32::MAX),
            None => 5,
        };
        let within = self.opt_duration(&t.within, &f, "within", Duration::from_secs(60))?;
        let backoff = self.opt_duration(&t.backoff, &f, "backoff", Duration::from_millis(100))?;
        let max_backoff = self.opt_duration(&t.max_backoff, &f, "max_backoff", Duration::from_secs(30))?;
        if max_backoff < backoff {
            let span = t.max_backoff.as_ref().map(|m| m.span());
            self.err(
                span,
                format!("{f}.max_backoff"),
                "must not be shorter than backoff",
            );
        }
        Some(RestartConfig {
            policy,
            max_restarts,
            within,
            backoff,
            max_backoff,
        })
    }

    fn retry(&mut self, r: Option<&Spanned<RetryTable>>, item: &str) -> Option<RetryConfig> {
        let f = format!("{item}.retry");
        let default = RetryTable::default();
        let t = r.map(|r| r.get_ref()).unwrap_or(&default);
        let max_attempts = match &t.max_attempts {
            Some(m) => u32::try_from(self.positive(m, &format!("{f}.max_attempts"))?).unwrap_or(u32::MAX),
            None => 3,
        };
        let backoff = self.opt_duration(&t.backoff, &f, "backoff", Duration::from_millis(100))?;
        let max_backoff = self.opt_duration(&t.max_backoff, &f, "max_backoff", Duration::from_secs(10))?;
        Some(RetryConfig {
            max_attempts,
            backoff,
            max_backoff,
        })
    }

    fn limits(&mut self, l: Option<&Spanned<LimitsTable>>, item: &str) -> Limits {
        let Some(l) = l else {
            return Limits::default();
        };
        let f = format!("{item}.limits");
        let t = l.get_ref();
        Limits {
            memory: t
                .memory
                .as_ref()
                .and_then(|m| self.size(m, &format!("{f}.memory"))),
            deadline: t
                .deadline
                .as_ref()
                .and_then(|d| self.duration(d, &format!("{f}.deadline"))),
            fuel: t
                .fuel
                .as_ref()
                .and_then(|x| self.positive(x, &format!("{f}.fuel")).map(|v| v as u64)),
            max_output: t
                .max_output
                .as_ref()
                .and_then(|m| self.size(m, &format!("{f}.max_output"))),
        }
    }

    fn listener(&mut self, host: &str, port: u16, span: Option<Range<usize>>, item: &str, field: &str) {
        if port == 0 {
            return;
        }
        let clash = self
            .listeners
            .iter()
            .find(|(h, p, _)| *p == port && (h == host || is_any(h) || is_any(host)))
            .map(|(_, _, other)| other.clone());
        match clash {
            Some(other) => self.err(
                span,
                format!("{field}.port"),
                format!("port {port} is already used by the listener of {other}"),
            ),
            None => self.listeners.push((host.to_string(), port, item.to_string())),
        }
    }

    fn positive(&mut self, v: &Spanned<i64>, field: &str) -> Option<usize> {
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.err(Some(v.span()), field, "must be a positive integer");
                None
            }
        }
    }

    fn non_negative(&mut self, v: &Spanned<i64>, field: &str) -> Option<usize> {
        match usize::try_from(*v.get_ref()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(Some(v.span()), field, "must not be negative");
                None
            }
        }
    }

    fn duration(&mut self, v: &Spanned<String>, field: &str) -> Option<Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    Some(v.span()),
                    field,
                    format!("invalid duration {:?}: {e}", v.get_ref()),
                );
                None
            }
        }
    }

    fn opt_duration(
        &mut self,
        v: &Option<Spanned<String>>,
        table: &str,
        name: &str,
        default: Duration,
    ) -> Option<Duration> {
        match v {
            Some(d) => self.duration(d, &format!("{table}.{name}")),
            None => Some(default),
        }
    }

    fn size(&mut self, v: &Spanned<SizeValue>, field: &str) -> Option<u64> {
        let parsed = match v.get_ref() {
            SizeValue::Bytes(b) => u64::try_from(*b).ok().filter(|b| *b > 0),
            SizeValue::Text(t) => parse_size(t),
        };
        if parsed.is_none() {
            self.err(
                Some(v.span()),
                field,
                "invalid size, expected bytes or a number with KiB, MiB, GiB, KB, MB or GB",
            );
        }
        parsed
    }
}

/// The largest `max_in_flight` of an `mllp-out` adapter: the peer's ACKs for a
/// whole window must fit in the socket buffers while the window is written.
const MAX_OUT_IN_FLIGHT: usize = 256;

fn present_adapter_fields(t: &AdapterTable) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    let mut add = |name, span: Option<Range<usize>>| {
        if let Some(s) = span {
            out.push((name, s));
        }
    };
    add("host", t.host.as_ref().map(|v| v.span()));
    add("port", t.port.as_ref().map(|v| v.span()));
    add("ack_mode", t.ack_mode.as_ref().map(|v| v.span()));
    add("max_connections", t.max_connections.as_ref().map(|v| v.span()));
    add("max_in_flight", t.max_in_flight.as_ref().map(|v| v.span()));
    add("priority", t.priority.as_ref().map(|v| v.span()));
    add(
        "priority_rules",
        t.priority_rules
            .as_ref()
            .and_then(|r| Some(r.first()?.span().start..r.last()?.span().end)),
    );
    add("ack_timeout", t.ack_timeout.as_ref().map(|v| v.span()));
    add("connect_timeout", t.connect_timeout.as_ref().map(|v| v.span()));
    add("reply_actions", t.reply_actions.as_ref().map(|v| v.span()));
    add("dir", t.dir.as_ref().map(|v| v.span()));
    add("suffix", t.suffix.as_ref().map(|v| v.span()));
    add("poll_interval", t.poll_interval.as_ref().map(|v| v.span()));
    add("archive_dir", t.archive_dir.as_ref().map(|v| v.span()));
    add("filename", t.filename.as_ref().map(|v| v.span()));
    add("append", t.append.as_ref().map(|v| v.span()));
    add("file_spec", t.file_spec.as_ref().map(|v| v.span()));
    add("work_dir", t.work_dir.as_ref().map(|v| v.span()));
    add(
        "segment_terminator",
        t.segment_terminator.as_ref().map(|v| v.span()),
    );
    out
}

/// `"*.hl7; *.txt"` → `["*.hl7", "*.txt"]`.
fn file_spec_patterns(spec: &str) -> Vec<String> {
    spec.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_any(host: &str) -> bool {
    host == "0.0.0.0" || host == "::" || host == "[::]"
}

/// Item and hook names: any letters (not only ASCII), digits, spaces and
/// punctuation, as IRIS item names have them ("HL7 File Service", "Labor Eingang
/// Süd"), but no control characters, no surrounding spaces, nothing blank, and at
/// most 128 characters (the IRIS limit).
fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.trim() == name
        && name.chars().count() <= 128
        && !name.chars().any(char::is_control)
}

/// Whether `path` looks like an HL7 field path: `SEG-n`, optionally `(rep)` and `.comp.sub`.
pub fn valid_hl7_path(path: &str) -> bool {
    let Some((seg, rest)) = path.split_once('-') else {
        return false;
    };
    let seg_ok = seg.len() == 3
        && seg.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && seg.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let rest_ok = !rest.is_empty()
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '(' | ')'));
    seg_ok && rest_ok
}

/// Parse `"64MiB"`, `"512 KiB"`, `"1GB"` or `"4096"` into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Production, ConfigErrors> {
        check_str(Path::new("/p/production.toml"), text)
    }

    fn messages(text: &str) -> Vec<String> {
        check(text).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    const GOOD: &str = r#"
[production]
name = "demo"

[lookups.facility]
A = "alpha"

[[hooks]]
name = "audit"
plugin = "hooks/audit.wasm"

[[items]]
name = "in"
kind = "service"
adapter = { type = "mllp-in", port = 2575, ack_mode = "application" }
targets = ["router"]

[[items]]
name = "router"
kind = "process"
plugin = "hl7-router"
pool_size = 2
hooks = ["audit"]
queue = { kind = "keyed", key = "PID-3", capacity = 100, overflow = "reject" }
restart = { policy = "always", max_restarts = 3, within = "10s", backoff = "10ms", max_backoff = "1s" }
settings = { "route.adt" = "MSH-9.1=ADT -> out", n = 3 }
targets = ["out"]

[[items]]
name = "out"
kind = "operation"
adapter = { type = "mllp-out", host = "127.0.0.1", port = 2576, reply_actions = ":?E=S" }
execution = { mode = "single_process" }
limits = { memory = "64MiB", deadline = "5s" }
"#;

    #[test]
    fn a_good_production_checks() {
        let p = check(GOOD).unwrap();
        assert_eq!(p.name, "demo");
        assert_eq!(p.data_dir, PathBuf::from("/p/data"));
        assert_eq!(p.lookups["facility"]["A"], "alpha");
        let router = p.item("router").unwrap();
        assert_eq!(router.kind, ItemKind::Process);
        assert_eq!(router.execution, Execution::ThreadPool { threads: 2 });
        assert_eq!(router.queue.kind, QueueKind::Keyed { key: "PID-3".into() });
        assert_eq!(router.queue.overflow, Overflow::Reject);
        assert_eq!(router.restart.policy, RestartPolicy::Always);
        assert_eq!(router.settings["n"], "3");
        assert_eq!(router.location.line, 19);
        assert_eq!(
            router.plugin.as_ref().unwrap().reference,
            PluginRef::Standard("hl7-router".into())
        );
        let out = p.item("out").unwrap();
        assert_eq!(out.limits.memory, Some(64 << 20));
        let Some(AdapterConfig::MllpOut(m)) = &out.adapter else {
            panic!()
        };
        assert_eq!(m.reply_actions.as_deref(), Some(":?E=S"));
        assert_eq!(
            p.hook("audit").unwrap().plugin.reference,
            PluginRef::File("hooks/audit.wasm".into())
        );
    }

    #[test]
    fn store_section_and_ack_modes() {
        let p = check(GOOD).unwrap();
        assert_eq!(p.store, StoreSettings::default());
        assert_eq!(p.store.backend, StoreBackend::Sqlite);
        let text =
            format!("{GOOD}\n[store]\nbackend = \"none\"\ndedup_window = \"1h\"\nretention = \"7days\"\n");
        let p = check(&text).unwrap();
        assert_eq!(p.store.backend, StoreBackend::None);
        assert_eq!(p.store.dedup_window, Duration::from_secs(3600));
        assert_eq!(p.store.retention, Some(Duration::from_secs(7 * 24 * 3600)));

        let with_mode =
            |mode: &str| GOOD.replace("ack_mode = \"application\"", &format!("ack_mode = \"{mode}\""));
        let mode_of = |text: &str| match &check(text).unwrap().item("in").unwrap().adapter {
            Some(AdapterConfig::MllpIn(m)) => m.ack_mode,
            other => panic!("{other:?}"),
        };
        assert_eq!(mode_of(&with_mode("commit")), AckMode::Commit);
        assert_eq!(mode_of(&with_mode("accept")), AckMode::Commit);
        assert_eq!(mode_of(&with_mode("immediate")), AckMode::Immediate);
        assert_eq!(mode_of(&with_mode("never")), AckMode::Never);
        let errors = messages(&with_mode("later"));
        assert!(errors[0].contains("items[in].adapter.ack_mode"), "{errors:?}");
        assert!(errors[0].contains("expected \"commit\""), "{errors:?}");
        let text = format!("{GOOD}\n[store]\nbackend = \"postgres\"\n");
        let errors = messages(&text);
        assert!(errors[0].contains("store.backend"), "{errors:?}");
        let line = text[..text.find("backend = ").unwrap()].matches('\n').count() + 1;
        assert!(errors[0].contains(&format!(":{line}:")), "{errors:?}");
    }

    #[test]
    fn every_error_is_reported_with_line_and_field() {
        let text = r#"
[production]
name = "demo"

[[items]]
name = "a"
kind = "service"
adapter = { type = "mllp-in", port = 2575 }
targets = ["nowhere"]

[[items]]
name = "a"
kind = "process"
plugin = "x"
hooks = ["missing"]

[[items]]
name = "b"
kind = "service"
adapter = { type = "mllp-in", port = 2575 }
queue = { kind = "keyed" }
"#;
        let errs = messages(text);
        assert_eq!(
            errs,
            vec![
                "/p/production.toml:9:12: items[a].targets[0]: unknown target \"nowhere\"",
                "/p/production.toml:12:8: items[a].name: duplicate name \"a\" (first defined on line 6)",
                "/p/production.toml:15:10: items[a].hooks[0]: unknown hook \"missing\"",
                "/p/production.toml:20:38: items[b].adapter.port: port 2575 is already used by the listener of items[a]",
                "/p/production.toml:21:18: items[b].queue.key: a keyed queue needs a key, e.g. \"PID-3\"",
            ],
            "{errs:#?}"
        );
    }

    #[test]
    fn unknown_fields_are_named_per_item() {
        let text = r#"
[production]
name = "demo"
colour = "blue"

[[items]]
name = "a"
kind = "service"
pool = 3

[[items]]
name = "b"
kind = "operation"
adapter = { type = "mllp-out", port = 1, dir = "x" }
"#;
        let errs = messages(text);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs[0].starts_with("/p/production.toml:4:1: production: unknown field \"colour\""),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("/p/production.toml:9:1: items[a]: unknown field \"pool\""),
            "{}",
            errs[1]
        );
        assert_eq!(
            errs[2],
            "/p/production.toml:14:48: items[b].adapter.dir: field does not apply to adapter \"mllp-out\""
        );
    }

    #[test]
    fn iris_item_names_with_spaces_and_letters_check() {
        let text = r#"
[production]
name = "Demo.HL7.Production"

[[items]]
name = "HL7 Datei Eingang Süd"
kind = "service"
adapter = { type = "file-in", dir = "in", file_spec = "*.hl7; *.txt", work_dir = "work" }
targets = ["Zielsystem Ω"]

[[items]]
name = "Zielsystem Ω"
kind = "operation"
adapter = { type = "file-out", dir = "out", filename = "%f_%Q%!+(_a)", append = true, segment_terminator = "crlf" }
"#;
        let p = check(text).unwrap();
        let Some(AdapterConfig::FileIn(i)) = &p.item("HL7 Datei Eingang Süd").unwrap().adapter else {
            panic!()
        };
        assert_eq!(i.file_spec, vec!["*.hl7".to_string(), "*.txt".to_string()]);
        assert_eq!(i.work_dir, Some(PathBuf::from("/p/work")));
        let Some(AdapterConfig::FileOut(o)) = &p.item("Zielsystem Ω").unwrap().adapter else {
            panic!()
        };
        assert!(o.append);
        assert_eq!(o.segment_terminator, Some(SegmentTerminator::CrLf));
        for bad in ["", " leading", "trailing ", "tab\there", "   "] {
            let t = text.replace("Zielsystem Ω", bad);
            let errors = messages(&t);
            assert!(
                errors.iter().any(|e| e.contains("invalid name")),
                "{bad:?}: {errors:?}"
            );
        }
        let long = "x".repeat(129);
        assert!(
            messages(&text.replace("Zielsystem Ω", &long))
                .iter()
                .any(|e| e.contains("invalid name"))
        );
    }

    #[test]
    fn bad_file_out_names_and_terminators_are_reported_with_lines() {
        let text = r#"
[production]
name = "demo"

[[items]]
name = "out"
kind = "operation"
adapter = { type = "file-out", dir = "out", filename = "x_%c.hl7", segment_terminator = "nl" }
"#;
        let errs = messages(text);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].contains(":8:")
                && errs[0].contains("items[out].adapter.filename")
                && errs[0].contains("%c"),
            "{errs:#?}"
        );
        assert!(
            errs[1].contains("items[out].adapter.segment_terminator"),
            "{errs:#?}"
        );
    }

    #[test]
    fn syntax_errors_have_lines() {
        let errs = messages("[production]\nname = \"x\"\n[[items]\n");
        assert!(errs[0].starts_with("/p/production.toml:3:"), "{errs:?}");
    }

    #[test]
    fn bad_values_are_reported() {
        let text = r#"
[production]
name = "demo"

[[items]]
name = "p"
kind = "proces"

[[items]]
name = "q"
kind = "process"
plugin = "x"
execution = { mode = "fibers" }
restart = { within = "soon" }
limits = { memory = "lots" }
queue = { capacity = 0 }
"#;
        let errs = messages(text);
        let fields: Vec<&str> = errs.iter().map(|e| e.split(": ").nth(1).unwrap()).collect();
        assert_eq!(
            fields,
            vec![
                "items[p].kind",
                "items[q].execution.mode",
                "items[q].restart.within",
                "items[q].limits.memory",
                "items[q].queue.capacity"
            ],
            "{errs:#?}"
        );
    }

    #[test]
    fn sizes_and_paths() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1 GB"), Some(1_000_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
        assert!(valid_hl7_path("PID-3"));
        assert!(valid_hl7_path("PID-3(1).1"));
        assert!(!valid_hl7_path("pid3"));
    }
}
