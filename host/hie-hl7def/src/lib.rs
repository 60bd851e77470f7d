//! A machine-readable HL7 v2 definition (versions 2.1 to 2.7.1), generated into
//! the code at build time from data converted once from the npm package
//! `hl7-dictionary` 1.0.1 (MIT). See README.md for the source, what was checked
//! against InterSystems IRIS and what is assumed.
//!
//! Everything returned is `&'static`; names (versions aside) are matched
//! case-insensitively, as IRIS matches property names.
//!
//! ```
//! use hie_hl7def as def;
//! assert_eq!(def::structure_for("2.5", "ADT", "A08"), Some("ADT_A01"));
//! assert_eq!(def::field_index("2.5", "PV1", "PatientClass"), Some(2));
//! assert_eq!(def::field_index("2.5", "MSH", "MessageType"), Some(9));
//! assert_eq!(def::component_index("2.5", "MSG", "MessageCode"), Some(1));
//! ```

#![forbid(unsafe_code)]

/// IRIS naming rules (see README.md for what was verified against IRIS).
pub mod naming;

pub use naming::iris_name;

/// One HL7 v2 version: its data types, segments and message structures, each
/// sorted by name.
#[derive(Debug)]
pub struct VersionDef {
    /// The version as written in MSH-12 and as an IRIS schema category ("2.5.1").
    pub name: &'static str,
    /// Data types (composite and primitive).
    pub datatypes: &'static [DataTypeDef],
    /// Segments.
    pub segments: &'static [SegmentDef],
    /// Message structures (table 0354 names such as `ADT_A01`), plus messages
    /// the source lists under TYPE_EVENT when no table 0354 structure covers them.
    pub messages: &'static [MessageDef],
}

/// A data type and its components.
#[derive(Debug)]
pub struct DataTypeDef {
    /// Data type code ("XPN").
    pub name: &'static str,
    /// Components in order (component 1 first); a primitive type has one.
    pub components: &'static [ComponentDef],
}

/// One component of a data type.
#[derive(Debug)]
pub struct ComponentDef {
    /// The HL7 description ("Family Name").
    pub description: &'static str,
    /// The IRIS property name derived from it ("FamilyName").
    pub iris_name: &'static str,
    /// A second accepted name, from hl7apy, where it differs (upper case,
    /// "PREFIXEGDR" for "Prefix"); empty otherwise. See README.md.
    pub iris_alias: &'static str,
    /// The component's own data type ("FN").
    pub datatype: &'static str,
}

/// A segment and its fields.
#[derive(Debug)]
pub struct SegmentDef {
    /// Segment id ("PID").
    pub name: &'static str,
    /// Fields in order (field 1 first; MSH-1 is the field separator).
    pub fields: &'static [FieldDef],
}

/// One field of a segment.
#[derive(Debug)]
pub struct FieldDef {
    /// The HL7 description ("Patient Name").
    pub description: &'static str,
    /// The IRIS property name derived from it ("PatientName").
    pub iris_name: &'static str,
    /// A second accepted name, from hl7apy, where it differs (upper case,
    /// "PATIENTIDINTERNALID" for 2.3 PID-3); empty otherwise. See README.md.
    pub iris_alias: &'static str,
    /// The field's data type ("XPN").
    pub datatype: &'static str,
    /// HL7 optionality.
    pub usage: Usage,
    /// Maximum repetitions: 0 = unbounded, 1 = not repeating.
    pub max_repeats: u16,
}

impl FieldDef {
    /// Whether the field may repeat.
    pub fn repeating(&self) -> bool {
        self.max_repeats != 1
    }
}

/// HL7 optionality of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// R
    Required,
    /// O
    Optional,
    /// C
    Conditional,
    /// B: kept for backward compatibility
    Backward,
}

/// A message structure: its top-level elements in order.
#[derive(Debug)]
pub struct MessageDef {
    /// Structure name ("ORU_R01").
    pub name: &'static str,
    /// Segments, groups and choices in order.
    pub elements: &'static [Element],
}

/// One element of a message structure or group.
#[derive(Debug)]
pub enum Element {
    /// A segment.
    Segment(SegmentElement),
    /// A group of elements.
    Group(GroupElement),
    /// Exactly one of several segments (HL7 `<OBR|RQD|...>`).
    Choice(ChoiceElement),
}

/// A segment in a message structure.
#[derive(Debug)]
pub struct SegmentElement {
    /// Segment id; `*` stands for any segment (2.3 MFN_M01's record segment).
    pub name: &'static str,
    /// The name IRIS uses in paths: the segment id, with a number from 2 on
    /// when the id occurs again among its siblings (`ROL2`; assumed, see README).
    pub iris_name: &'static str,
    /// May be absent.
    pub optional: bool,
    /// May repeat.
    pub repeating: bool,
}

/// A group in a message structure.
#[derive(Debug)]
pub struct GroupElement {
    /// The HL7 group name ("PATIENT_RESULT").
    pub hl7_name: &'static str,
    /// The IRIS group name ("PIDgrpgrp"): see [`naming`](crate#iris-names).
    pub iris_name: &'static str,
    /// May be absent.
    pub optional: bool,
    /// May repeat.
    pub repeating: bool,
    /// The group's elements in order.
    pub elements: &'static [Element],
}

/// A choice of one segment among several.
#[derive(Debug)]
pub struct ChoiceElement {
    /// The IRIS name: first alternative + `union` ("OBRunion").
    pub iris_name: &'static str,
    /// May be absent.
    pub optional: bool,
    /// May repeat.
    pub repeating: bool,
    /// The segment ids to choose from.
    pub alternatives: &'static [&'static str],
}

impl Element {
    /// The name IRIS uses for this element in a virtual property path: the
    /// segment id for a segment, the IRIS group or choice name otherwise.
    pub fn iris_name(&self) -> &'static str {
        match self {
            Element::Segment(s) => s.iris_name,
            Element::Group(g) => g.iris_name,
            Element::Choice(c) => c.iris_name,
        }
    }

    /// May be absent.
    pub fn optional(&self) -> bool {
        match self {
            Element::Segment(s) => s.optional,
            Element::Group(g) => g.optional,
            Element::Choice(c) => c.optional,
        }
    }

    /// May repeat.
    pub fn repeating(&self) -> bool {
        match self {
            Element::Segment(s) => s.repeating,
            Element::Group(g) => g.repeating,
            Element::Choice(c) => c.repeating,
        }
    }

    /// The elements inside a group, or an empty slice.
    pub fn children(&self) -> &'static [Element] {
        match self {
            Element::Group(g) => g.elements,
            _ => &[],
        }
    }
}

impl MessageDef {
    /// Finds the top-level element with this IRIS name (case-insensitive).
    pub fn element(&self, iris_name: &str) -> Option<&'static Element> {
        find_element(self.elements, iris_name)
    }

    /// Follows IRIS names from the top level down (`["PIDgrpgrp", "ORCgrp",
    /// "OBXgrp", "OBX"]`, indexes already stripped) and returns the element at
    /// each step, or `None` at the first name that is not there.
    pub fn path(&self, iris_names: &[&str]) -> Option<Vec<&'static Element>> {
        let mut elements = self.elements;
        let mut out = Vec::with_capacity(iris_names.len());
        for name in iris_names {
            let e = find_element(elements, name)?;
            elements = e.children();
            out.push(e);
        }
        Some(out)
    }
}

impl GroupElement {
    /// Finds the element with this IRIS name (case-insensitive) in the group.
    pub fn element(&self, iris_name: &str) -> Option<&'static Element> {
        find_element(self.elements, iris_name)
    }
}

fn find_element(elements: &'static [Element], iris_name: &str) -> Option<&'static Element> {
    elements
        .iter()
        .find(|e| e.iris_name().eq_ignore_ascii_case(iris_name))
}

mod tables {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/tables.rs"));
}

/// All versions, oldest first.
pub fn versions() -> &'static [VersionDef] {
    &tables::VERSIONS
}

/// The newest version this crate knows, used for versions beyond it.
pub const NEWEST_VERSION: &str = "2.7.1";

/// The version this crate uses for a version string from MSH-12 or an IRIS
/// schema category. Surrounding blanks are ignored.
///
/// - A known version is returned as is ("2.3.1", "2.5.1").
/// - 2.8, 2.8.x and 2.9.x fall back to the newest known version, 2.7.1 (later
///   versions only add to 2.7.1's segments and fields; positions do not move).
/// - An unknown third part falls back to its two-part version ("2.6.1" -> "2.6").
/// - Anything else (not "2.x", unknown minor) is `None`.
pub fn normalize_version(version: &str) -> Option<&'static str> {
    let known = |v: &str| tables::VERSION_NAMES.iter().copied().find(|n| *n == v);
    let v = version.trim();
    if let Some(name) = known(v) {
        return Some(name);
    }
    let mut parts = v.split('.');
    let (Some("2"), Some(minor)) = (parts.next(), parts.next()) else {
        return None;
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(minor) || !parts.all(digits) {
        return None;
    }
    match minor.parse::<u32>().ok()? {
        8 | 9 => Some(NEWEST_VERSION),
        _ => known(&format!("2.{minor}")),
    }
}

/// The definitions of one version (after [`normalize_version`]).
pub fn version(version: &str) -> Option<&'static VersionDef> {
    let name = normalize_version(version)?;
    versions().iter().find(|d| d.name == name)
}

fn cmp_upper(stored: &str, wanted: &str) -> std::cmp::Ordering {
    stored.bytes().cmp(wanted.bytes().map(|b| b.to_ascii_uppercase()))
}

fn by_name<'a, T>(items: &'a [T], name: &str, key: impl Fn(&T) -> &str) -> Option<&'a T> {
    items
        .binary_search_by(|item| cmp_upper(key(item), name))
        .ok()
        .map(|i| &items[i])
}

/// A message structure ("ADT_A01") of a version.
pub fn message(version: &str, structure: &str) -> Option<&'static MessageDef> {
    by_name(self::version(version)?.messages, structure, |m| m.name)
}

/// A segment ("PID") of a version.
pub fn segment(version: &str, segment: &str) -> Option<&'static SegmentDef> {
    by_name(self::version(version)?.segments, segment, |s| s.name)
}

/// A data type ("XPN") of a version.
pub fn datatype(version: &str, datatype: &str) -> Option<&'static DataTypeDef> {
    by_name(self::version(version)?.datatypes, datatype, |d| d.name)
}

impl SegmentDef {
    /// The 1-based position of the field with this IRIS property name
    /// (case-insensitive). Tried in order over all fields: the name from the
    /// description, the second name from hl7apy, the name with a note IRIS keeps
    /// and the source dropped (see [`naming::matches_with_note`]). When two
    /// fields share a name the first one wins.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        position(self.fields, name, |f| (f.iris_name, f.iris_alias, f.datatype))
    }

    /// The field at a 1-based position.
    pub fn field(&self, index: usize) -> Option<&'static FieldDef> {
        index.checked_sub(1).and_then(|i| self.fields.get(i))
    }
}

impl DataTypeDef {
    /// The 1-based position of the component with this IRIS property name
    /// (case-insensitive), with the same rules as [`SegmentDef::field_index`].
    pub fn component_index(&self, name: &str) -> Option<usize> {
        position(self.components, name, |c| (c.iris_name, c.iris_alias, c.datatype))
    }

    /// The component at a 1-based position.
    pub fn component(&self, index: usize) -> Option<&'static ComponentDef> {
        index.checked_sub(1).and_then(|i| self.components.get(i))
    }
}

fn position<T>(items: &[T], name: &str, key: impl Fn(&T) -> (&str, &str, &str)) -> Option<usize> {
    let find = |hit: &dyn Fn(&str, &str, &str) -> bool| {
        items.iter().position(|item| {
            let (iris, alias, datatype) = key(item);
            hit(iris, alias, datatype)
        })
    };
    find(&|iris, _, _| iris.eq_ignore_ascii_case(name))
        .or_else(|| find(&|_, alias, _| !alias.is_empty() && alias.eq_ignore_ascii_case(name)))
        .or_else(|| find(&|iris, _, datatype| naming::matches_with_note(name, iris, datatype)))
        .map(|i| i + 1)
}

/// The 1-based position of a field, by its IRIS property name
/// (`field_index("2.5", "PID", "PatientName") == Some(5)`).
pub fn field_index(version: &str, seg: &str, name: &str) -> Option<usize> {
    segment(version, seg)?.field_index(name)
}

/// The 1-based position of a component of a data type, by its IRIS property
/// name (`component_index("2.5", "MSG", "MessageCode") == Some(1)`).
pub fn component_index(version: &str, datatype: &str, name: &str) -> Option<usize> {
    self::datatype(version, datatype)?.component_index(name)
}

/// The message structure (IRIS DocType name, MSH-9.3) for a message type and
/// trigger event (MSH-9.1, MSH-9.2), per HL7 table 0354:
/// `structure_for("2.5", "ADT", "A08") == Some("ADT_A01")`.
///
/// In order:
/// 1. `ACK` with any event is the `ACK` structure.
/// 2. Table 0354 rows whose structure starts with `TYPE_`, lists the event and
///    exists in that version; `TYPE_EVENT` itself is preferred when it is such
///    a row, otherwise the first row in table order.
/// 3. `TYPE_EVENT` when the version defines a structure of that name, or the
///    structure the version uses for `TYPE_EVENT` when table 0354's structure
///    does not exist in that version (2.3.1 `ADT^A05` -> `ADT_A01`, `ADT^A21`
///    -> `ADT_A02`; see README.md for where these come from).
/// 4. A row of another message type when it is the only row listing the event
///    and the message type starts no structure in that version at all
///    (`QSX^J02` -> `QCN_J01`).
///
/// The package carries table 0354 once (from its newest version), so steps 2
/// and 4 only ever return structures the version itself defines.
pub fn structure_for(version: &str, msg_type: &str, event: &str) -> Option<&'static str> {
    let name = normalize_version(version)?;
    // Only the names: the definitions stay out of a binary that needs no more.
    let at = tables::VERSION_NAMES.iter().position(|n| *n == name)?;
    let messages: &'static [&'static str] = tables::MESSAGE_NAMES[at];
    let msg_type = msg_type.trim().to_ascii_uppercase();
    let event = event.trim().to_ascii_uppercase();
    let exists = |s: &str| by_name(messages, s, |m| *m).copied();
    if msg_type == "ACK"
        && let Some(ack) = exists("ACK")
    {
        return Some(ack);
    }
    if msg_type.is_empty() || event.is_empty() {
        return None;
    }
    let type_event = format!("{msg_type}_{event}");
    let prefix = format!("{msg_type}_");
    let lists_event = |events: &[&str]| events.iter().any(|e| *e == event);
    let mut first = None;
    for (structure, events) in tables::TABLE_0354.iter() {
        if structure.starts_with(&prefix)
            && lists_event(events)
            && let Some(s) = exists(structure)
        {
            if s == type_event {
                return Some(s);
            }
            first = first.or(Some(s));
        }
    }
    if first.is_some() {
        return first;
    }
    if let Some(s) = exists(&type_event) {
        return Some(s);
    }
    let aliases: &'static [(&'static str, &'static str)] = tables::ALIASES[at];
    if let Some((_, target)) = by_name(aliases, &type_event, |(name, _)| name) {
        return Some(target);
    }
    let type_has_structures = messages.iter().any(|m| m.starts_with(&prefix));
    if type_has_structures {
        return None;
    }
    let mut rows = tables::TABLE_0354
        .iter()
        .filter(|(_, events)| lists_event(events));
    match (rows.next(), rows.next()) {
        (Some((structure, _)), None) => exists(structure),
        _ => None,
    }
}
