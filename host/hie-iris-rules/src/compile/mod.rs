//! `<ruleDefinition>` XML → [`RuleSet`], with IRIS semantics and every loss
//! reported: a rule that uses something HIE cannot run is kept, disabled, with
//! the reason.

mod expr;
mod path;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use roxmltree::Node as XmlNode;

use crate::model::{
    Action, Category, Constraints, DocType, Expr, FORMAT, Node, Rule, RuleSet, RuleSetDef, When,
};

/// What the compiler needs to know besides the XML.
#[derive(Debug, Clone, Default)]
pub struct CompileContext {
    /// The file the XML came from, for messages.
    pub file: PathBuf,
    /// Added to line numbers inside the XML (the line before the XML starts in the file).
    pub line_offset: usize,
    /// Custom HL7 schema categories → their base version (`"MyHL7" → "2.5"`).
    pub custom_categories: BTreeMap<String, String>,
    /// Lookup tables (name → key → value) the conditions may use.
    pub lookup_tables: BTreeMap<String, BTreeMap<String, String>>,
}

/// The result of a compile.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The rules, ready for `hl7-router`'s `iris-rules` setting.
    pub rule_set: RuleSet,
    /// Things that carry over but behave differently or deserve a look.
    pub warnings: Vec<Warning>,
    /// Rules that do not run, and why.
    pub disabled: Vec<Disabled>,
    /// Every target a `<send>` names (disabled rules included).
    pub targets: BTreeSet<String>,
    /// Every DTL transform a `<send>` names (their rules are disabled).
    pub transforms: Vec<String>,
}

/// A note about the rules, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub file: PathBuf,
    /// The line in the file.
    pub line: usize,
    /// What to know.
    pub message: String,
}

/// A rule that does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// The rule's name (`rule#N` when unnamed).
    pub rule: String,
    /// The file.
    pub file: PathBuf,
    /// The line of `<rule>`.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Input that is not a rule definition at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The file.
    pub file: PathBuf,
    /// The line in the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for CompileError {}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl fmt::Display for Disabled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: rule {:?} disabled: {}",
            self.file.display(),
            self.line,
            self.rule,
            self.reason
        )
    }
}

/// Compiles a `<ruleDefinition>` (the content of `XData RuleDefinition`).
pub fn compile(xml: &str, ctx: &CompileContext) -> Result<Compiled, CompileError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| CompileError {
        file: ctx.file.clone(),
        line: e.pos().row as usize + ctx.line_offset,
        message: format!("the rule definition is not well-formed XML: {e}"),
    })?;
    let root = doc.root_element();
    let mut c = Compiler {
        ctx,
        doc: &doc,
        warnings: Vec::new(),
        disabled: Vec::new(),
        targets: BTreeSet::new(),
        transforms: Vec::new(),
        structures: BTreeMap::new(),
        tables: BTreeSet::new(),
        all_tables: false,
    };
    if root.tag_name().name() != "ruleDefinition" {
        return Err(CompileError {
            file: ctx.file.clone(),
            line: c.line(root),
            message: format!(
                "expected a <ruleDefinition> (an IRIS rule class's XData RuleDefinition), found <{}>",
                root.tag_name().name()
            ),
        });
    }
    let context = root.attribute("context").unwrap_or_default();
    if !context.is_empty() && !context.contains("RoutingEngine") {
        c.warn(
            root,
            format!(
                "the rule definition's context is {context}, not a routing engine: it was written for a business process; only its routing actions carry over"
            ),
        );
    }
    let mut sets = Vec::new();
    for child in root.children().filter(XmlNode::is_element) {
        match child.tag_name().name() {
            "ruleSet" => sets.push(c.rule_set(child)),
            "comment" | "variable" => {}
            other => c.warn(
                child,
                format!(
                    "<{other}> in <ruleDefinition> is not part of a routing rule definition and is ignored"
                ),
            ),
        }
    }
    if sets.is_empty() {
        c.warn(
            root,
            "the rule definition has no <ruleSet>: no message will be routed by it".into(),
        );
    }
    let lookups = if c.all_tables {
        ctx.lookup_tables.clone()
    } else {
        c.tables
            .iter()
            .filter_map(|t| ctx.lookup_tables.get(t).map(|v| (t.clone(), v.clone())))
            .collect()
    };
    // versions share most structures: each distinct tree once
    let mut trees: Vec<Vec<Node>> = Vec::new();
    let mut structures = BTreeMap::new();
    for (key, tree) in std::mem::take(&mut c.structures) {
        let i = match trees.iter().position(|t| *t == tree) {
            Some(i) => i,
            None => {
                trees.push(tree);
                trees.len() - 1
            }
        };
        structures.insert(key, i);
    }
    let alias = root.attribute("alias").unwrap_or_default();
    let name = if alias.is_empty() {
        ctx.file.display().to_string()
    } else {
        alias.to_owned()
    };
    Ok(Compiled {
        rule_set: RuleSet {
            format: FORMAT,
            name,
            sets,
            lookups,
            structures,
            trees,
            categories: ctx.custom_categories.clone(),
        },
        warnings: c.warnings,
        disabled: c.disabled,
        targets: c.targets,
        transforms: c.transforms,
    })
}

struct Compiler<'c, 'x, 'i> {
    ctx: &'c CompileContext,
    doc: &'x roxmltree::Document<'i>,
    warnings: Vec<Warning>,
    disabled: Vec<Disabled>,
    targets: BTreeSet<String>,
    transforms: Vec<String>,
    structures: BTreeMap<String, Vec<Node>>,
    tables: BTreeSet<String>,
    all_tables: bool,
}

/// What holds a list of clauses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Rule,
    ForEach,
}

impl Container {
    fn name(self) -> &'static str {
        match self {
            Container::Rule => "a rule",
            Container::ForEach => "a <foreach>",
        }
    }
}

/// What a rule's paths resolve against, and the problems found in the rule.
struct RuleScope {
    schemas: path::Schemas,
    problems: Vec<String>,
    /// The segment a `foreach` iterates, while compiling inside one.
    foreach_segment: Option<String>,
    /// The line of the expression being compiled.
    line: usize,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_true(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true" | "1"))
}

impl Compiler<'_, '_, '_> {
    fn line(&self, node: XmlNode<'_, '_>) -> usize {
        self.doc.text_pos_at(node.range().start).row as usize + self.ctx.line_offset
    }

    fn warn(&mut self, node: XmlNode<'_, '_>, message: String) {
        let line = self.line(node);
        self.warnings.push(Warning {
            file: self.ctx.file.clone(),
            line,
            message,
        });
    }

    fn rule_set(&mut self, node: XmlNode<'_, '_>) -> RuleSetDef {
        let mut rules = Vec::new();
        let mut n = 0;
        let mut steps = 0;
        for child in node.children().filter(XmlNode::is_element) {
            match child.tag_name().name() {
                "rule" => {
                    n += 1;
                    rules.push(self.rule(child, &format!("rule#{n}")));
                }
                "comment" => {}
                // IRIS runs actions written directly in a rule set in order with the rules
                _ => {
                    steps += 1;
                    rules.push(self.bare_action(child, &format!("action#{steps}")));
                }
            }
        }
        RuleSetDef {
            name: node.attribute("name").unwrap_or_default().to_owned(),
            effective_begin: node
                .attribute("effectiveBegin")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            effective_end: node
                .attribute("effectiveEnd")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            rules,
        }
    }

    /// A category as written → its version (a version itself, or a custom category's base).
    fn category(&mut self, node: XmlNode<'_, '_>, name: &str) -> Category {
        let version = hie_hl7def::normalize_version(name).or_else(|| {
            let base = self.ctx.custom_categories.get(name).or_else(|| {
                self.ctx
                    .custom_categories
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })?;
            hie_hl7def::normalize_version(base)
        });
        if version.is_none() {
            self.warn(
                node,
                format!(
                    "schema category {name:?} is neither an HL7 version HIE knows nor a custom category of this import: the constraint holds only for messages whose MSH-12 is {name:?}"
                ),
            );
        }
        Category {
            name: name.to_owned(),
            version: version.map(str::to_owned),
        }
    }

    fn constraints(&mut self, rule: XmlNode<'_, '_>, problems: &mut Vec<String>) -> Constraints {
        let mut c = Constraints::default();
        for node in rule.children().filter(|n| n.has_tag_name("constraint")) {
            let name = node.attribute("name").unwrap_or_default();
            let values = list(node.attribute("value").unwrap_or_default());
            match name {
                "source" => c.source.extend(values),
                "msgClass" => {
                    for v in &values {
                        if v != "EnsLib.HL7.Message" {
                            self.warn(
                                node,
                                format!("msgClass {v}: HIE routes HL7 v2 messages (EnsLib.HL7.Message), so this constraint never holds for them"),
                            );
                        }
                    }
                    c.msg_class.extend(values);
                }
                "docCategory" => {
                    for v in values {
                        let cat = self.category(node, &v);
                        c.doc_category.push(cat);
                    }
                }
                "docName" => c.doc_name.extend(values),
                "docType" => {
                    for v in values {
                        let doc_type = match v.split_once(':') {
                            Some((cat, s)) => DocType {
                                category: Some(self.category(node, cat.trim())),
                                structure: s.trim().to_owned(),
                            },
                            None => DocType {
                                category: None,
                                structure: v,
                            },
                        };
                        c.doc_type.push(doc_type);
                    }
                }
                other => problems.push(format!(
                    "constraint {other:?} (line {}) is not one HIE knows (source, msgClass, docCategory, docName, docType)",
                    self.line(node)
                )),
            }
        }
        c
    }

    /// The schemas a rule's paths resolve against, from its constraints.
    fn schemas(&self, c: &Constraints) -> path::Schemas {
        let mut versions: Vec<&'static str> = c
            .doc_category
            .iter()
            .chain(c.doc_type.iter().filter_map(|t| t.category.as_ref()))
            .filter_map(|cat| cat.version.as_deref())
            .filter_map(hie_hl7def::normalize_version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        if versions.is_empty() {
            versions = hie_hl7def::versions().iter().map(|v| v.name).collect();
        }
        let named: Vec<String> = if !c.doc_type.is_empty() {
            c.doc_type.iter().map(|t| t.structure.clone()).collect()
        } else {
            Vec::new()
        };
        let structures = if !named.is_empty() || !c.doc_name.is_empty() {
            let mut map: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
            for v in &versions {
                let mut list: Vec<&'static str> = named
                    .iter()
                    .filter_map(|s| hie_hl7def::message(v, s).map(|m| m.name))
                    .collect();
                if named.is_empty() {
                    for n in &c.doc_name {
                        let (t, e) = n.split_once('_').unwrap_or((n.as_str(), ""));
                        if let Some(s) = hie_hl7def::structure_for(v, t, e) {
                            list.push(s);
                        }
                    }
                }
                list.sort_unstable();
                list.dedup();
                map.insert(v, list);
            }
            Some(map)
        } else {
            None
        };
        path::Schemas { versions, structures }
    }

    fn rule(&mut self, node: XmlNode<'_, '_>, default_name: &str) -> Rule {
        let name = match node.attribute("name").map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => default_name.to_owned(),
        };
        let line = self.line(node);
        let mut problems = Vec::new();
        let constraints = self.constraints(node, &mut problems);
        let mut scope = RuleScope {
            schemas: self.schemas(&constraints),
            problems,
            foreach_segment: None,
            line,
        };
        let mut nested = 0;
        let (whens, otherwise) = self.clauses(node, &mut scope, &name, &mut nested, Container::Rule);
        let mut disabled = None;
        if is_true(node.attribute("disabled")) {
            disabled = Some("disabled in the IRIS rule definition (disabled=\"true\")".to_owned());
        }
        if !scope.problems.is_empty() {
            let mut why = scope.problems.join("; ");
            let clauses = whens.len() + usize::from(otherwise.is_some());
            if clauses > 1 {
                why.push_str(&format!(
                    " (the whole rule is disabled: all {clauses} of its <when>/<otherwise> clauses)"
                ));
            }
            disabled = Some(match disabled {
                Some(d) => format!("{d}; also: {why}"),
                None => why,
            });
        }
        if let Some(reason) = &disabled {
            self.disabled.push(Disabled {
                rule: name.clone(),
                file: self.ctx.file.clone(),
                line,
                reason: reason.clone(),
            });
        }
        Rule {
            name,
            line,
            disabled,
            constraints,
            whens,
            otherwise,
        }
    }

    /// An action written directly in a `<ruleSet>`: a rule that always fires.
    fn bare_action(&mut self, node: XmlNode<'_, '_>, name: &str) -> Rule {
        let line = self.line(node);
        let mut scope = RuleScope {
            schemas: self.schemas(&Constraints::default()),
            problems: Vec::new(),
            foreach_segment: None,
            line,
        };
        let actions = self.actions_of(std::iter::once(node), &mut scope, name);
        let disabled = (!scope.problems.is_empty()).then(|| scope.problems.join("; "));
        if let Some(reason) = &disabled {
            self.disabled.push(Disabled {
                rule: name.to_owned(),
                file: self.ctx.file.clone(),
                line,
                reason: reason.clone(),
            });
        }
        Rule {
            name: name.to_owned(),
            line,
            disabled,
            constraints: Constraints::default(),
            whens: vec![When {
                line,
                text: String::new(),
                condition: Expr::Num("1".into()),
                actions,
            }],
            otherwise: None,
        }
    }

    fn expr(&mut self, text: &str, line: usize, scope: &mut RuleScope, what: &str) -> Expr {
        scope.line = line;
        let mut resolver = Resolve {
            compiler: self,
            scope,
        };
        match expr::parse(text, &mut resolver) {
            Ok(e) => e,
            Err(e) => {
                scope
                    .problems
                    .push(format!("{what} on line {line} ({text}): {e}"));
                Expr::Num("0".into())
            }
        }
    }

    /// The clauses of a `<rule>` or a `<foreach>`: its `<when>`s in order, its one
    /// `<otherwise>`, and each `<rule>` directly inside, which runs like a rule of
    /// the set (an always-true `<when>` holding it). `nested` numbers those rules.
    fn clauses(
        &mut self,
        node: XmlNode<'_, '_>,
        scope: &mut RuleScope,
        rule: &str,
        nested: &mut usize,
        container: Container,
    ) -> (Vec<When>, Option<Vec<Action>>) {
        let mut whens = Vec::new();
        let mut otherwise = None;
        for child in node.children().filter(XmlNode::is_element) {
            match child.tag_name().name() {
                "comment" => {}
                "constraint" if container == Container::Rule => {}
                "when" => whens.push(self.when(child, scope, rule)),
                "otherwise" => {
                    if otherwise.is_some() {
                        scope
                            .problems
                            .push(format!("a second <otherwise> (line {})", self.line(child)));
                    }
                    otherwise = Some(self.actions(child, scope, rule));
                }
                "rule" => {
                    *nested += 1;
                    let inner = self.rule(child, &format!("{rule}/rule#{nested}"));
                    whens.push(When {
                        line: inner.line,
                        text: String::new(),
                        condition: Expr::Num("1".into()),
                        actions: vec![Action::Rule(Box::new(inner))],
                    });
                }
                other => scope.problems.push(format!(
                    "<{other}> (line {}) is not supported in {}",
                    self.line(child),
                    container.name()
                )),
            }
        }
        (whens, otherwise)
    }

    fn when(&mut self, node: XmlNode<'_, '_>, scope: &mut RuleScope, rule: &str) -> When {
        let line = self.line(node);
        let text = node.attribute("condition").unwrap_or_default().to_owned();
        let condition = if text.trim().is_empty() {
            scope
                .problems
                .push(format!("<when> on line {line} has no condition"));
            Expr::Num("0".into())
        } else {
            self.expr(&text, line, scope, "condition")
        };
        let actions = self.actions(node, scope, rule);
        When {
            line,
            text,
            condition,
            actions,
        }
    }

    fn actions(&mut self, parent: XmlNode<'_, '_>, scope: &mut RuleScope, rule: &str) -> Vec<Action> {
        self.actions_of(parent.children().filter(XmlNode::is_element), scope, rule)
    }

    fn actions_of<'a, 'i2: 'a>(
        &mut self,
        nodes: impl Iterator<Item = XmlNode<'a, 'i2>>,
        scope: &mut RuleScope,
        rule: &str,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let mut nested = 0;
        for node in nodes {
            let line = self.line(node);
            let tag = node.tag_name().name();
            match tag {
                "send" => {
                    let targets = list(node.attribute("target").unwrap_or_default());
                    let transforms = list(node.attribute("transform").unwrap_or_default());
                    if targets.is_empty() {
                        self.warn(node, format!("<send> in rule {rule:?} names no target: it sends nothing"));
                    }
                    if !transforms.is_empty() {
                        scope.problems.push(format!(
                            "<send> on line {line} runs the DTL transform{} {}, which do{} not carry over: write the mapping as an hl7-mapper item or a plugin, then send to it",
                            if transforms.len() > 1 { "s" } else { "" },
                            transforms.join(", "),
                            if transforms.len() > 1 { "" } else { "es" },
                        ));
                        self.transforms.extend(transforms.iter().cloned());
                    }
                    self.targets.extend(targets.iter().cloned());
                    out.push(Action::Send { targets, transforms });
                }
                "return" => out.push(Action::Return),
                "delete" => out.push(Action::Delete),
                "trace" | "debug" => {
                    let value = node.attribute("value").unwrap_or_default();
                    let e = self.expr(value, line, scope, &format!("<{tag}> value"));
                    out.push(Action::Trace(e));
                }
                "foreach" => {
                    if scope.foreach_segment.is_some() {
                        scope
                            .problems
                            .push(format!("<foreach> on line {line} inside another <foreach> (IRIS does not allow it either)"));
                        continue;
                    }
                    let text = node.attribute("propertypath").unwrap_or_default();
                    let body = text
                        .trim()
                        .strip_prefix("HL7.{")
                        .or_else(|| text.trim().strip_prefix("Document.{"))
                        .and_then(|b| b.strip_suffix('}'));
                    let Some(body) = body else {
                        scope.problems.push(format!(
                            "<foreach propertypath={text:?}> on line {line}: expected HL7.{{…}} naming repeating segments"
                        ));
                        continue;
                    };
                    let resolved = path::parse(body).and_then(|w| {
                        if w.field.is_some() {
                            return Err(format!("`{body}` names a field; a foreach goes over segments (OBXgrp().OBX)"));
                        }
                        path::resolve(body, &w, &scope.schemas, &mut self.structures)
                    });
                    let p = match resolved {
                        Ok(p) => p,
                        Err(e) => {
                            scope
                                .problems
                                .push(format!("<foreach propertypath={text:?}> on line {line}: {e}"));
                            continue;
                        }
                    };
                    scope.foreach_segment = path::final_segment(&p);
                    let (whens, otherwise) =
                        self.clauses(node, scope, rule, &mut nested, Container::ForEach);
                    scope.foreach_segment = None;
                    out.push(Action::ForEach { path: p, whens, otherwise });
                }
                "rule" => {
                    nested += 1;
                    let inner = self.rule(node, &format!("{rule}/rule#{nested}"));
                    out.push(Action::Rule(Box::new(inner)));
                }
                "comment" => {}
                "assign" => scope.problems.push(format!(
                    "<assign property={:?}> on line {line}: HIE routing has no rule context properties to assign",
                    node.attribute("property").unwrap_or_default()
                )),
                "delegate" => scope.problems.push(format!(
                    "<delegate> on line {line} to another rule definition ({}) is not supported: route to a second hl7-router item instead",
                    node.attribute("ruleName").unwrap_or_default()
                )),
                other => scope
                    .problems
                    .push(format!("<{other}> on line {line} is not an action HIE supports")),
            }
        }
        out
    }
}

/// Resolves a condition's paths for the rule it is in.
struct Resolve<'a, 'c, 'x, 'i> {
    compiler: &'a mut Compiler<'c, 'x, 'i>,
    scope: &'a mut RuleScope,
}

impl expr::Resolver for Resolve<'_, '_, '_, '_> {
    fn path(&mut self, body: &str, kind: expr::PathKind) -> Result<Expr, String> {
        let mut w = path::parse(body)?;
        if kind == expr::PathKind::Search {
            // [SEG:field]: every SEG segment, wherever the structure puts it
            let [(_, index)] = w.steps.as_mut_slice() else {
                return Err(format!(
                    "`[{body}]`: square brackets take one segment and a field (OBX:5)"
                ));
            };
            if *index == crate::model::Index::First {
                *index = crate::model::Index::All;
            }
        }
        let p = path::resolve(body, &w, &self.scope.schemas, &mut self.compiler.structures)?;
        if kind == expr::PathKind::Curly
            && let [(segment, _)] = w.steps.as_slice()
        {
            let nested = path::nested_only(segment, &self.scope.schemas);
            if !nested.is_empty() {
                self.compiler.warnings.push(Warning {
                    file: self.compiler.ctx.file.clone(),
                    line: self.scope.line,
                    message: format!(
                        "HL7.{{{body}}}: {} only inside a group ({}); IRIS resolves a path in the message structure, HIE reads the first {segment} in the message: write the group path to be sure",
                        segment,
                        nested.join("; ")
                    ),
                });
            }
        }
        Ok(Expr::Path(Box::new(p)))
    }

    fn segment_field(&mut self, body: &str) -> Result<Expr, String> {
        let Some(segment) = self.scope.foreach_segment.clone() else {
            return Err(format!("Segment.{{{body}}} outside a <foreach>"));
        };
        let candidates = path::resolve_segment_field(body, &segment, &self.scope.schemas.versions)?;
        Ok(Expr::SegmentField(candidates))
    }

    fn table(&mut self, name: Option<&str>) {
        match name {
            Some(t) => {
                if !self.compiler.ctx.lookup_tables.contains_key(t) {
                    self.compiler.warnings.push(Warning {
                        file: self.compiler.ctx.file.clone(),
                        line: self.scope.line,
                        message: format!(
                            "lookup table {t:?} is not part of this import: Lookup() returns its default and Exists() is false for every key"
                        ),
                    });
                }
                self.compiler.tables.insert(t.to_owned());
            }
            None => self.compiler.all_tables = true,
        }
    }
}

#[cfg(test)]
mod tests;
