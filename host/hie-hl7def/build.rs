//! Turns data/hl7v2.txt (converted once from hl7-dictionary 1.0.1 by
//! tools/convert.js) into Rust statics in $OUT_DIR/tables.rs. No node and no
//! network here: the data file is committed. Identical field lists, component
//! lists and message trees are emitted once and shared between versions.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

#[allow(dead_code)]
mod naming {
    include!("src/naming.rs");
}

const DATA: &str = "data/hl7v2.txt";

#[derive(Clone, PartialEq)]
struct Component {
    datatype: String,
    alias: String,
    desc: String,
}

#[derive(Clone, PartialEq)]
struct Field {
    datatype: String,
    usage: char,
    max_repeats: u32,
    alias: String,
    desc: String,
}

#[derive(Clone)]
enum Element {
    Segment {
        name: String,
        min: u8,
        max: u8,
    },
    Group {
        name: String,
        min: u8,
        max: u8,
        children: Vec<Element>,
    },
    Choice {
        alternatives: Vec<String>,
    },
}

#[derive(Default)]
struct Version {
    name: String,
    datatypes: BTreeMap<String, Vec<Component>>,
    segments: BTreeMap<String, Vec<Field>>,
    messages: BTreeMap<String, Vec<Element>>,
    /// TYPE_EVENT names that use another structure in this version.
    aliases: BTreeMap<String, String>,
}

struct Data {
    table_0354: Vec<(String, Vec<String>)>,
    versions: Vec<Version>,
}

fn fail(line_no: usize, line: &str, what: &str) -> ! {
    panic!("{DATA}:{line_no}: {what} in line {line:?}; regenerate the file with tools/convert.js")
}

/// What a D or S record is being filled with, plus the previous definition
/// that "=N" lines copy from.
enum Open {
    None,
    DataType(String, Vec<Component>, Vec<Component>),
    Segment(String, Vec<Field>, Vec<Field>),
}

fn parse(text: &str) -> Data {
    let mut data = Data {
        table_0354: Vec::new(),
        versions: Vec::new(),
    };
    // The last definition seen for each data type / segment / message, in any
    // earlier version: what "=" and "=N" refer to.
    let mut last_dt: HashMap<String, Vec<Component>> = HashMap::new();
    let mut last_seg: HashMap<String, Vec<Field>> = HashMap::new();
    let mut last_msg: HashMap<String, Vec<Element>> = HashMap::new();
    let mut open = Open::None;

    let close = |open: &mut Open,
                 data: &mut Data,
                 last_dt: &mut HashMap<String, Vec<Component>>,
                 last_seg: &mut HashMap<String, Vec<Field>>| {
        match std::mem::replace(open, Open::None) {
            Open::None => {}
            Open::DataType(name, items, _) => {
                last_dt.insert(name.clone(), items.clone());
                data.versions.last_mut().unwrap().datatypes.insert(name, items);
            }
            Open::Segment(name, items, _) => {
                last_seg.insert(name.clone(), items.clone());
                data.versions.last_mut().unwrap().segments.insert(name, items);
            }
        }
    };

    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(n) = rest.strip_prefix('=') {
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| fail(line_no, line, "bad copy count"));
                match &mut open {
                    Open::DataType(_, items, prev) => {
                        let at = items.len();
                        let Some(src) = prev.get(at..at + n) else {
                            fail(line_no, line, "copy past the previous definition")
                        };
                        items.extend_from_slice(src);
                    }
                    Open::Segment(_, items, prev) => {
                        let at = items.len();
                        let Some(src) = prev.get(at..at + n) else {
                            fail(line_no, line, "copy past the previous definition")
                        };
                        items.extend_from_slice(src);
                    }
                    Open::None => fail(line_no, line, "copy line outside a D or S record"),
                }
            } else if let Some(c) = rest.strip_prefix("c ") {
                let Open::DataType(_, items, _) = &mut open else {
                    fail(line_no, line, "component outside a D record")
                };
                let mut parts = c.splitn(3, ' ');
                let dt = parts.next().unwrap_or_default();
                let alias = parts
                    .next()
                    .unwrap_or_else(|| fail(line_no, line, "missing alias (- for none)"));
                let desc = parts.next().unwrap_or_default();
                items.push(Component {
                    datatype: dt.to_string(),
                    alias: alias_of(alias),
                    desc: desc.to_string(),
                });
            } else if let Some(f) = rest.strip_prefix("f ") {
                let Open::Segment(_, items, _) = &mut open else {
                    fail(line_no, line, "field outside an S record")
                };
                let mut parts = f.splitn(5, ' ');
                let dt = parts.next().unwrap_or_default();
                let usage = parts
                    .next()
                    .and_then(|u| u.chars().next())
                    .unwrap_or_else(|| fail(line_no, line, "missing optionality"));
                let rep = parts
                    .next()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_else(|| fail(line_no, line, "bad repetition count"));
                let alias = parts
                    .next()
                    .unwrap_or_else(|| fail(line_no, line, "missing alias (- for none)"));
                let desc = parts.next().unwrap_or_default();
                if !"ROCB".contains(usage) {
                    fail(line_no, line, "optionality is not R, O, C or B");
                }
                items.push(Field {
                    datatype: dt.to_string(),
                    usage,
                    max_repeats: rep,
                    alias: alias_of(alias),
                    desc: desc.to_string(),
                });
            } else {
                fail(line_no, line, "unknown record");
            }
            continue;
        }
        close(&mut open, &mut data, &mut last_dt, &mut last_seg);
        let (kind, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| fail(line_no, line, "record without a name"));
        match kind {
            "T" => {
                let mut words = rest.split(' ');
                let structure = words.next().unwrap().to_string();
                data.table_0354
                    .push((structure, words.map(str::to_string).collect()));
            }
            "A" => {
                let version = data
                    .versions
                    .last_mut()
                    .unwrap_or_else(|| fail(line_no, line, "alias before the first V record"));
                let (name, target) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| fail(line_no, line, "alias without a structure"));
                version.aliases.insert(name.to_string(), target.to_string());
            }
            "V" => data.versions.push(Version {
                name: rest.to_string(),
                ..Default::default()
            }),
            "D" | "S" => {
                if data.versions.is_empty() {
                    fail(line_no, line, "definition before the first V record");
                }
                let (name, same) = match rest.strip_suffix(" =") {
                    Some(n) => (n, true),
                    None => (rest, false),
                };
                let name = name.to_string();
                if kind == "D" {
                    if same && !last_dt.contains_key(&name) {
                        fail(line_no, line, "\"=\" without an earlier definition");
                    }
                    let prev = last_dt.get(&name).cloned().unwrap_or_default();
                    open = if same {
                        Open::DataType(name, prev.clone(), prev)
                    } else {
                        Open::DataType(name, Vec::new(), prev)
                    };
                } else {
                    if same && !last_seg.contains_key(&name) {
                        fail(line_no, line, "\"=\" without an earlier definition");
                    }
                    let prev = last_seg.get(&name).cloned().unwrap_or_default();
                    open = if same {
                        Open::Segment(name, prev.clone(), prev)
                    } else {
                        Open::Segment(name, Vec::new(), prev)
                    };
                }
            }
            "M" => {
                let version = data
                    .versions
                    .last_mut()
                    .unwrap_or_else(|| fail(line_no, line, "message before the first V record"));
                let (name, body) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| fail(line_no, line, "message without elements"));
                let elements = if body == "=" {
                    last_msg
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| fail(line_no, line, "\"=\" without an earlier definition"))
                } else {
                    parse_elements(body).unwrap_or_else(|e| fail(line_no, line, &e))
                };
                last_msg.insert(name.to_string(), elements.clone());
                version.messages.insert(name.to_string(), elements);
            }
            _ => fail(line_no, line, "unknown record"),
        }
    }
    close(&mut open, &mut data, &mut last_dt, &mut last_seg);
    data
}

fn alias_of(word: &str) -> String {
    if word == "-" {
        String::new()
    } else {
        word.to_string()
    }
}

fn cardinality(card: &str) -> Result<(u8, u8), String> {
    // (min, max) with max 0 = unbounded, as in the source package.
    match card {
        "" => Ok((1, 1)),
        "?" => Ok((0, 1)),
        "*" => Ok((0, 0)),
        "+" => Ok((1, 0)),
        other => Err(format!("bad cardinality {other:?}")),
    }
}

fn split_card(token: &str) -> (&str, &str) {
    match token.char_indices().last() {
        Some((i, c)) if i > 0 && "?*+".contains(c) => (&token[..i], &token[i..]),
        _ => (token, ""),
    }
}

fn parse_elements(body: &str) -> Result<Vec<Element>, String> {
    let mut stack: Vec<(String, u8, u8, Vec<Element>)> = vec![(String::new(), 1, 1, Vec::new())];
    for token in body.split(' ') {
        if token == ")" {
            let (name, min, max, children) = stack.pop().ok_or("unbalanced )")?;
            let parent = stack.last_mut().ok_or("unbalanced )")?;
            if children.is_empty() {
                return Err(format!("empty group {name}"));
            }
            parent.3.push(Element::Group {
                name,
                min,
                max,
                children,
            });
        } else if let Some(group) = token.strip_suffix('(') {
            let (name, card) = split_card(group);
            let (min, max) = cardinality(card)?;
            stack.push((name.to_string(), min, max, Vec::new()));
        } else if let Some(choice) = token.strip_prefix('<') {
            let (inner, card) = choice.split_once('>').ok_or("unterminated choice")?;
            // The cardinality is checked but not kept: see render_elements.
            cardinality(card)?;
            let alternatives: Vec<String> = inner.split('|').map(str::to_string).collect();
            stack.last_mut().unwrap().3.push(Element::Choice { alternatives });
        } else {
            let (name, card) = split_card(token);
            let (min, max) = cardinality(card)?;
            if name != "*"
                && (name.len() != 3 || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            {
                return Err(format!("bad segment name {name:?}"));
            }
            stack.last_mut().unwrap().3.push(Element::Segment {
                name: name.to_string(),
                min,
                max,
            });
        }
    }
    if stack.len() != 1 {
        return Err("unbalanced (".to_string());
    }
    Ok(collapse_single_child_groups(stack.pop().unwrap().3))
}

/// IRIS stores a message structure as a bracket string without group names
/// (`MSH~[~{~NTE~}~]~[~[~PID~...~]~]`), so brackets around one element make no
/// group: `[~{~NTE~}~]` is an optional repeating NTE, and `[~[~PID~...~]~]` is
/// one optional PID group. The source package does name such one-element
/// groups (2.4 ORL_O22 RESPONSE, which holds only PATIENT); they are folded
/// into their element, which becomes optional or repeating if either was.
fn collapse_single_child_groups(elements: Vec<Element>) -> Vec<Element> {
    elements
        .into_iter()
        .map(|e| match e {
            Element::Group {
                name,
                min,
                max,
                children,
            } => {
                let mut children = collapse_single_child_groups(children);
                if children.len() != 1 {
                    return Element::Group {
                        name,
                        min,
                        max,
                        children,
                    };
                }
                let mut only = children.pop().unwrap();
                match &mut only {
                    Element::Segment { min: m, max: x, .. } | Element::Group { min: m, max: x, .. } => {
                        *m = (*m).min(min);
                        if max == 0 {
                            *x = 0;
                        }
                        only
                    }
                    // A choice keeps no cardinality (see render_elements); keep
                    // the group around it so optional/repeating are not lost.
                    Element::Choice { .. } => Element::Group {
                        name,
                        min,
                        max,
                        children: vec![only],
                    },
                }
            }
            other => other,
        })
        .collect()
}

/// Emits each distinct array once and hands out its name.
struct Pool {
    out: String,
    seen: HashMap<String, String>,
    prefix: &'static str,
    ty: &'static str,
}

impl Pool {
    fn new(prefix: &'static str, ty: &'static str) -> Self {
        Pool {
            out: String::new(),
            seen: HashMap::new(),
            prefix,
            ty,
        }
    }

    fn intern(&mut self, items: &[String]) -> String {
        let body = items.join(",\n    ");
        if let Some(name) = self.seen.get(&body) {
            return name.clone();
        }
        let name = format!("{}{}", self.prefix, self.seen.len());
        writeln!(
            self.out,
            "static {name}: [{}; {}] = [\n    {body}\n];",
            self.ty,
            items.len()
        )
        .unwrap();
        self.seen.insert(body, name.clone());
        name
    }
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// The element's own IRIS name before sibling numbering: the segment id, the
/// first element's name + `grp`, or the first alternative + `union`.
fn own_iris_name(e: &Element) -> String {
    match e {
        Element::Segment { name, .. } => name.clone(),
        Element::Group { children, .. } => naming::group_iris_name(&sibling_iris_names(children)[0]),
        Element::Choice { alternatives } => naming::choice_iris_name(&alternatives[0]),
    }
}

fn sibling_iris_names(elements: &[Element]) -> Vec<String> {
    let own: Vec<String> = elements.iter().map(own_iris_name).collect();
    naming::sibling_names(&own)
}

/// Renders message elements as a constant expression.
fn render_elements(elements: &[Element], pool: &mut Pool) -> String {
    let names = sibling_iris_names(elements);
    let mut items = Vec::new();
    for (e, iris) in elements.iter().zip(&names) {
        let item = match e {
            Element::Segment { name, min, max } => format!(
                "Element::Segment(SegmentElement {{ name: {}, iris_name: {}, optional: {}, repeating: {} }})",
                lit(name),
                lit(iris),
                *min == 0,
                *max != 1
            ),
            Element::Group {
                name,
                min,
                max,
                children,
            } => {
                let body = render_elements(children, pool);
                format!(
                    "Element::Group(GroupElement {{ hl7_name: {}, iris_name: {}, optional: {}, repeating: {}, elements: &{} }})",
                    lit(name),
                    lit(iris),
                    *min == 0,
                    *max != 1,
                    body
                )
            }
            Element::Choice { alternatives } => {
                // The package marks every choice 0..unbounded, which is an
                // artefact of its converter: HL7 writes <A|B|C> as exactly one
                // of the alternatives, and IRIS paths use no index on it
                // (ORCgrp(1).OBRuniongrp.OBRunion.OBR in 2.3 ORM_O01).
                let alts: Vec<String> = alternatives.iter().map(|a| lit(a)).collect();
                format!(
                    "Element::Choice(ChoiceElement {{ iris_name: {}, optional: false, repeating: false, alternatives: &[{}] }})",
                    lit(iris),
                    alts.join(", ")
                )
            }
        };
        items.push(item);
    }
    pool.intern(&items)
}

fn generate(data: &Data) -> String {
    let mut components = Pool::new("C", "ComponentDef");
    let mut fields = Pool::new("F", "FieldDef");
    let mut elements = Pool::new("E", "Element");
    let mut versions = String::new();
    let mut version_list = Vec::new();

    for (vi, v) in data.versions.iter().enumerate() {
        let mut dts = Vec::new();
        for (name, comps) in &v.datatypes {
            let items: Vec<String> = comps
                .iter()
                .map(|c| {
                    format!(
                        "ComponentDef {{ description: {}, iris_name: {}, iris_alias: {}, datatype: {} }}",
                        lit(&c.desc),
                        lit(&naming::iris_name(&c.desc)),
                        lit(&c.alias),
                        lit(&c.datatype)
                    )
                })
                .collect();
            let arr = components.intern(&items);
            dts.push(format!(
                "DataTypeDef {{ name: {}, components: &{arr} }}",
                lit(name)
            ));
        }
        let mut segs = Vec::new();
        for (name, fs) in &v.segments {
            let items: Vec<String> = fs
                .iter()
                .map(|f| {
                    let usage = match f.usage {
                        'R' => "Required",
                        'O' => "Optional",
                        'C' => "Conditional",
                        _ => "Backward",
                    };
                    format!(
                        "FieldDef {{ description: {}, iris_name: {}, iris_alias: {}, datatype: {}, usage: Usage::{usage}, max_repeats: {} }}",
                        lit(&f.desc),
                        lit(&naming::iris_name(&f.desc)),
                        lit(&f.alias),
                        lit(&f.datatype),
                        f.max_repeats
                    )
                })
                .collect();
            let arr = fields.intern(&items);
            segs.push(format!("SegmentDef {{ name: {}, fields: &{arr} }}", lit(name)));
        }
        let mut msgs = Vec::new();
        for (name, els) in &v.messages {
            let arr = render_elements(els, &mut elements);
            msgs.push(format!("MessageDef {{ name: {}, elements: &{arr} }}", lit(name)));
        }
        writeln!(
            versions,
            "static V{vi}_DATATYPES: [DataTypeDef; {}] = [\n    {}\n];\nstatic V{vi}_SEGMENTS: [SegmentDef; {}] = [\n    {}\n];\nstatic V{vi}_MESSAGES: [MessageDef; {}] = [\n    {}\n];",
            dts.len(),
            dts.join(",\n    "),
            segs.len(),
            segs.join(",\n    "),
            msgs.len(),
            msgs.join(",\n    ")
        )
        .unwrap();
        version_list.push(format!(
            "VersionDef {{ name: {}, datatypes: &V{vi}_DATATYPES, segments: &V{vi}_SEGMENTS, messages: &V{vi}_MESSAGES }}",
            lit(&v.name)
        ));
    }

    let mut out = String::from("// Generated by build.rs from data/hl7v2.txt. Do not edit.\n\n");
    out.push_str(&components.out);
    out.push_str(&fields.out);
    out.push_str(&elements.out);
    out.push_str(&versions);
    writeln!(
        out,
        "pub(crate) static VERSIONS: [VersionDef; {}] = [\n    {}\n];",
        version_list.len(),
        version_list.join(",\n    ")
    )
    .unwrap();
    // Names only, for normalize_version and structure_for: a caller that needs
    // nothing else (the hl7-router plugin) does not pull the definitions in.
    let names: Vec<String> = data.versions.iter().map(|v| lit(&v.name)).collect();
    writeln!(
        out,
        "pub(crate) static VERSION_NAMES: [&str; {}] = [{}];",
        names.len(),
        names.join(", ")
    )
    .unwrap();
    let msg_names: Vec<String> = data
        .versions
        .iter()
        .map(|v| {
            format!(
                "&[{}]",
                v.messages.keys().map(|k| lit(k)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    writeln!(
        out,
        "pub(crate) static MESSAGE_NAMES: [&[&str]; {}] = [\n    {}\n];",
        msg_names.len(),
        msg_names.join(",\n    ")
    )
    .unwrap();
    let aliases: Vec<String> = data
        .versions
        .iter()
        .map(|v| {
            let mut items = Vec::new();
            for (name, target) in &v.aliases {
                if !v.messages.contains_key(target) {
                    panic!(
                        "{DATA}: {} alias {name} -> {target}: no such structure in that version",
                        v.name
                    );
                }
                items.push(format!("({}, {})", lit(name), lit(target)));
            }
            format!("&[{}]", items.join(", "))
        })
        .collect();
    writeln!(
        out,
        "pub(crate) static ALIASES: [&[(&str, &str)]; {}] = [\n    {}\n];",
        aliases.len(),
        aliases.join(",\n    ")
    )
    .unwrap();
    let rows: Vec<String> = data
        .table_0354
        .iter()
        .map(|(s, evs)| {
            let evs: Vec<String> = evs.iter().map(|e| lit(e)).collect();
            format!("({}, &[{}])", lit(s), evs.join(", "))
        })
        .collect();
    writeln!(
        out,
        "pub(crate) static TABLE_0354: [(&str, &[&str]); {}] = [\n    {}\n];",
        rows.len(),
        rows.join(",\n    ")
    )
    .unwrap();
    out
}

fn main() {
    println!("cargo::rerun-if-changed={DATA}");
    println!("cargo::rerun-if-changed=src/naming.rs");
    let text = std::fs::read_to_string(DATA).unwrap_or_else(|e| panic!("cannot read {DATA}: {e}"));
    let data = parse(&text);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo")).join("tables.rs");
    std::fs::write(&out, generate(&data)).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
