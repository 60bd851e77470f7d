//! Running a [`RuleSet`] against one HL7 v2 message, with IRIS semantics: the
//! rules in order; in a rule the first true `<when>` fires (else `<otherwise>`);
//! every matching rule runs, until a `<return>`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use hie_hl7::{Charset, Message, OwnedMessage, Segment};

use crate::functions;
use crate::model::{
    Action, BinOp, Constraints, Expr, FieldCandidate, FieldSel, Index, Locator, Node, Path, Prop, Rule,
    RuleSet, When,
};
use crate::value::{boolean, canonical, number, truthy};

/// What the rules decided for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Targets to send to, in the order the `<send>` actions ran (each target once).
    pub sends: Vec<Sent>,
    /// The rule whose `<delete>` ran, if any.
    pub deleted_by: Option<String>,
    /// A `<return>` ended the evaluation.
    pub returned: bool,
    /// Rules whose `<when>` or `<otherwise>` ran, in order.
    pub fired: Vec<String>,
    /// `<trace>` values.
    pub traces: Vec<String>,
    /// Problems met while evaluating (a bad pattern read from the message, …).
    pub errors: Vec<String>,
    /// The `<ruleSet>` that ran (its name), or `None` when none is in effect.
    pub rule_set: Option<String>,
}

/// A target chosen by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The target item.
    pub target: String,
    /// The rule that sent it.
    pub rule: String,
}

impl Outcome {
    /// The targets, in order.
    pub fn targets(&self) -> Vec<&str> {
        self.sends.iter().map(|s| s.target.as_str()).collect()
    }
}

/// A message as the rules see it: its segments, and what IRIS derives from MSH.
pub struct Document<'a> {
    segments: Vec<Segment<'a>>,
    charset: Option<Charset>,
    /// The schema category: MSH-12.1 as written, or what [`Document::with_category`] set.
    pub type_version: String,
    /// The category's HL7 version (MSH-12 normalized, or a custom category's base).
    pub version: Option<&'static str>,
    /// MSH-9.1 and MSH-9.2.
    msg_type: (String, String),
    /// The category was set by the receiving service, not read from MSH-12.
    category_set: bool,
    /// `TYPE_EVENT` from MSH-9 (IRIS `Name`, the `docName`).
    pub name: String,
    /// The message structure for MSH-9 in that version (IRIS DocType name).
    pub structure: Option<&'static str>,
    trees: RefCell<BTreeMap<String, Rc<Instance>>>,
}

impl<'a> Document<'a> {
    /// Reads a parsed message.
    pub fn new(msg: &Message<'a>) -> Document<'a> {
        Document::from_segments(msg.segments().collect(), msg.charset())
    }

    /// Reads an owned message (what plugins get from the SDK).
    pub fn from_owned(msg: &'a OwnedMessage) -> Document<'a> {
        Document::from_segments(msg.segments().collect(), msg.charset())
    }

    fn from_segments(segments: Vec<Segment<'a>>, charset: Option<Charset>) -> Document<'a> {
        let mut doc = Document {
            segments,
            charset,
            type_version: String::new(),
            version: None,
            msg_type: (String::new(), String::new()),
            category_set: false,
            name: String::new(),
            structure: None,
            trees: RefCell::new(BTreeMap::new()),
        };
        let msh = |field, component| {
            let sel = FieldSel {
                field,
                repetition: Some(Index::First),
                component: Some(component),
                subcomponent: None,
            };
            let mut out = Vec::new();
            if let Some(seg) = doc.segments.first().filter(|s| s.name() == "MSH") {
                doc.field_values(seg, &sel, &mut out);
            }
            out.into_iter().next().unwrap_or_default().trim().to_owned()
        };
        let (msg_type, event, type_version) = (msh(9, 1), msh(9, 2), msh(12, 1));
        doc.version = hie_hl7def::normalize_version(&type_version);
        doc.structure = doc
            .version
            .and_then(|v| hie_hl7def::structure_for(v, &msg_type, &event));
        doc.name = if event.is_empty() {
            msg_type.clone()
        } else {
            format!("{msg_type}_{event}")
        };
        doc.type_version = type_version;
        doc.msg_type = (msg_type, event);
        doc
    }

    /// The message as IRIS sees it when the receiving service's
    /// `MessageSchemaCategory` is `category` (HL7 version `version`, see
    /// [`RuleSet::category_version`]): constraints, `DocType` and paths use it
    /// instead of MSH-12. An unknown version keeps MSH-12's for paths.
    pub fn with_category(mut self, category: &str, version: Option<&'static str>) -> Document<'a> {
        self.type_version = category.to_owned();
        self.category_set = true;
        if let Some(v) = version {
            self.version = Some(v);
            self.structure = hie_hl7def::structure_for(v, &self.msg_type.0, &self.msg_type.1);
            self.trees.borrow_mut().clear();
        }
        self
    }

    /// `CATEGORY:STRUCTURE` (`2.5:ADT_A01`), or empty when the structure is unknown.
    pub fn doc_type(&self) -> String {
        match self.structure {
            Some(s) => format!("{}:{s}", self.type_version),
            None => String::new(),
        }
    }

    fn text(&self, raw: &[u8]) -> String {
        match self.charset {
            Some(c) => c.decode(raw).into_owned(),
            None => String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// Values of `sel` in `seg` (more than one for `()`), raw text as IRIS
    /// returns it (HL7 escapes kept, character set decoded).
    fn field_values(&self, seg: &Segment<'a>, sel: &FieldSel, out: &mut Vec<String>) {
        let Some(field) = seg.field(sel.field) else {
            if sel.repetition == Some(Index::Count) {
                out.push("0".into());
            } else {
                out.push(String::new());
            }
            return;
        };
        let reps: Vec<_> = match (sel.repetition, sel.component) {
            (None, None) => {
                out.push(self.text(field.raw()));
                return;
            }
            (Some(Index::Count), _) => {
                let n = if field.is_empty() {
                    0
                } else {
                    field.repetitions().count()
                };
                out.push(n.to_string());
                return;
            }
            (None | Some(Index::First), _) => field.repetition(1).into_iter().collect(),
            (Some(Index::Nth(n)), _) => field.repetition(n).into_iter().collect(),
            (Some(Index::All), _) => {
                if field.is_empty() {
                    Vec::new()
                } else {
                    field.repetitions().collect()
                }
            }
        };
        if reps.is_empty() && sel.repetition != Some(Index::All) {
            out.push(String::new());
        }
        for rep in reps {
            let raw = match sel.component {
                None => rep.raw(),
                Some(c) => match rep.component(c) {
                    None => b"",
                    Some(comp) => match sel.subcomponent {
                        None => comp.raw(),
                        Some(s) => comp.subcomponent(s).unwrap_or_default(),
                    },
                },
            };
            out.push(self.text(raw));
        }
    }

    fn structure_key(&self) -> Option<String> {
        Some(format!("{}:{}", self.version?, self.structure?))
    }

    /// The message's segments grouped by the structure `key`.
    fn tree(&self, key: &str, nodes: &[Node]) -> Rc<Instance> {
        if let Some(t) = self.trees.borrow().get(key) {
            return t.clone();
        }
        let names: Vec<&str> = self.segments.iter().map(|s| s.name()).collect();
        let mut known = Vec::new();
        collect_names(nodes, &mut known);
        let mut pos = 0;
        let tree = Rc::new(group(nodes, &names, &mut pos, &known));
        self.trees.borrow_mut().insert(key.to_owned(), tree.clone());
        tree
    }
}

/// Segments grouped by a message structure: one slot per structure node.
#[derive(Debug)]
struct Instance {
    slots: Vec<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// Indexes into the message's segments (segments and choices).
    Segments(Vec<usize>),
    /// Group instances.
    Groups(Vec<Instance>),
}

fn collect_names<'n>(nodes: &'n [Node], out: &mut Vec<&'n str>) {
    for n in nodes {
        match n {
            Node::Segment { name, .. } => out.push(name),
            Node::Choice { alternatives, .. } => out.extend(alternatives.iter().map(String::as_str)),
            Node::Group { children, .. } => collect_names(children, out),
        }
    }
}

/// Whether a segment called `name` can start `node`.
fn starts(node: &Node, name: &str) -> bool {
    match node {
        Node::Segment { name: n, .. } => n == name,
        Node::Choice { alternatives, .. } => alternatives.iter().any(|a| a == name),
        Node::Group { children, .. } => {
            for c in children {
                if starts(c, name) {
                    return true;
                }
                if !c.optional() {
                    return false;
                }
            }
            false
        }
    }
}

/// Schema-driven grouping: each node takes the segments it can, in order;
/// segments the structure does not know (Z segments) are passed over.
fn group(nodes: &[Node], names: &[&str], pos: &mut usize, known: &[&str]) -> Instance {
    let mut slots = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut segs = Vec::new();
        let mut groups = Vec::new();
        loop {
            while *pos < names.len() && !known.contains(&names[*pos]) {
                *pos += 1;
            }
            let Some(&name) = names.get(*pos) else { break };
            match node {
                Node::Segment { .. } | Node::Choice { .. } => {
                    if !starts(node, name) {
                        break;
                    }
                    segs.push(*pos);
                    *pos += 1;
                }
                Node::Group { children, .. } => {
                    if !starts(node, name) {
                        break;
                    }
                    let before = *pos;
                    let inst = group(children, names, pos, known);
                    if *pos == before {
                        break;
                    }
                    groups.push(inst);
                }
            }
            if !node.repeating() {
                break;
            }
        }
        slots.push(match node {
            Node::Group { .. } => Slot::Groups(groups),
            _ => Slot::Segments(segs),
        });
    }
    Instance { slots }
}

/// Values a path reads, and whether it reads a list (`()`) or a count (`(*)`).
struct Read {
    values: Vec<String>,
    list: bool,
}

impl Read {
    fn into_value(self) -> String {
        if self.list && self.values.len() != 1 {
            self.values.iter().map(|v| format!("<{v}>")).collect()
        } else {
            self.values.into_iter().next().unwrap_or_default()
        }
    }
}

fn pick<T>(items: &[T], index: Index) -> Vec<&T> {
    match index {
        Index::First => items.first().into_iter().collect(),
        Index::Nth(n) => n.checked_sub(1).and_then(|i| items.get(i)).into_iter().collect(),
        Index::All | Index::Count => items.iter().collect(),
    }
}

/// Evaluation state for one message.
struct Run<'r, 'd, 'a> {
    rules: &'r RuleSet,
    doc: &'d Document<'a>,
    source: &'r str,
    /// The segment a `foreach` is on.
    segment: Option<usize>,
    outcome: Outcome,
}

impl Run<'_, '_, '_> {
    fn key_fits(&self, keys: &[String]) -> bool {
        keys.iter().any(|k| {
            k == "*"
                || match k.split_once(':') {
                    None => Some(k.as_str()) == self.doc.version,
                    Some((v, s)) => Some(v) == self.doc.version && Some(s) == self.doc.structure,
                }
        })
    }

    /// The segments (indexes) a path's locator finds.
    fn locate(&self, locator: &Locator) -> Result<(Vec<usize>, bool, bool), ()> {
        let doc = self.doc;
        match locator {
            Locator::Flat { segment, index } => {
                let all: Vec<usize> = (0..doc.segments.len())
                    .filter(|&i| doc.segments[i].name() == segment)
                    .collect();
                if *index == Index::Count {
                    return Ok((vec![all.len()], false, true));
                }
                Ok((
                    pick(&all, *index).into_iter().copied().collect(),
                    *index == Index::All,
                    false,
                ))
            }
            Locator::Grouped(steps) => {
                let key = doc.structure_key().ok_or(())?;
                let i = *self.rules.structures.get(&key).ok_or(())?;
                let nodes = self.rules.trees.get(i).ok_or(())?;
                let tree = doc.tree(&key, nodes);
                let mut list = false;
                let mut count = false;
                let mut level: Vec<(&Instance, &[Node])> = vec![(&tree, nodes.as_slice())];
                let mut found = Vec::new();
                for (i, step) in steps.iter().enumerate() {
                    list |= step.index == Index::All;
                    count = step.index == Index::Count;
                    let last = i + 1 == steps.len();
                    let mut next = Vec::new();
                    for (inst, nodes) in &level {
                        let Some(j) = nodes
                            .iter()
                            .position(|n| n.name().eq_ignore_ascii_case(&step.name))
                        else {
                            return Err(());
                        };
                        match (&inst.slots[j], &nodes[j]) {
                            (Slot::Groups(groups), Node::Group { children, .. }) => {
                                if count && last {
                                    found.push(groups.len());
                                    continue;
                                }
                                next.extend(
                                    pick(groups, step.index)
                                        .into_iter()
                                        .map(|g| (g, children.as_slice())),
                                );
                            }
                            (Slot::Segments(segs), _) => {
                                if count && last {
                                    found.push(segs.len());
                                } else {
                                    found.extend(pick(segs, step.index).into_iter().copied());
                                }
                            }
                            _ => return Err(()),
                        }
                    }
                    level = next;
                }
                Ok((found, list, count))
            }
        }
    }

    fn read_path(&self, path: &Path) -> Read {
        let Some(c) = path.candidates.iter().find(|c| self.key_fits(&c.keys)) else {
            return Read {
                values: Vec::new(),
                list: false,
            };
        };
        let Ok((segs, list, count)) = self.locate(&c.segments) else {
            return Read {
                values: Vec::new(),
                list: false,
            };
        };
        if count {
            // `(*)` on a segment or group: `segs` holds the counts
            let n: usize = segs.iter().sum();
            return Read {
                values: vec![n.to_string()],
                list: false,
            };
        }
        let mut values = Vec::new();
        let field_list = c.field.as_ref().is_some_and(|f| f.repetition == Some(Index::All));
        for i in &segs {
            let seg = &self.doc.segments[*i];
            match &c.field {
                Some(sel) => self.doc.field_values(seg, sel, &mut values),
                None => values.push(self.doc.text(seg.raw())),
            }
        }
        Read {
            values,
            list: list || field_list,
        }
    }

    fn segment_field(&self, candidates: &[FieldCandidate]) -> String {
        let (Some(i), Some(c)) = (self.segment, candidates.iter().find(|c| self.key_fits(&c.keys))) else {
            return String::new();
        };
        let mut out = Vec::new();
        self.doc.field_values(&self.doc.segments[i], &c.field, &mut out);
        Read {
            values: out,
            list: c.field.repetition == Some(Index::All),
        }
        .into_value()
    }

    fn prop(&self, p: Prop) -> String {
        match p {
            Prop::Source => self.source.to_owned(),
            Prop::Name => self.doc.name.clone(),
            Prop::DocType => self.doc.doc_type(),
            Prop::DocTypeName => self.doc.structure.unwrap_or_default().to_owned(),
            Prop::DocTypeCategory => {
                if self.doc.structure.is_some() {
                    self.doc.type_version.clone()
                } else {
                    String::new()
                }
            }
            Prop::TypeVersion => self.doc.type_version.clone(),
            Prop::ParentId => String::new(),
            Prop::MsgClass => "EnsLib.HL7.Message".into(),
        }
    }

    fn eval(&mut self, e: &Expr) -> String {
        match e {
            Expr::Str(s) | Expr::Num(s) => s.clone(),
            Expr::Path(p) => self.read_path(p).into_value(),
            Expr::SegmentField(c) => self.segment_field(c),
            Expr::Prop(p) => self.prop(*p),
            Expr::Not(x) => boolean(!truthy(&self.eval(x))),
            Expr::Neg(x) => canonical(-number(&self.eval(x))),
            Expr::Plus(x) => canonical(number(&self.eval(x))),
            Expr::Bin(op, l, r) => self.binary(*op, l, r),
            Expr::Call(f, args) => {
                let values: Vec<String> = args.iter().map(|a| self.eval(a)).collect();
                match functions::call(*f, &values, &self.rules.lookups) {
                    Ok(v) => v,
                    Err(e) => {
                        self.outcome.errors.push(e);
                        String::new()
                    }
                }
            }
            Expr::Matches(x, pattern, negated) => {
                let v = self.eval(x);
                boolean(pattern.matches(&v) != *negated)
            }
        }
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr) -> String {
        match op {
            BinOp::And => {
                let ok = truthy(&self.eval(l)) && truthy(&self.eval(r));
                return boolean(ok);
            }
            BinOp::Or => {
                let ok = truthy(&self.eval(l)) || truthy(&self.eval(r));
                return boolean(ok);
            }
            _ => {}
        }
        let (a, b) = (self.eval(l), self.eval(r));
        let (x, y) = (number(&a), number(&b));
        match op {
            BinOp::Eq => boolean(a == b),
            BinOp::Ne => boolean(a != b),
            BinOp::Lt => boolean(x < y),
            BinOp::Gt => boolean(x > y),
            BinOp::Le => boolean(x <= y),
            BinOp::Ge => boolean(x >= y),
            BinOp::Contains => boolean(a.contains(b.as_str())),
            BinOp::NotContains => boolean(!a.contains(b.as_str())),
            BinOp::Add => canonical(x + y),
            BinOp::Sub => canonical(x - y),
            BinOp::Mul => canonical(x * y),
            BinOp::Div => {
                if y == 0.0 {
                    self.outcome
                        .errors
                        .push(format!("division by zero: {a:?} / {b:?}"));
                    String::new()
                } else {
                    canonical(x / y)
                }
            }
            BinOp::Concat => a + &b,
            BinOp::And | BinOp::Or => unreachable!("handled above"),
        }
    }

    fn constraints_hold(&self, c: &Constraints) -> bool {
        let doc = self.doc;
        // a category set by the service matches by name, as in IRIS; one read
        // from MSH-12 (a version) also matches a custom category of that base version
        let category_fits = |name: &str, version: &Option<String>| {
            name == doc.type_version
                || (!doc.category_set && version.is_some() && version.as_deref() == doc.version)
        };
        (c.source.is_empty() || c.source.iter().any(|s| s == self.source))
            && (c.msg_class.is_empty() || c.msg_class.iter().any(|m| m == "EnsLib.HL7.Message"))
            && (c.doc_category.is_empty()
                || c.doc_category
                    .iter()
                    .any(|cat| category_fits(&cat.name, &cat.version)))
            && (c.doc_name.is_empty() || c.doc_name.contains(&doc.name))
            && (c.doc_type.is_empty()
                || c.doc_type.iter().any(|t| {
                    doc.structure
                        .is_some_and(|s| s.eq_ignore_ascii_case(&t.structure))
                        && t.category
                            .as_ref()
                            .is_none_or(|cat| category_fits(&cat.name, &cat.version))
                }))
    }

    /// Runs a rule; `true` when a `<return>` ended everything.
    fn rule(&mut self, rule: &Rule) -> bool {
        if rule.disabled.is_some() || !self.constraints_hold(&rule.constraints) {
            return false;
        }
        self.clauses(&rule.name, &rule.whens, rule.otherwise.as_deref())
    }

    fn clauses(&mut self, rule: &str, whens: &[When], otherwise: Option<&[Action]>) -> bool {
        for when in whens {
            if truthy(&self.eval(&when.condition)) {
                if !when.text.is_empty() {
                    self.outcome.fired.push(rule.to_owned());
                }
                return self.actions(rule, &when.actions);
            }
        }
        match otherwise {
            Some(actions) => {
                self.outcome.fired.push(rule.to_owned());
                self.actions(rule, actions)
            }
            None => false,
        }
    }

    fn actions(&mut self, rule: &str, actions: &[Action]) -> bool {
        for action in actions {
            match action {
                Action::Send { targets, .. } => {
                    for t in targets {
                        if !self.outcome.sends.iter().any(|s| s.target == *t) {
                            self.outcome.sends.push(Sent {
                                target: t.clone(),
                                rule: rule.to_owned(),
                            });
                        }
                    }
                }
                Action::Return => {
                    self.outcome.returned = true;
                    return true;
                }
                Action::Delete => {
                    self.outcome.deleted_by.get_or_insert_with(|| rule.to_owned());
                }
                Action::Trace(e) => {
                    let v = self.eval(e);
                    self.outcome.traces.push(v);
                }
                Action::ForEach {
                    path,
                    whens,
                    otherwise,
                } => {
                    let segments = path
                        .candidates
                        .iter()
                        .find(|c| self.key_fits(&c.keys))
                        .and_then(|c| self.locate(&c.segments).ok())
                        .map(|(segs, _, _)| segs)
                        .unwrap_or_default();
                    let outer = self.segment;
                    for s in segments {
                        self.segment = Some(s);
                        if self.clauses(rule, whens, otherwise.as_deref()) {
                            self.segment = outer;
                            return true;
                        }
                    }
                    self.segment = outer;
                }
                Action::Rule(inner) => {
                    if self.rule(inner) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

impl RuleSet {
    /// The HL7 version a schema category stands for: a version itself, or a
    /// custom category's base version as the import knew it.
    pub fn category_version(&self, category: &str) -> Option<&'static str> {
        hie_hl7def::normalize_version(category).or_else(|| {
            let base = self.categories.get(category).or_else(|| {
                self.categories
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(category))
                    .map(|(_, v)| v)
            })?;
            hie_hl7def::normalize_version(base)
        })
    }

    /// Evaluates the rules for `doc` sent by the item `source`, with the rule
    /// set in effect now (UTC).
    pub fn evaluate(&self, doc: &Document<'_>, source: &str) -> Outcome {
        self.evaluate_at(doc, source, &now_utc())
    }

    /// [`RuleSet::evaluate`] at a given time, `YYYY-MM-DDTHH:MM:SS`.
    pub fn evaluate_at(&self, doc: &Document<'_>, source: &str, now: &str) -> Outcome {
        let mut run = Run {
            rules: self,
            doc,
            source,
            segment: None,
            outcome: Outcome::default(),
        };
        let Some(set) = self
            .sets
            .iter()
            .find(|s| in_effect(&s.effective_begin, &s.effective_end, now))
        else {
            return run.outcome;
        };
        run.outcome.rule_set = Some(set.name.clone());
        for rule in &set.rules {
            if run.rule(rule) {
                break;
            }
        }
        run.outcome
    }
}

/// Whether `now` lies in `[begin, end]`; a date without a time covers the whole day.
fn in_effect(begin: &str, end: &str, now: &str) -> bool {
    let norm = |s: &str| s.trim().replace(' ', "T");
    let begin = norm(begin);
    let mut end = norm(end);
    if end.len() == 10 {
        end.push_str("T23:59:59");
    }
    (begin.is_empty() || begin.as_str() <= now) && (end.is_empty() || now <= end.as_str())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS`.
pub fn now_utc() -> String {
    // HL7's YYYYMMDDHHMMSS+0000, re-punctuated
    let t = hie_hl7::ack::now_timestamp();
    format!(
        "{}-{}-{}T{}:{}:{}",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_ranges() {
        assert!(in_effect("", "", "2025-01-01T00:00:00"));
        assert!(in_effect("2024-01-01", "2024-12-31", "2024-12-31T23:00:00"));
        assert!(!in_effect("2024-01-01", "2024-12-31", "2025-01-01T00:00:00"));
        assert!(!in_effect("2024-06-01T00:00:00", "", "2024-05-31T23:59:59"));
        assert!(in_effect("2024-06-01 00:00:00", "", "2024-06-01T00:00:00"));
    }

    #[test]
    fn now_is_formatted() {
        let now = now_utc();
        assert_eq!(now.len(), 19, "{now}");
        assert!(now.starts_with("20"), "{now}");
        assert_eq!(&now[10..11], "T");
    }

    #[test]
    fn grouping_follows_the_structure() {
        let seg = |n: &str, optional, repeating| Node::Segment {
            name: n.into(),
            optional,
            repeating,
        };
        // ORU_R01-like: MSH, PIDgrp?(PID, PV1?), ORCgrp+(ORC?, OBR, OBXgrp*(OBX, NTE*))
        let nodes = vec![
            seg("MSH", false, false),
            Node::Group {
                name: "PIDgrp".into(),
                optional: true,
                repeating: false,
                children: vec![seg("PID", false, false), seg("PV1", true, false)],
            },
            Node::Group {
                name: "ORCgrp".into(),
                optional: false,
                repeating: true,
                children: vec![
                    seg("ORC", true, false),
                    seg("OBR", false, false),
                    Node::Group {
                        name: "OBXgrp".into(),
                        optional: true,
                        repeating: true,
                        children: vec![seg("OBX", false, false), seg("NTE", true, true)],
                    },
                ],
            },
        ];
        let names = [
            "MSH", "PID", "ZPD", "PV1", "OBR", "OBX", "NTE", "NTE", "OBX", "ORC", "OBR", "OBX",
        ];
        let mut known = Vec::new();
        collect_names(&nodes, &mut known);
        let mut pos = 0;
        let tree = group(&nodes, &names, &mut pos, &known);
        assert_eq!(pos, names.len());
        let Slot::Groups(pid) = &tree.slots[1] else {
            panic!()
        };
        assert_eq!(pid.len(), 1);
        let Slot::Segments(pv1) = &pid[0].slots[1] else {
            panic!()
        };
        assert_eq!(pv1, &[3], "the Z segment is passed over");
        let Slot::Groups(orc) = &tree.slots[2] else {
            panic!()
        };
        assert_eq!(orc.len(), 2, "a new OBR after the OBX group starts a new ORCgrp");
        let Slot::Groups(obx) = &orc[0].slots[2] else {
            panic!()
        };
        assert_eq!(obx.len(), 2);
        let Slot::Segments(nte) = &obx[0].slots[1] else {
            panic!()
        };
        assert_eq!(nte, &[6, 7]);
        let Slot::Segments(orc2) = &orc[1].slots[0] else {
            panic!()
        };
        assert_eq!(orc2, &[9]);
    }
}
