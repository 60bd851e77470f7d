//! Where a setting's value comes from, the way IRIS decides it.
//!
//! IRIS documentation, "Defining System Default Settings" (Configuring
//! Productions, `ECONFIG_other_default_settings`): to find the value of a setting
//! of a production, business host or adapter, IRIS looks, in order, at
//! 1. the production definition — a value written there is used, even an empty
//!    one (unless the setting is one of the 2023.3+ "system overrides");
//! 2. the System Default Settings, using the most specific match for the setting
//!    name — even an empty value found there is used;
//! 3. the default of the setting in the host or adapter class.
//!
//! The most specific match is taken in the order of the table's key
//! (`Ens.Config.DefaultSettings` index `(ProductionName, ItemName, HostClassName,
//! SettingName)`, `*` for any): exact production before `*`, then exact item name
//! before `*`, then exact class before `*`. The Ensemble edition of the same page
//! adds that `PoolSize` cannot be a system default; such entries are reported and
//! not applied. The 2023.3 "system override" settings are not named in the
//! documentation available to this importer: no entry is treated as one, and
//! every default shadowed by a production value is listed in the report.

use crate::production::{Item, Setting, Target};
use crate::source::{At, DefaultSetting};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Written on the item (or production) in the production definition.
    Production(At),
    /// A System Default Settings entry.
    SystemDefault(At),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Production(at) => write!(f, "production definition, {at}"),
            Origin::SystemDefault(at) => write!(f, "system default setting, {at}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Value {
    /// The value (trimmed).
    pub value: String,
    /// Its origin.
    pub origin: Origin,
}

/// The system default entry for `setting` of `item` in `production`, most specific first.
pub fn system_default<'d>(
    defaults: &'d [DefaultSetting],
    production: &str,
    item: &str,
    class: &str,
    setting: &str,
) -> Option<&'d DefaultSetting> {
    let keys = [
        (production, item, class),
        (production, item, "*"),
        (production, "*", class),
        (production, "*", "*"),
        ("*", item, class),
        ("*", item, "*"),
        ("*", "*", class),
        ("*", "*", "*"),
    ];
    keys.iter().find_map(|(p, i, c)| {
        defaults
            .iter()
            .find(|d| d.setting == setting && d.production == *p && d.item == *i && d.class == *c)
    })
}

/// The value of `name` for `item`: the item's own setting (of `target` if given,
/// else any target), else its attribute of that name, else the most specific
/// system default. Records which default entries were used and which were shadowed.
pub fn resolve(
    production: &str,
    item: &Item,
    name: &str,
    target: Option<Target>,
    defaults: &[DefaultSetting],
    used: &mut Vec<At>,
    shadowed: &mut Vec<(At, At)>,
) -> Option<Value> {
    let own: Option<&Setting> = item
        .settings
        .iter()
        .find(|s| s.name == name && target.is_none_or(|t| s.target == t))
        .or_else(|| item.settings.iter().find(|s| s.name == name))
        .or_else(|| item.attribute(name));
    let default = if name == "PoolSize" {
        None
    } else {
        system_default(defaults, production, &item.name, &item.class, name)
    };
    match (own, default) {
        (Some(s), d) => {
            if let Some(d) = d {
                shadowed.push((d.at.clone(), s.at.clone()));
            }
            Some(Value {
                value: s.value.clone(),
                origin: Origin::Production(s.at.clone()),
            })
        }
        (None, Some(d)) => {
            used.push(d.at.clone());
            Some(Value {
                value: d.value.clone(),
                origin: Origin::SystemDefault(d.at.clone()),
            })
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, i: &str, c: &str, s: &str, v: &str, line: usize) -> DefaultSetting {
        DefaultSetting {
            production: p.into(),
            item: i.into(),
            class: c.into(),
            setting: s.into(),
            value: v.into(),
            at: At {
                file: "/d.esd".into(),
                line,
            },
        }
    }

    fn item(settings: &[(&str, &str)]) -> Item {
        Item {
            name: "Out".into(),
            class: "EnsLib.HL7.Operation.FileOperation".into(),
            attributes: vec![],
            settings: settings
                .iter()
                .enumerate()
                .map(|(n, (k, v))| Setting {
                    target: Target::Adapter,
                    name: (*k).into(),
                    value: (*v).into(),
                    at: At {
                        file: "/p.cls".into(),
                        line: 10 + n,
                    },
                })
                .collect(),
            at: At {
                file: "/p.cls".into(),
                line: 9,
            },
        }
    }

    #[test]
    fn production_value_wins_even_when_empty_then_most_specific_default() {
        let defaults = vec![
            entry("*", "*", "*", "FilePath", "/all", 1),
            entry("*", "Out", "*", "FilePath", "/item", 2),
            entry("Demo", "*", "*", "FilePath", "/prod", 3),
            entry(
                "*",
                "*",
                "EnsLib.HL7.Operation.FileOperation",
                "Filename",
                "%f",
                4,
            ),
            entry("Other", "Out", "*", "Filename", "other production", 5),
            entry("*", "*", "*", "PoolSize", "4", 6),
        ];
        let (mut used, mut shadowed) = (vec![], vec![]);
        let it = item(&[("FilePath", "")]);
        let v = resolve("Demo", &it, "FilePath", None, &defaults, &mut used, &mut shadowed).unwrap();
        assert_eq!(v.value, "");
        assert!(matches!(v.origin, Origin::Production(ref at) if at.line == 10));
        assert_eq!(shadowed.len(), 1);
        let it = item(&[]);
        // production-specific entry before the item-specific one, by key order
        let v = resolve("Demo", &it, "FilePath", None, &defaults, &mut used, &mut shadowed).unwrap();
        assert_eq!(v.value, "/prod");
        let v = resolve(
            "Another",
            &it,
            "FilePath",
            None,
            &defaults,
            &mut used,
            &mut shadowed,
        )
        .unwrap();
        assert_eq!(v.value, "/item");
        let v = resolve("Demo", &it, "Filename", None, &defaults, &mut used, &mut shadowed).unwrap();
        assert_eq!(v.value, "%f");
        assert!(resolve("Demo", &it, "PoolSize", None, &defaults, &mut used, &mut shadowed).is_none());
        assert!(resolve("Demo", &it, "Port", None, &defaults, &mut used, &mut shadowed).is_none());
    }
}
