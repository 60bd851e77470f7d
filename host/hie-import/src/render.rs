//! Writing `production.toml` and `IMPORT-REPORT.md`.

use std::fmt::Write as _;

use crate::mapping::{Mapped, OutItem, Toml};
use crate::source::Found;

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn value(v: &Toml) -> String {
    match v {
        Toml::Str(s) => quote(s),
        Toml::Int(i) => i.to_string(),
        Toml::Bool(b) => b.to_string(),
    }
}

fn inline(table: &[(&'static str, Toml)]) -> String {
    let fields: Vec<String> = table.iter().map(|(k, v)| format!("{k} = {}", value(v))).collect();
    format!("{{ {} }}", fields.join(", "))
}

fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "# {line}");
    }
}

/// The production file.
pub fn production_toml(m: &Mapped, found: &Found, inputs: &str) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!(
            "Imported from InterSystems IRIS production {} by `hie import iris` ({inputs}).\nIMPORT-REPORT.md lists every item and setting: how it maps, or why it does not carry over.",
            m.name
        ),
    );
    if !m.description.is_empty() {
        comment(&mut out, &format!("IRIS description: {}", m.description));
    }
    let _ = writeln!(
        out,
        "\n[production]\nname = {}\ndata_dir = \"data\"",
        quote(&m.name)
    );
    if let Some(d) = &m.drain_timeout {
        let _ = writeln!(out, "drain_timeout = {}", quote(d));
    }
    if !m.debug_items.is_empty() {
        let _ = writeln!(out, "\n[log.items]");
        for name in &m.debug_items {
            let _ = writeln!(out, "{} = \"debug\"", quote(name));
        }
    }
    if !found.lookups.is_empty() {
        for (table, entries) in &found.lookups {
            let _ = writeln!(out, "\n[lookups.{}]", quote(table));
            for (k, v) in entries {
                let _ = writeln!(out, "{} = {}", quote(k), quote(v));
            }
        }
    }
    for item in &m.items {
        item_toml(&mut out, item);
    }
    out
}

fn item_toml(out: &mut String, item: &OutItem) {
    out.push('\n');
    for c in &item.comments {
        comment(out, c);
    }
    let _ = writeln!(
        out,
        "[[items]]\nname = {}\nkind = {}",
        quote(&item.name),
        quote(item.kind)
    );
    if let Some(p) = &item.plugin {
        let _ = writeln!(out, "plugin = {}", quote(p));
    }
    if !item.enabled {
        let _ = writeln!(out, "enabled = false");
    }
    if let Some(n) = item.pool_size {
        let _ = writeln!(out, "pool_size = {n}");
    }
    if !item.adapter.is_empty() {
        let _ = writeln!(out, "adapter = {}", inline(&item.adapter));
    }
    if !item.retry.is_empty() {
        let _ = writeln!(out, "retry = {}", inline(&item.retry));
    }
    if !item.targets.is_empty() {
        let targets: Vec<String> = item.targets.iter().map(|t| quote(t)).collect();
        let _ = writeln!(out, "targets = [{}]", targets.join(", "));
    }
    if !item.settings.is_empty() {
        let _ = writeln!(out, "\n[items.settings]");
        for (k, v) in &item.settings {
            let _ = writeln!(out, "{} = {}", quote(k), quote(v));
        }
    }
}

/// The report.
pub fn report(m: &Mapped, found: &Found, inputs: &[String], skeleton_dir: &str) -> String {
    let mut out = String::new();
    let disabled = m.reports.iter().filter(|r| r.disabled.is_some()).count();
    let _ = writeln!(out, "# Import report: IRIS production `{}`\n", m.name);
    if let Some(at) = &m.at {
        let _ = writeln!(out, "Production definition: {at}\n");
    }
    let _ = writeln!(out, "Inputs:");
    for i in inputs {
        let _ = writeln!(out, "- `{i}`");
    }
    let _ = writeln!(
        out,
        "\n{} items: {} imported as they run in IRIS, {} disabled (reasons below). {} settings not carried over. {} rule classes compiled.\n",
        m.reports.len(),
        m.reports.len() - disabled,
        disabled,
        m.not_carried,
        m.rule_files.len()
    );
    let _ = writeln!(
        out,
        "## Setting precedence\n\nAs IRIS does it (IRIS documentation, *Configuring Productions* → \"Defining System Default Settings\"): a value written in the production definition wins, even an empty one; otherwise the most specific System Default Settings entry (exact production before `*`, then item, then class); otherwise the class default (the IRIS defaults are written in the lines below where HIE needs them). `PoolSize` is never taken from system defaults. The 2023.3+ \"system override\" settings are not known to the importer: no default overrides a production value here; such cases are listed under System default settings.\n"
    );
    if !m.production_lines.is_empty() {
        let _ = writeln!(out, "## Production settings\n");
        for l in &m.production_lines {
            let _ = writeln!(out, "- {l}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Items\n");
    for r in &m.reports {
        let at = r.at.as_ref().map(|a| format!(" — {a}")).unwrap_or_default();
        let _ = writeln!(out, "### `{}` ({}){at}\n", r.name, r.class);
        let _ = writeln!(out, "Imported as: {}.", r.became);
        if let Some(d) = &r.disabled {
            let _ = writeln!(out, "\n**Disabled:** {d}");
        }
        out.push('\n');
        for l in &r.lines {
            let _ = writeln!(out, "- {l}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Routing rules\n");
    if m.rule_files.is_empty() && found.rules.is_empty() {
        let _ = writeln!(out, "No rule classes in the inputs.\n");
    }
    for r in &found.rules {
        let used = m.rule_files.contains_key(&r.class);
        let _ = writeln!(
            out,
            "- `{}` ({}:{}): {}",
            r.class,
            r.file.display(),
            r.line_offset + 1,
            if used {
                format!(
                    "compiled into rules/{}.json and the router's `iris-rules` setting",
                    r.class
                )
            } else {
                "not used by any router of this production (BusinessRuleName)".into()
            }
        );
    }
    for l in &m.rule_lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push('\n');
    let _ = writeln!(out, "## Lookup tables\n");
    if found.lookups.is_empty() {
        let _ = writeln!(out, "None in the inputs.\n");
    }
    for (t, entries) in &found.lookups {
        let at = found
            .lookup_origins
            .get(t)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- `{t}` ({at}): {} entries → `[lookups.{t}]` (for `hl7-router` and `hl7-mapper` lookups)",
            entries.len()
        );
    }
    out.push('\n');
    let _ = writeln!(out, "## Custom HL7 schemas\n");
    if found.categories.is_empty() {
        let _ = writeln!(out, "None in the inputs.\n");
    }
    for (name, (base, at)) in &found.categories {
        let _ = writeln!(
            out,
            "- `{name}` ({at}): base version {base:?}; rules naming this category resolve paths through {base}; custom segments and structures of the category do not carry over"
        );
    }
    out.push('\n');
    let _ = writeln!(out, "## System default settings\n");
    if m.default_lines.is_empty() {
        let _ = writeln!(out, "None in the inputs.\n");
    }
    for l in &m.default_lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push('\n');
    if !m.skeletons.is_empty() {
        let _ = writeln!(out, "## Plugin skeletons for custom classes\n");
        for s in &m.skeletons {
            let _ = writeln!(
                out,
                "- `{}` ({} of item `{}`): `{skeleton_dir}/{}`, a {} plugin made by `hie plugin new`",
                s.class, s.kind, s.item, s.crate_name, s.kind
            );
        }
        out.push('\n');
    }
    if !found.class_code.is_empty() {
        let _ = writeln!(
            out,
            "## Class code that does not carry over
"
        );
        let _ = writeln!(
            out,
            "HIE runs no ObjectScript: members of the production and rule classes other than their XData definitions, and custom base classes (which may add items, settings or callbacks such as `OnStart`), are not imported. Where one matters, do it in deployment or write it as a plugin (`hie plugin new`).\n"
        );
        for (at, class, member) in &found.class_code {
            let _ = writeln!(out, "- `{class}`: `{member}` ({at}): **not carried over**");
        }
        out.push('\n');
    }
    let other_classes: Vec<_> = found
        .classes
        .iter()
        .filter(|(name, _)| !m.reports.iter().any(|r| &r.class == *name))
        .collect();
    if !other_classes.is_empty() || !found.skipped.is_empty() {
        let _ = writeln!(out, "## Inputs not used\n");
        for (name, c) in other_classes {
            let _ = writeln!(
                out,
                "- class `{name}` ({}): no item of the production uses it",
                c.at
            );
        }
        for (at, why) in &found.skipped {
            let _ = writeln!(out, "- {at}: {why}");
        }
        out.push('\n');
    }
    out
}
