//! What changed between two checked productions, item by item, for config
//! reload: the engine applies only the difference, and items the diff calls
//! unchanged keep running untouched.
//!
//! Where an item is written in the file (its line) is not a change; neither is
//! the order of items. A change of a hook's definition changes every item that
//! attaches it.

use crate::model::{ItemConfig, PluginSpec, Production};

/// Items added, removed, re-configured or unchanged, and production-wide changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductionDiff {
    /// Items only in the new production, in its file order.
    pub added: Vec<String>,
    /// Items only in the old production.
    pub removed: Vec<String>,
    /// Items in both whose configuration differs.
    pub changed: Vec<ItemDiff>,
    /// Items in both with the same configuration.
    pub unchanged: Vec<String>,
    /// Whether any lookup table differs.
    pub lookups: bool,
    /// Hooks whose definition differs, was added or removed.
    pub hooks: Vec<String>,
    /// `[production]` fields that differ (`name`, `data_dir`, `drain_timeout`).
    pub production: Vec<&'static str>,
}

/// One re-configured item and the fields that differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDiff {
    /// The item.
    pub name: String,
    /// Fields as written in the production file (`settings`, `pool_size`, …).
    pub fields: Vec<&'static str>,
}

impl ProductionDiff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.lookups
            && self.hooks.is_empty()
            && self.production.is_empty()
    }
}

/// The difference from `old` to `new`.
pub fn diff(old: &Production, new: &Production) -> ProductionDiff {
    let mut d = ProductionDiff {
        lookups: old.lookups != new.lookups,
        ..ProductionDiff::default()
    };
    if old.name != new.name {
        d.production.push("name");
    }
    if old.data_dir != new.data_dir {
        d.production.push("data_dir");
    }
    if old.drain_timeout != new.drain_timeout {
        d.production.push("drain_timeout");
    }
    for hook in &old.hooks {
        if new.hook(&hook.name) != Some(hook) {
            d.hooks.push(hook.name.clone());
        }
    }
    for hook in &new.hooks {
        if old.hook(&hook.name).is_none() {
            d.hooks.push(hook.name.clone());
        }
    }
    for item in &new.items {
        match old.item(&item.name) {
            None => d.added.push(item.name.clone()),
            Some(before) => {
                let mut fields = item_fields(before, item);
                if !fields.contains(&"hooks") && item.hooks.iter().any(|h| d.hooks.contains(h)) {
                    fields.push("hooks");
                }
                if fields.is_empty() {
                    d.unchanged.push(item.name.clone());
                } else {
                    d.changed.push(ItemDiff {
                        name: item.name.clone(),
                        fields,
                    });
                }
            }
        }
    }
    for item in &old.items {
        if new.item(&item.name).is_none() {
            d.removed.push(item.name.clone());
        }
    }
    d
}

/// Plugins are the same when they name the same thing and resolved to the same file.
fn same_plugin(a: Option<&PluginSpec>, b: Option<&PluginSpec>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.reference == b.reference && a.path == b.path,
        _ => false,
    }
}

/// The fields of `b` that differ from `a`, ignoring where they are written.
fn item_fields(a: &ItemConfig, b: &ItemConfig) -> Vec<&'static str> {
    let mut f = Vec::new();
    let mut check = |differs: bool, name: &'static str| {
        if differs {
            f.push(name);
        }
    };
    check(a.kind != b.kind, "kind");
    check(!same_plugin(a.plugin.as_ref(), b.plugin.as_ref()), "plugin");
    check(a.adapter != b.adapter, "adapter");
    check(a.enabled != b.enabled, "enabled");
    check(a.pool_size != b.pool_size, "pool_size");
    check(a.execution != b.execution, "execution");
    check(a.queue != b.queue, "queue");
    check(a.restart != b.restart, "restart");
    check(a.retry != b.retry, "retry");
    check(a.settings != b.settings, "settings");
    check(a.hooks != b.hooks, "hooks");
    check(a.targets != b.targets, "targets");
    check(a.limits != b.limits, "limits");
    check(a.grants != b.grants, "grants");
    f
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn production(text: &str) -> Production {
        crate::check_str(Path::new("production.toml"), text).expect("valid production")
    }

    const BASE: &str = r#"
[production]
name = "p"

[[items]]
name = "in"
kind = "service"
adapter = { type = "mllp-in", port = 0 }
targets = ["route"]

[[items]]
name = "route"
kind = "process"
plugin = "hl7-router"
pool_size = 2
targets = ["out"]
settings = { a = "1" }

[[items]]
name = "out"
kind = "operation"
adapter = { type = "mllp-out", port = 9 }

[[items]]
name = "spare"
kind = "operation"
adapter = { type = "mllp-out", port = 11 }
"#;

    #[test]
    fn same_file_is_no_change() {
        let d = diff(&production(BASE), &production(BASE));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.unchanged, ["in", "route", "out", "spare"]);
    }

    #[test]
    fn moved_lines_are_not_a_change() {
        let moved = format!("\n\n# comment\n{BASE}");
        let d = diff(&production(BASE), &production(&moved));
        assert!(d.changed.is_empty(), "{d:?}");
    }

    #[test]
    fn added_removed_and_changed_items_with_their_fields() {
        let new = BASE
            .replace("pool_size = 2", "pool_size = 4")
            .replace("settings = { a = \"1\" }", "settings = { a = \"2\" }")
            .replace("name = \"spare\"", "name = \"audit\"");
        let d = diff(&production(BASE), &production(&new));
        assert_eq!(d.added, ["audit"]);
        assert_eq!(d.removed, ["spare"]);
        assert_eq!(
            d.changed,
            [ItemDiff {
                name: "route".into(),
                fields: vec!["pool_size", "execution", "settings"]
            }]
        );
        assert_eq!(d.unchanged, ["in", "out"]);
    }
}
