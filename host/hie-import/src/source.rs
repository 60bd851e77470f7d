//! Finding what IRIS inputs hold: production definitions, rule definitions,
//! lookup tables, system default settings, custom HL7 schema categories and the
//! classes they name, in any of the three containers (raw XML, UDL `.cls`,
//! `<Export>` packages), each with the file and line it comes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ImportError;

/// Where something is written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// An XML document embedded in a file (an XData block, a CDATA section or the file
/// itself): its text and the line of the file just before its first line.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Class (or file stem for raw XML) it belongs to.
    pub class: String,
    /// The XML.
    pub xml: String,
    /// The file.
    pub file: PathBuf,
    /// Line of the file before the XML's first line (XML line n is file line n + offset).
    pub line_offset: usize,
}

/// One System Default Settings entry (`Ens.Config.DefaultSettings`).
#[derive(Debug, Clone)]
pub struct DefaultSetting {
    /// Production name or `*`.
    pub production: String,
    /// Item name or `*`.
    pub item: String,
    /// Host class name or `*`.
    pub class: String,
    /// Setting name.
    pub setting: String,
    /// Value.
    pub value: String,
    /// Where.
    pub at: At,
}

/// A class seen in the inputs that is not a production or a rule.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// Superclasses as written.
    pub supers: Vec<String>,
    /// Where it is defined.
    pub at: At,
}

/// Everything found in the inputs.
#[derive(Debug, Default)]
pub struct Found {
    /// Production definitions.
    pub productions: Vec<Embedded>,
    /// Rule definitions, by class name.
    pub rules: Vec<Embedded>,
    /// Lookup tables: table → key → value.
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    /// Where each lookup table was read.
    pub lookup_origins: BTreeMap<String, At>,
    /// System default settings.
    pub defaults: Vec<DefaultSetting>,
    /// Custom HL7 schema categories: name → (base version, where).
    pub categories: BTreeMap<String, (String, At)>,
    /// Other classes, by name.
    pub classes: BTreeMap<String, ClassInfo>,
    /// Files and documents not used, with why.
    pub skipped: Vec<(At, String)>,
    /// Code of production and rule classes that does not carry over: where, class,
    /// member (`ClassMethod OnStart`, `Parameter X`, `Extends My.Base`).
    pub class_code: Vec<(At, String, String)>,
}

/// Class member keywords of UDL and of `<Class>` children in an export.
const MEMBER_KINDS: [&str; 10] = [
    "Parameter",
    "Property",
    "Method",
    "ClassMethod",
    "Query",
    "Index",
    "ForeignKey",
    "Trigger",
    "Projection",
    "Storage",
];

/// Members that only serve IRIS's editors, not what runs (`RuleAssistClass`).
fn is_editor_only(member: &str) -> bool {
    member == "Parameter RuleAssistClass"
}

/// The XData blocks the importer reads.
fn is_read_xdata(name: &str) -> bool {
    matches!(name, "ProductionDefinition" | "RuleDefinition")
}

/// Superclasses a production or rule class may have without bringing code along.
fn is_plain_super(name: &str) -> bool {
    matches!(
        name,
        "Ens.Production" | "Ens.Rule.Definition" | "EnsLib.HL7.MsgRouter.RuleAssist" | "%RegisteredObject"
    )
}

/// What a file holds, found by looking at its text.
enum Container {
    Xml,
    Udl,
    Other,
}

fn sniff(text: &str) -> Container {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        return Container::Xml;
    }
    if t.lines().any(|l| l.starts_with("Class ")) {
        return Container::Udl;
    }
    Container::Other
}

/// Files under `path` (recursively, sorted), or `path` itself.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(ImportError::Input(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ImportError::Input(format!("{}: cannot read directory: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if is_candidate(&name) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// File kinds IRIS inputs come in (`.hl7` only counts when it is XML, checked later).
fn is_candidate(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".cls", ".xml", ".lut", ".esd", ".hl7", ".rul"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

fn line_at(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
}

impl Found {
    /// Read one file. `explicit`: named on the command line (then a file that is
    /// not IRIS input is an error rather than skipped).
    pub fn read(&mut self, path: &Path, explicit: bool) -> Result<(), ImportError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ImportError::Input(format!("{}: cannot read: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let before = self.count();
        match sniff(&text) {
            Container::Xml => self.xml_file(path, &text, explicit)?,
            Container::Udl => self.udl_file(path, &text)?,
            Container::Other => {
                if explicit {
                    return Err(ImportError::NotIris(format!(
                        "{}: not an IRIS production, rule or export (neither XML nor a UDL class)",
                        path.display()
                    )));
                }
                self.skipped.push((at(path, 1), "not XML or a UDL class".into()));
            }
        }
        if explicit && self.count() == before {
            return Err(ImportError::NotIris(format!(
                "{}: not an IRIS production, rule or export (no Production, ruleDefinition, lookup table, default settings or HL7 schema in it)",
                path.display()
            )));
        }
        Ok(())
    }

    fn count(&self) -> usize {
        self.productions.len()
            + self.rules.len()
            + self.lookup_origins.len()
            + self.defaults.len()
            + self.categories.len()
            + self.classes.len()
    }

    fn xml_file(&mut self, path: &Path, text: &str, explicit: bool) -> Result<(), ImportError> {
        let doc = match parse_xml(text) {
            Ok(d) => d,
            Err(e) => {
                let msg = format!("{}:{}: not well-formed XML: {e}", path.display(), e.pos().row);
                if explicit {
                    return Err(ImportError::NotIris(msg));
                }
                self.skipped.push((
                    at(path, e.pos().row as usize),
                    format!("not well-formed XML: {e}"),
                ));
                return Ok(());
            }
        };
        let root = doc.root_element();
        let line = |n: roxmltree::Node<'_, '_>| doc.text_pos_at(n.range().start).row as usize;
        match root.tag_name().name() {
            "Export" => {
                for child in root.children().filter(|c| c.is_element()) {
                    match child.tag_name().name() {
                        "Class" => self.export_class(path, text, &doc, child),
                        "Document" => self.export_document(path, &doc, child),
                        other => self.skipped.push((
                            at(path, line(child)),
                            format!("<{other}> entries are not IRIS interoperability content"),
                        )),
                    }
                }
            }
            "Production" => self.productions.push(Embedded {
                class: root
                    .attribute("Name")
                    .map(str::to_string)
                    .unwrap_or_else(|| stem(path)),
                xml: text.to_string(),
                file: path.to_path_buf(),
                line_offset: 0,
            }),
            "ruleDefinition" => self.rules.push(Embedded {
                class: stem(path),
                xml: text.to_string(),
                file: path.to_path_buf(),
                line_offset: 0,
            }),
            "lookupTable" => self.lookup_table(path, &doc, root, None),
            "defaultSettings" => self.default_settings(path, &doc, root),
            "Category" => self.category(path, &doc, root),
            other => {
                if explicit {
                    return Err(ImportError::NotIris(format!(
                        "{}:{}: not an IRIS production, rule or export (root element <{other}>)",
                        path.display(),
                        line(root)
                    )));
                }
                self.skipped.push((
                    at(path, line(root)),
                    format!("root element <{other}> is not IRIS content"),
                ));
            }
        }
        Ok(())
    }

    /// Keep an XData block the importer reads; `true` if it was one.
    fn take_xdata(&mut self, which: &str, embedded: Embedded) -> bool {
        match which {
            "ProductionDefinition" => self.productions.push(embedded),
            "RuleDefinition" => self.rules.push(embedded),
            _ => return false,
        }
        true
    }

    /// A class is read: a production or rule class (`used`) has its other code listed
    /// as not carried over; any other class is remembered for the items that name it.
    /// `members`: (line, kind such as `ClassMethod` or `XData`, name).
    fn class_done(
        &mut self,
        used: bool,
        name: String,
        supers: Vec<String>,
        class_at: At,
        members: Vec<(usize, String, String)>,
    ) {
        if !used {
            self.classes.insert(name, ClassInfo { supers, at: class_at });
            return;
        }
        for sup in supers.iter().filter(|s| !is_plain_super(s)) {
            self.class_code
                .push((class_at.clone(), name.clone(), format!("Extends {sup}")));
        }
        for (line, kind, member) in members {
            let is_code = if kind == "XData" {
                !is_read_xdata(&member)
            } else {
                MEMBER_KINDS.contains(&kind.as_str())
            };
            let described = format!("{kind} {member}");
            if is_code && !is_editor_only(&described) {
                let at = At {
                    line,
                    ..class_at.clone()
                };
                self.class_code.push((at, name.clone(), described));
            }
        }
    }

    fn export_class(
        &mut self,
        path: &Path,
        text: &str,
        doc: &roxmltree::Document<'_>,
        class: roxmltree::Node<'_, '_>,
    ) {
        let name = class.attribute("name").unwrap_or_default().to_string();
        let class_line = doc.text_pos_at(class.range().start).row as usize;
        let supers: Vec<String> = class
            .children()
            .find(|c| c.has_tag_name("Super"))
            .and_then(|s| s.text())
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut used = false;
        for xdata in class.children().filter(|c| c.has_tag_name("XData")) {
            let which = xdata.attribute("name").unwrap_or_default();
            let Some(data) = xdata.children().find(|c| c.has_tag_name("Data")) else {
                continue;
            };
            let (xml, line_offset) = cdata_of(text, doc, data);
            let embedded = Embedded {
                class: name.clone(),
                xml,
                file: path.to_path_buf(),
                line_offset,
            };
            used |= self.take_xdata(which, embedded);
        }
        let members = class
            .children()
            .filter(|c| c.is_element())
            .map(|member| {
                let tag = member.tag_name().name();
                let member_name = member.attribute("name").unwrap_or_default();
                let kind = if tag == "Method" && member.children().any(|c| c.has_tag_name("ClassMethod")) {
                    "ClassMethod"
                } else {
                    tag
                };
                let line = doc.text_pos_at(member.range().start).row as usize;
                (line, kind.to_string(), member_name.to_string())
            })
            .collect();
        self.class_done(used, name, supers, at(path, class_line), members);
    }

    fn export_document(&mut self, path: &Path, doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) {
        let name = node.attribute("name").unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let line = doc.text_pos_at(node.range().start).row as usize;
        let body = node.children().find(|c| c.is_element());
        match (lower.rsplit('.').next(), body) {
            (Some("lut"), Some(b)) if b.has_tag_name("lookupTable") => {
                let table = name[..name.len() - 4].to_string();
                self.lookup_table(path, doc, b, Some(table));
            }
            (Some("esd"), Some(b)) if b.has_tag_name("defaultSettings") => {
                self.default_settings(path, doc, b)
            }
            (Some("hl7"), Some(b)) if b.has_tag_name("Category") => self.category(path, doc, b),
            _ => self.skipped.push((
                at(path, line),
                format!("document {name:?} is not used by the import"),
            )),
        }
    }

    fn lookup_table(
        &mut self,
        path: &Path,
        doc: &roxmltree::Document<'_>,
        node: roxmltree::Node<'_, '_>,
        name: Option<String>,
    ) {
        let line = doc.text_pos_at(node.range().start).row as usize;
        let mut seen_any = false;
        for entry in node.children().filter(|c| c.has_tag_name("entry")) {
            let table = entry
                .attribute("table")
                .map(str::to_string)
                .or_else(|| name.clone())
                .unwrap_or_else(|| stem(path));
            let key = entry.attribute("key").unwrap_or_default().to_string();
            let value = entry.text().unwrap_or_default().to_string();
            self.lookups.entry(table.clone()).or_default().insert(key, value);
            self.lookup_origins.entry(table).or_insert_with(|| at(path, line));
            seen_any = true;
        }
        if !seen_any {
            let table = name.unwrap_or_else(|| stem(path));
            self.lookups.entry(table.clone()).or_default();
            self.lookup_origins.entry(table).or_insert_with(|| at(path, line));
        }
    }

    fn default_settings(
        &mut self,
        path: &Path,
        doc: &roxmltree::Document<'_>,
        node: roxmltree::Node<'_, '_>,
    ) {
        for item in node.children().filter(|c| c.has_tag_name("item")) {
            let attr = |n: &str| {
                item.attribute(n).map(str::to_string).or_else(|| {
                    // the same fields may be written as elements
                    item.children()
                        .find(|c| c.is_element() && c.tag_name().name().eq_ignore_ascii_case(n))
                        .and_then(|c| c.text().map(str::to_string))
                })
            };
            let line = doc.text_pos_at(item.range().start).row as usize;
            self.defaults.push(DefaultSetting {
                production: attr("production").unwrap_or_else(|| "*".into()),
                item: attr("item").unwrap_or_else(|| "*".into()),
                class: attr("class").unwrap_or_else(|| "*".into()),
                setting: attr("setting").unwrap_or_default(),
                value: attr("value").unwrap_or_default().trim().to_string(),
                at: at(path, line),
            });
        }
    }

    fn category(&mut self, path: &Path, doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) {
        let line = doc.text_pos_at(node.range().start).row as usize;
        let name = node.attribute("name").unwrap_or_default().to_string();
        let base = node.attribute("base").unwrap_or_default().to_string();
        self.categories.insert(name, (base, at(path, line)));
    }

    fn udl_file(&mut self, path: &Path, text: &str) -> Result<(), ImportError> {
        let lines: Vec<&str> = text.lines().collect();
        let Some((class_idx, header)) = lines.iter().enumerate().find(|(_, l)| l.starts_with("Class "))
        else {
            return Ok(());
        };
        let (name, supers) = class_header(header);
        let mut used = false;
        let mut i = class_idx + 1;
        while i < lines.len() {
            let line = lines[i];
            let Some(rest) = line.strip_prefix("XData ") else {
                i += 1;
                continue;
            };
            let which = rest
                .split(|c: char| c.is_whitespace() || c == '[' || c == '{')
                .next()
                .unwrap_or_default();
            // the block opens with the first '{' after the XData line
            let mut j = i;
            let mut open = None;
            while j < lines.len() {
                let search_from = if j == i { "XData ".len() + which.len() } else { 0 };
                let l = lines[j];
                // skip a keyword list [ ... ] which holds no braces
                if let Some(pos) = l.get(search_from..).and_then(|s| s.find('{')) {
                    open = Some((j, search_from + pos));
                    break;
                }
                j += 1;
            }
            let Some((open_line, open_col)) = open else {
                break;
            };
            let after = &lines[open_line][open_col + 1..];
            let mut content: Vec<&str> = Vec::new();
            let line_offset = if after.trim().is_empty() {
                open_line + 1
            } else {
                content.push(after);
                open_line
            };
            let mut k = open_line + 1;
            while k < lines.len() && lines[k].trim_end() != "}" {
                content.push(lines[k]);
                k += 1;
            }
            let embedded = Embedded {
                class: name.clone(),
                xml: content.join("\n"),
                file: path.to_path_buf(),
                line_offset,
            };
            used |= self.take_xdata(which, embedded);
            i = k + 1;
        }
        let members = lines
            .iter()
            .enumerate()
            .skip(class_idx + 1)
            // members start a line; their bodies are indented
            .filter(|(_, line)| !line.starts_with(char::is_whitespace))
            .filter_map(|(n, line)| {
                let keyword = line.split_whitespace().next()?;
                let member_name: String = line[keyword.len()..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '%' || *c == '_' || *c == '.')
                    .collect();
                Some((n + 1, keyword.to_string(), member_name))
            })
            .collect();
        self.class_done(used, name, supers, at(path, class_idx + 1), members);
        Ok(())
    }
}

/// `Class A.B Extends (C, D) [ ... ]` → ("A.B", ["C", "D"]).
fn class_header(line: &str) -> (String, Vec<String>) {
    let rest = line.trim_start_matches("Class ").trim();
    let name: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    let after = rest[name.len()..].trim_start();
    let supers = match after.strip_prefix("Extends") {
        Some(s) => {
            let s = s.trim_start();
            let list = if let Some(inner) = s.strip_prefix('(') {
                inner.split(')').next().unwrap_or_default().to_string()
            } else {
                s.chars()
                    .take_while(|c| !c.is_whitespace() && *c != '[')
                    .collect()
            };
            list.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }
        None => Vec::new(),
    };
    (name, supers)
}

/// The text of `<Data>`: the CDATA content and the line before it starts.
fn cdata_of(text: &str, doc: &roxmltree::Document<'_>, data: roxmltree::Node<'_, '_>) -> (String, usize) {
    let range = data.range();
    let slice = &text[range.start..range.end.min(text.len())];
    // the XML parser joins the CDATA sections (IRIS writes a "]]>" inside one as
    // "]]]]><![CDATA[>"), so the text comes from it; the line from the first section
    let content: String = data.children().filter_map(|c| c.text()).collect();
    if let Some(pos) = slice.find("<![CDATA[") {
        let start = range.start + pos + "<![CDATA[".len();
        return (content, line_at(text, start) - 1);
    }
    let line = doc.text_pos_at(range.start).row as usize;
    (content, line.saturating_sub(1))
}

fn at(path: &Path, line: usize) -> At {
    At {
        file: path.to_path_buf(),
        line,
    }
}

/// `dir/Demo.Rules.Router.xml` → `Demo.Rules.Router`.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in [".xml", ".XML", ".rul", ".cls", ".lut", ".LUT"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s.to_string();
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_headers() {
        assert_eq!(
            class_header("Class Demo.Production Extends Ens.Production"),
            ("Demo.Production".into(), vec!["Ens.Production".into()])
        );
        assert_eq!(
            class_header("Class A.B Extends (Ens.BusinessProcess, X.Y) [ ClassType = persistent ]"),
            ("A.B".into(), vec!["Ens.BusinessProcess".into(), "X.Y".into()])
        );
        assert_eq!(class_header("Class A.B"), ("A.B".into(), vec![]));
    }

    #[test]
    fn udl_xdata_keeps_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Demo.Production.cls");
        let text = "/// doc\nClass Demo.Production Extends Ens.Production\n{\n\nParameter X = 1;\n\nXData ProductionDefinition\n{\n<Production Name=\"Demo.Production\">\n  <Item Name=\"a\" ClassName=\"EnsLib.HL7.Service.TCPService\"/>\n</Production>\n}\n\n}\n";
        std::fs::write(&file, text).unwrap();
        let mut f = Found::default();
        f.read(&file, true).unwrap();
        assert_eq!(f.productions.len(), 1);
        let p = &f.productions[0];
        assert_eq!(p.class, "Demo.Production");
        // <Production is on file line 9, XML line 1
        assert_eq!(p.line_offset, 8);
        assert!(p.xml.starts_with("<Production"));
    }

    #[test]
    fn class_code_of_production_and_rule_classes_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let udl = dir.path().join("Demo.Production.cls");
        let text = "Class Demo.Production Extends (Ens.Production, Demo.Base)\n{\n\nParameter SETTINGS = \"X\";\n\nClassMethod OnStart(pTime As %String) As %Status\n{\n    Parameter inside a body is not a member\n    quit $$$OK\n}\n\nXData ProductionDefinition\n{\n<Production Name=\"Demo.Production\"/>\n}\n\nXData Notes\n{\n<x/>\n}\n\n}\n";
        std::fs::write(&udl, text).unwrap();
        let export = dir.path().join("export.xml");
        let text = "<Export generator=\"IRIS\">\n<Class name=\"Demo.Rule\">\n<Super>Ens.Rule.Definition</Super>\n<Method name=\"Helper\">\n<ClassMethod>1</ClassMethod>\n</Method>\n<Parameter name=\"RuleAssistClass\"/>\n<Parameter name=\"Other\"/>\n<XData name=\"RuleDefinition\">\n<Data><![CDATA[<ruleDefinition/>]]></Data>\n</XData>\n</Class>\n<Class name=\"Demo.Other\">\n<Method name=\"NotOurs\"/>\n</Class>\n</Export>\n";
        std::fs::write(&export, text).unwrap();
        let mut f = Found::default();
        f.read(&udl, true).unwrap();
        f.read(&export, true).unwrap();
        let listed: Vec<(usize, &str, &str)> = f
            .class_code
            .iter()
            .map(|(at, class, member)| (at.line, class.as_str(), member.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (1, "Demo.Production", "Extends Demo.Base"),
                (4, "Demo.Production", "Parameter SETTINGS"),
                (6, "Demo.Production", "ClassMethod OnStart"),
                (17, "Demo.Production", "XData Notes"),
                (4, "Demo.Rule", "ClassMethod Helper"),
                (8, "Demo.Rule", "Parameter Other"),
            ]
        );
    }

    #[test]
    fn export_cdata_keeps_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.xml");
        let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Export generator=\"IRIS\" version=\"26\">\n<Class name=\"Demo.Rule\">\n<Super>Ens.Rule.Definition</Super>\n<XData name=\"RuleDefinition\">\n<XMLNamespace>http://www.intersystems.com/rule</XMLNamespace>\n<Data><![CDATA[\n<ruleDefinition alias=\"\">\n</ruleDefinition>\n]]></Data>\n</XData>\n</Class>\n<Document name=\"Codes.LUT\">\n<lookupTable>\n<entry table=\"Codes\" key=\"A\">Alpha</entry>\n</lookupTable>\n</Document>\n<Document name=\"Ens.Config.DefaultSettings.esd\">\n<defaultSettings>\n<item production=\"*\" item=\"Out\" class=\"*\" setting=\"FilePath\" value=\" /data/out \"><Deployable>true</Deployable></item>\n</defaultSettings>\n</Document>\n<Document name=\"MyHL7.HL7\">\n<Category name=\"MyHL7\" base=\"2.5\"/>\n</Document>\n</Export>\n";
        std::fs::write(&file, text).unwrap();
        let mut f = Found::default();
        f.read(&file, true).unwrap();
        assert_eq!(f.rules.len(), 1);
        let r = &f.rules[0];
        // CDATA opens on line 7; <ruleDefinition is XML line 2 = file line 8
        assert_eq!(r.line_offset, 6);
        assert_eq!(r.xml.lines().nth(1).unwrap(), "<ruleDefinition alias=\"\">");
        assert_eq!(f.lookups["Codes"]["A"], "Alpha");
        assert_eq!(f.defaults[0].item, "Out");
        assert_eq!(f.defaults[0].value, "/data/out");
        assert_eq!(f.defaults[0].at.line, 20);
        assert_eq!(f.categories["MyHL7"].0, "2.5");
    }

    #[test]
    fn split_cdata_sections_are_joined() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.xml");
        let text = "<Export generator=\"IRIS\">\n<Class name=\"P\">\n<XData name=\"ProductionDefinition\">\n<Data><![CDATA[\n<Production Name=\"P\"><Description>a]]]]><![CDATA[>b</Description></Production>\n]]></Data>\n</XData>\n</Class>\n</Export>\n";
        std::fs::write(&file, text).unwrap();
        let mut f = Found::default();
        f.read(&file, true).unwrap();
        assert!(
            f.productions[0].xml.contains("<Description>a]]>b</Description>"),
            "{}",
            f.productions[0].xml
        );
        assert_eq!(f.productions[0].line_offset, 3);
    }

    #[test]
    fn other_files_are_refused_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.xml");
        std::fs::write(&file, "<html><body/></html>").unwrap();
        let e = Found::default().read(&file, true).unwrap_err().to_string();
        assert!(
            e.contains("not an IRIS production, rule or export") && !e.contains('\n'),
            "{e}"
        );
        let file = dir.path().join("readme.cls");
        std::fs::write(&file, "hello").unwrap();
        assert!(Found::default().read(&file, true).is_err());
    }
}
