//! The compiled rules (serde JSON): what the `hl7-router` plugin loads from its
//! `iris-rules` setting. Names are resolved to positions here; nothing needs the
//! HL7 definition at run time except the message-type → structure table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

/// The version of this JSON format; [`RuleSet::from_json`] refuses others.
pub const FORMAT: u32 = 1;

/// A compiled IRIS rule definition (`<ruleDefinition>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    /// [`FORMAT`].
    pub format: u32,
    /// Where it came from (file, class name), for messages.
    pub name: String,
    /// The `<ruleSet>`s in order; the first one in effect runs.
    pub sets: Vec<RuleSetDef>,
    /// Lookup tables the conditions use (`Lookup`, `Exists`), by table name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    /// Message structures used by group paths: `VERSION:STRUCTURE` (e.g.
    /// `2.5:ORU_R01`) → an index into [`RuleSet::trees`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub structures: BTreeMap<String, usize>,
    /// The distinct structure trees (versions often share them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<Vec<Node>>,
    /// Custom schema categories of the import → their base HL7 version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, String>,
}

/// One `<ruleSet>`: rules in effect between two times (empty = open ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSetDef {
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `effectiveBegin` as written (`2024-01-01T00:00:00`), or empty.
    #[serde(default)]
    pub effective_begin: String,
    /// `effectiveEnd` as written, or empty.
    #[serde(default)]
    pub effective_end: String,
    /// The rules in order.
    pub rules: Vec<Rule>,
}

/// One `<rule>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// `name`, or `rule#N` (IRIS's own name for an unnamed rule).
    pub name: String,
    /// Line of `<rule>` in the source file.
    pub line: usize,
    /// Why the rule does not run (`disabled="true"`, or what could not carry over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
    /// The constraints (all must hold).
    #[serde(default)]
    pub constraints: Constraints,
    /// `<when>` clauses; the first true one fires.
    #[serde(default)]
    pub whens: Vec<When>,
    /// `<otherwise>`: runs when no `<when>` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otherwise: Option<Vec<Action>>,
}

/// The constraint lists of a rule; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// `source`: names of the sending items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<String>,
    /// `msgClass`: message classes (`EnsLib.HL7.Message` is what HL7 messages are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msg_class: Vec<String>,
    /// `docCategory`: schema categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_category: Vec<Category>,
    /// `docName`: message type names (`ADT_A08`, from MSH-9).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_name: Vec<String>,
    /// `docType`: `CATEGORY:STRUCTURE` (`2.5:ADT_A01`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_type: Vec<DocType>,
}

/// A schema category: its name as written and the HL7 version it stands for
/// (itself for `2.5.1`, the base version for a custom category).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// As written in the rule.
    pub name: String,
    /// The normalized HL7 version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A `docType` value: an optional category and a message structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocType {
    /// The category part, if written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// The structure (`ADT_A01`).
    pub structure: String,
}

/// A `<when condition="…">` and its actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct When {
    /// Line in the source file.
    pub line: usize,
    /// The condition as written (for logs); empty for the clause the compiler
    /// wraps around a nested rule or an action written in the rule set, which
    /// does not count as a rule firing.
    pub text: String,
    /// The compiled condition.
    pub condition: Expr,
    /// What runs when it is true.
    pub actions: Vec<Action>,
}

/// An action in a `<when>` or `<otherwise>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `<send target="a,b" transform="…">`.
    Send {
        /// Target items, in order (empty entries dropped).
        targets: Vec<String>,
        /// DTL transforms in order; a rule with any is disabled at compile time.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        transforms: Vec<String>,
    },
    /// `<return>`: stop evaluating the rule definition.
    Return,
    /// `<delete>`: the message goes nowhere, on purpose.
    Delete,
    /// `<trace value="…">` (and `<debug>`): a log line.
    Trace(Expr),
    /// `<foreach propertypath="…">`: the clauses run once per segment.
    ForEach {
        /// The segments.
        path: Path,
        /// `<when>` clauses inside.
        whens: Vec<When>,
        /// `<otherwise>` inside.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otherwise: Option<Vec<Action>>,
    },
    /// A nested `<rule>`.
    Rule(Box<Rule>),
}

/// A condition or value expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A string literal.
    Str(String),
    /// A numeric literal in canonical form.
    Num(String),
    /// `HL7.{…}` / `Document.{…}`.
    Path(Box<Path>),
    /// `Segment.{…}` inside a `foreach`: a field of the current segment.
    SegmentField(Vec<FieldCandidate>),
    /// A property of the message or the routing context.
    Prop(Prop),
    /// `!x`.
    Not(Box<Expr>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `+x` (numeric value).
    Plus(Box<Expr>),
    /// A binary operator.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A function call (or a word operator written infix).
    Call(Func, Vec<Expr>),
    /// `Matches`/`DoesNotMatch` (when the flag is set) with a literal
    /// ObjectScript pattern, parsed at compile time.
    Matches(Box<Expr>, Pattern, bool),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    /// `&&`
    And,
    /// `||`
    Or,
    /// `=` (string equality)
    Eq,
    /// `!=`
    Ne,
    /// `<` (numeric)
    Lt,
    /// `>` (numeric)
    Gt,
    /// `<=` (numeric)
    Le,
    /// `>=` (numeric)
    Ge,
    /// `[` contains
    Contains,
    /// `'[` does not contain
    NotContains,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `&` / `_` string concatenation
    Concat,
}

/// Built-in functions (IRIS `Ens.Util.FunctionSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Func {
    Contains,
    DoesNotContain,
    StartsWith,
    DoesNotStartWith,
    In,
    NotIn,
    IntersectsList,
    DoesNotIntersectList,
    Like,
    NotLike,
    Matches,
    DoesNotMatch,
    RegexMatch,
    Lookup,
    Exists,
    Length,
    ToUpper,
    ToLower,
    Min,
    Max,
    Round,
    SubString,
    Piece,
    ReplaceStr,
    Translate,
    Pad,
    If,
    Not,
}

/// Message and context properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prop {
    /// `Source`: the item that sent the message.
    Source,
    /// `HL7.Name`: the message type name, `ADT_A08`.
    Name,
    /// `HL7.DocType`: `2.5:ADT_A01`.
    DocType,
    /// `HL7.DocTypeName`: the structure, `ADT_A01`.
    DocTypeName,
    /// `HL7.DocTypeCategory`: the category, `2.5`.
    DocTypeCategory,
    /// `HL7.TypeVersion`: MSH-12.
    TypeVersion,
    /// `HL7.ParentId`: always empty (each message HIE routes stands alone).
    ParentId,
    /// `MsgClass`: `EnsLib.HL7.Message`.
    MsgClass,
}

/// A virtual property path (`HL7.{…}`), resolved for one or more schemas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Path {
    /// As written, for messages.
    pub text: String,
    /// Resolutions; the first whose key fits the message is used.
    pub candidates: Vec<PathCandidate>,
}

/// A path resolved for some schemas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathCandidate {
    /// `*` (any message), `2.5` (that version) or `2.5:ORU_R01` (that structure).
    pub keys: Vec<String>,
    /// How to find the segment(s).
    pub segments: Locator,
    /// The part of the segment, or `None` for the whole segment (foreach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldSel>,
}

/// How a path finds its segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locator {
    /// Segments called `segment` anywhere in the message.
    Flat {
        /// Segment name.
        segment: String,
        /// Which of them.
        index: Index,
    },
    /// Down the message structure's groups (`PIDgrp.PV1grp.PV1`).
    Grouped(Vec<Step>),
}

/// One step of a group path: a group or segment by name, and which instance(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// IRIS group name (`PIDgrp`) or segment name.
    pub name: String,
    /// Which instance(s).
    pub index: Index,
}

/// Which of several repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Index {
    /// No index written: the first.
    First,
    /// `(n)`, 1-based.
    Nth(usize),
    /// `()`: all of them (values joined as `<a><b>`).
    All,
    /// `(*)`: how many there are.
    Count,
}

/// A part of a segment, by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSel {
    /// Field number (MSH-1 is the field separator).
    pub field: usize,
    /// Repetition; `None` reads the whole field, or the first repetition when a component is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<Index>,
    /// Component number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<usize>,
    /// Subcomponent number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcomponent: Option<usize>,
}

/// A `Segment.{…}` field resolved for some versions (`*` for any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCandidate {
    /// `*` or versions.
    pub keys: Vec<String>,
    /// The field.
    pub field: FieldSel,
}

/// A node of a message structure, for grouping a message's segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A segment.
    Segment {
        /// `PID`.
        name: String,
        /// May be absent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
        /// May repeat.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeating: bool,
    },
    /// One segment among several (`OBRunion`).
    Choice {
        /// IRIS name.
        name: String,
        /// May be absent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
        /// May repeat.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeating: bool,
        /// The segment names.
        alternatives: Vec<String>,
    },
    /// A group.
    Group {
        /// IRIS name, `PIDgrp`.
        name: String,
        /// May be absent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
        /// May repeat.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeating: bool,
        /// Its children in order.
        children: Vec<Node>,
    },
}

impl Node {
    /// The name a path uses for it.
    pub fn name(&self) -> &str {
        match self {
            Node::Segment { name, .. } | Node::Choice { name, .. } | Node::Group { name, .. } => name,
        }
    }

    /// May be absent.
    pub fn optional(&self) -> bool {
        match self {
            Node::Segment { optional, .. } | Node::Choice { optional, .. } | Node::Group { optional, .. } => {
                *optional
            }
        }
    }

    /// May repeat.
    pub fn repeating(&self) -> bool {
        match self {
            Node::Segment { repeating, .. }
            | Node::Choice { repeating, .. }
            | Node::Group { repeating, .. } => *repeating,
        }
    }
}

impl RuleSet {
    /// Reads the JSON form; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<RuleSet, String> {
        let set: RuleSet =
            serde_json::from_str(text).map_err(|e| {
                format!(
                    "IRIS rules JSON does not parse: {e}; if another version of hie wrote it, import the rules again with this one (hie import iris), and rebuild the plugins (./setup.sh)"
                )
            })?;
        if set.format != FORMAT {
            return Err(format!(
                "IRIS rules JSON has format {}, this build reads format {FORMAT}: import the rules again with this version of hie",
                set.format
            ));
        }
        Ok(set)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
