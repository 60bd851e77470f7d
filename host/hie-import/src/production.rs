//! The `<Production>` definition: items, their attributes and `<Setting>`s, and
//! production-level settings, each with its line in the source file.

use crate::ImportError;
use crate::source::{At, Embedded};

/// `Target` of a `<Setting>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A setting of the business host class.
    Host,
    /// A setting of its adapter (the default when `Target` is absent).
    Adapter,
}

impl Target {
    /// As IRIS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Host => "Host",
            Target::Adapter => "Adapter",
        }
    }
}

/// A `<Setting>` or an attribute.
#[derive(Debug, Clone)]
pub struct Setting {
    /// Host or Adapter.
    pub target: Target,
    /// Name.
    pub name: String,
    /// Value, trimmed as IRIS does (`Ens.Config.Setting.ValueSet` strips whitespace).
    pub value: String,
    /// Where.
    pub at: At,
}

/// An `<Item>`.
#[derive(Debug, Clone)]
pub struct Item {
    /// `Name` (defaults to `ClassName`).
    pub name: String,
    /// `ClassName`.
    pub class: String,
    /// Attributes other than Name and ClassName (`PoolSize`, `Enabled`, …), with their lines.
    pub attributes: Vec<Setting>,
    /// `<Setting>` children.
    pub settings: Vec<Setting>,
    /// The `<Item>` element.
    pub at: At,
}

impl Item {
    /// The attribute `name`, if written.
    pub fn attribute(&self, name: &str) -> Option<&Setting> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// A parsed production.
#[derive(Debug, Clone)]
pub struct Production {
    /// `Name` (the class name).
    pub name: String,
    /// `<Description>`.
    pub description: String,
    /// Production-level settings: attributes (`LogGeneralTraceEvents`, `TestingEnabled`),
    /// elements (`ActorPoolSize`) and `<Setting>`s (`ShutdownTimeout`, …).
    pub settings: Vec<Setting>,
    /// Items in file order.
    pub items: Vec<Item>,
    /// The `<Production>` element.
    pub at: At,
}

/// Parse the production XML of `src`.
pub fn parse(src: &Embedded) -> Result<Production, ImportError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&src.xml, opts).map_err(|e| {
        ImportError::NotIris(format!(
            "{}:{}: the production definition of {} is not well-formed XML: {e}",
            src.file.display(),
            e.pos().row as usize + src.line_offset,
            src.class
        ))
    })?;
    let at = |pos: usize| At {
        file: src.file.clone(),
        line: doc.text_pos_at(pos).row as usize + src.line_offset,
    };
    let root = doc.root_element();
    if !root.has_tag_name("Production") {
        return Err(ImportError::NotIris(format!(
            "{}: XData ProductionDefinition of {} holds <{}>, not <Production>",
            at(root.range().start),
            src.class,
            root.tag_name().name()
        )));
    }
    let mut production = Production {
        name: root.attribute("Name").unwrap_or(&src.class).to_string(),
        description: String::new(),
        settings: Vec::new(),
        items: Vec::new(),
        at: at(root.range().start),
    };
    for attr in root.attributes() {
        if attr.name() != "Name" {
            production.settings.push(Setting {
                target: Target::Host,
                name: attr.name().to_string(),
                value: attr.value().trim().to_string(),
                at: at(attr.range().start),
            });
        }
    }
    for child in root.children().filter(|c| c.is_element()) {
        let where_ = at(child.range().start);
        match child.tag_name().name() {
            "Description" => production.description = child.text().unwrap_or_default().trim().to_string(),
            "Item" => production.items.push(item(child, &at)),
            "Setting" => production.settings.push(setting(child, where_)),
            other => production.settings.push(Setting {
                target: Target::Host,
                name: other.to_string(),
                value: child.text().unwrap_or_default().trim().to_string(),
                at: where_,
            }),
        }
    }
    Ok(production)
}

fn setting(node: roxmltree::Node<'_, '_>, at: At) -> Setting {
    let target = match node.attribute("Target") {
        Some(t) if t.eq_ignore_ascii_case("Host") => Target::Host,
        _ => Target::Adapter,
    };
    Setting {
        target,
        name: node.attribute("Name").unwrap_or_default().to_string(),
        value: node.text().unwrap_or_default().trim().to_string(),
        at,
    }
}

fn item(node: roxmltree::Node<'_, '_>, at: &dyn Fn(usize) -> At) -> Item {
    let class = node.attribute("ClassName").unwrap_or_default().to_string();
    let name = node
        .attribute("Name")
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().to_string())
        .or_else(|| (!class.trim().is_empty()).then(|| class.trim().to_string()))
        .unwrap_or_else(|| format!("Item at line {}", at(node.range().start).line));
    let attributes = node
        .attributes()
        .filter(|a| a.name() != "Name" && a.name() != "ClassName")
        .map(|a| Setting {
            target: Target::Host,
            name: a.name().to_string(),
            value: a.value().trim().to_string(),
            at: at(a.range().start),
        })
        .collect();
    let settings = node
        .children()
        .filter(|c| c.has_tag_name("Setting"))
        .map(|c| setting(c, at(c.range().start)))
        .collect();
    Item {
        name,
        class,
        attributes,
        settings,
        at: at(node.range().start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_settings_and_lines() {
        let xml = "<Production Name=\"Demo.Prod\" LogGeneralTraceEvents=\"false\">\n  <Description>demo</Description>\n  <ActorPoolSize>2</ActorPoolSize>\n  <Setting Target=\"Adapter\" Name=\"ShutdownTimeout\">30</Setting>\n  <Item Name=\"HL7 In\" ClassName=\"EnsLib.HL7.Service.TCPService\" PoolSize=\"1\" Enabled=\"true\">\n    <Setting Target=\"Adapter\" Name=\"Port\"> 2575 </Setting>\n    <Setting Name=\"JobPerConnection\">0</Setting>\n    <Setting Target=\"Host\" Name=\"TargetConfigNames\">Router</Setting>\n  </Item>\n  <Item ClassName=\"My.Op\"/>\n</Production>";
        let src = Embedded {
            class: "Demo.Prod".into(),
            xml: xml.into(),
            file: "/x/Demo.Prod.cls".into(),
            line_offset: 10,
        };
        let p = parse(&src).unwrap();
        assert_eq!(p.name, "Demo.Prod");
        assert_eq!(p.description, "demo");
        assert_eq!(p.at.line, 11);
        let names: Vec<&str> = p.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["LogGeneralTraceEvents", "ActorPoolSize", "ShutdownTimeout"]
        );
        let a = &p.items[0];
        assert_eq!(a.name, "HL7 In");
        assert_eq!(a.at.line, 15);
        assert_eq!(a.attribute("PoolSize").unwrap().value, "1");
        assert_eq!(a.settings[0].value, "2575");
        assert_eq!(a.settings[0].at.line, 16);
        assert_eq!(a.settings[1].target, Target::Adapter);
        assert_eq!(a.settings[2].target, Target::Host);
        assert_eq!(p.items[1].name, "My.Op");
    }
}
