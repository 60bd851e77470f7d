//! Virtual property paths (`HL7.{PIDgrp.PV1grp.PV1:PatientClass}`): parsed,
//! then resolved to positions with the HL7 definition for each schema a rule
//! can see.

use std::collections::BTreeMap;

use hie_hl7def::{self as def, Element};

use crate::model::{FieldCandidate, FieldSel, Index, Locator, Node, Path, PathCandidate, Step};

/// A path as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Groups and the segment, in order.
    pub steps: Vec<(String, Index)>,
    /// `:field…`, if written.
    pub field: Option<WrittenField>,
}

/// The `field(rep).component.subcomponent` part as written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenField {
    pub field: String,
    pub repetition: Option<Index>,
    pub component: Option<String>,
    pub subcomponent: Option<String>,
}

fn parse_index(text: &str, what: &str) -> Result<Index, String> {
    match text.trim() {
        "" => Ok(Index::All),
        "*" => Ok(Index::Count),
        n => match n.parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "`({n})` after {what}: expected a repetition number from 1, `()` for all or `(*)` for the count"
            )),
            Ok(i) => Ok(Index::Nth(i)),
        },
    }
}

/// `Name(idx)` → name and index (`First` without parentheses).
fn name_and_index(part: &str, what: &str) -> Result<(String, Option<Index>), String> {
    match part.find('(') {
        None => Ok((part.trim().to_owned(), None)),
        Some(open) => {
            let Some(inner) = part[open + 1..].strip_suffix(')') else {
                return Err(format!("`{part}`: missing `)`"));
            };
            Ok((part[..open].trim().to_owned(), Some(parse_index(inner, what)?)))
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Parses `field(rep).component.subcomponent`.
pub fn parse_field(text: &str) -> Result<WrittenField, String> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 3 {
        return Err(format!(
            "`{text}` has {} levels: a field path is field, component, subcomponent",
            parts.len()
        ));
    }
    let (field, repetition) = name_and_index(parts[0], "the field")?;
    if !is_name(&field) {
        return Err(format!("`{}` is not a field number or name", parts[0]));
    }
    let level = |i: usize| -> Result<Option<String>, String> {
        match parts.get(i) {
            None => Ok(None),
            Some(p) if is_name(p.trim()) => Ok(Some(p.trim().to_owned())),
            Some(p) => Err(format!("`{p}` is not a component number or name")),
        }
    };
    Ok(WrittenField {
        field,
        repetition,
        component: level(1)?,
        subcomponent: level(2)?,
    })
}

/// Parses what is inside `HL7.{…}`.
pub fn parse(text: &str) -> Result<Written, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty property path".into());
    }
    let (segments, field) = match text.split_once(':') {
        Some((s, f)) => (s, Some(parse_field(f)?)),
        None => (text, None),
    };
    let mut steps = Vec::new();
    for part in segments.split('.') {
        let (name, index) = name_and_index(part, "a segment or group")?;
        if !is_name(&name) {
            return Err(format!("`{part}` is not a segment or group name"));
        }
        if name.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "`{name}:` addresses a segment by its position in the message, which is not supported: name the segment"
            ));
        }
        steps.push((name, index.unwrap_or(Index::First)));
    }
    Ok(Written { steps, field })
}

fn number(text: &str) -> Option<usize> {
    text.parse().ok().filter(|n| *n > 0)
}

/// Resolves a written field for one version: numbers stay, names become positions.
fn field_in(version: &str, segment: &str, w: &WrittenField) -> Result<FieldSel, String> {
    let seg = || {
        def::segment(version, segment).ok_or_else(|| {
            format!("HL7 {version} has no segment {segment}, so its fields cannot be named: use numbers ({segment}:3.1)")
        })
    };
    let field = match number(&w.field) {
        Some(n) => n,
        None => seg()?
            .field_index(&w.field)
            .ok_or_else(|| format!("HL7 {version} segment {segment} has no field `{}`", w.field))?,
    };
    let field_type = || -> Result<&'static str, String> {
        seg()?
            .field(field)
            .map(|f| f.datatype)
            .ok_or_else(|| format!("HL7 {version} segment {segment} has no field {field}"))
    };
    let mut sub_type = None;
    let component = match &w.component {
        None => None,
        Some(c) => Some(match number(c) {
            Some(n) => n,
            None => {
                let dt = field_type()?;
                let def = def::datatype(version, dt)
                    .ok_or_else(|| format!("HL7 {version} has no data type {dt} ({segment}:{})", w.field))?;
                let i = def.component_index(c).ok_or_else(|| {
                    format!(
                        "HL7 {version} {segment}:{} (data type {dt}) has no component `{c}`",
                        w.field
                    )
                })?;
                sub_type = def.component(i).map(|comp| comp.datatype);
                i
            }
        }),
    };
    let subcomponent = match (&w.subcomponent, component) {
        (None, _) => None,
        (Some(s), Some(ci)) => Some(match number(s) {
            Some(n) => n,
            None => {
                let dt = match sub_type {
                    Some(dt) => dt,
                    None => {
                        let ft = field_type()?;
                        def::datatype(version, ft)
                            .and_then(|d| d.component(ci))
                            .map(|comp| comp.datatype)
                            .ok_or_else(|| {
                                format!("HL7 {version} {segment}:{}.{ci} has no data type", w.field)
                            })?
                    }
                };
                def::component_index(version, dt, s)
                    .ok_or_else(|| format!("HL7 {version} data type {dt} has no subcomponent `{s}`"))?
            }
        }),
        (Some(_), None) => unreachable!("parse_field sets a component before a subcomponent"),
    };
    Ok(FieldSel {
        field,
        repetition: w.repetition,
        component,
        subcomponent,
    })
}

fn numeric_field(w: &WrittenField) -> Option<FieldSel> {
    let opt = |s: &Option<String>| match s {
        None => Some(None),
        Some(s) => number(s).map(Some),
    };
    Some(FieldSel {
        field: number(&w.field)?,
        repetition: w.repetition,
        component: opt(&w.component)?,
        subcomponent: opt(&w.subcomponent)?,
    })
}

/// Resolves `Segment.{…}` inside a foreach over `segment` segments.
pub fn resolve_segment_field(
    text: &str,
    segment: &str,
    versions: &[&'static str],
) -> Result<Vec<FieldCandidate>, String> {
    let body = text.trim();
    let body = match body.split_once(':') {
        Some((seg, rest)) if seg.eq_ignore_ascii_case(segment) => rest,
        Some((seg, _)) => {
            return Err(format!(
                "Segment.{{{body}}} names segment {seg}, but the foreach is over {segment} segments"
            ));
        }
        None => body,
    };
    let w = parse_field(body)?;
    if let Some(sel) = numeric_field(&w) {
        return Ok(vec![FieldCandidate {
            keys: vec!["*".into()],
            field: sel,
        }]);
    }
    let mut by_sel: Vec<(FieldSel, Vec<String>)> = Vec::new();
    let mut last_err = String::new();
    for v in versions {
        match field_in(v, segment, &w) {
            Ok(sel) => add_key(&mut by_sel, sel, v.to_string()),
            Err(e) => last_err = e,
        }
    }
    if by_sel.is_empty() {
        return Err(last_err);
    }
    if let [(_, keys)] = by_sel.as_mut_slice()
        && keys.len() == versions.len()
    {
        *keys = vec!["*".into()];
    }
    Ok(by_sel
        .into_iter()
        .map(|(field, keys)| FieldCandidate { keys, field })
        .collect())
}

fn add_key<T: PartialEq>(groups: &mut Vec<(T, Vec<String>)>, item: T, key: String) {
    match groups.iter_mut().find(|(t, _)| *t == item) {
        Some((_, keys)) => keys.push(key),
        None => groups.push((item, vec![key])),
    }
}

/// The schemas a rule's paths are resolved for.
pub struct Schemas {
    /// HL7 versions (normalized).
    pub versions: Vec<&'static str>,
    /// Structures per version, when the rule's constraints name them.
    pub structures: Option<BTreeMap<&'static str, Vec<&'static str>>>,
}

/// Converts a structure definition to the embedded form.
pub fn nodes(elements: &[Element]) -> Vec<Node> {
    elements
        .iter()
        .map(|e| match e {
            Element::Segment(s) => Node::Segment {
                name: s.name.to_owned(),
                optional: s.optional,
                repeating: s.repeating,
            },
            Element::Choice(c) => Node::Choice {
                name: c.iris_name.to_owned(),
                optional: c.optional,
                repeating: c.repeating,
                alternatives: c.alternatives.iter().map(|a| a.to_string()).collect(),
            },
            Element::Group(g) => Node::Group {
                name: g.iris_name.to_owned(),
                optional: g.optional,
                repeating: g.repeating,
                children: nodes(g.elements),
            },
        })
        .collect()
}

/// Follows group steps down a structure; the segment name at the end, with
/// the names as the definition spells them.
fn walk(elements: &'static [Element], steps: &[(String, Index)]) -> Option<(Vec<Step>, String)> {
    let mut level = elements;
    let mut out = Vec::new();
    let mut segment = None;
    for (i, (name, index)) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let e = level.iter().find(|e| e.iris_name().eq_ignore_ascii_case(name))?;
        out.push(Step {
            name: e.iris_name().to_owned(),
            index: *index,
        });
        match e {
            Element::Group(g) if !last => level = g.elements,
            // a path may end at a group: `(*)` counts its instances
            Element::Group(_) => segment = Some(String::new()),
            Element::Segment(s) if last => segment = Some(s.name.to_owned()),
            Element::Choice(c) if last => segment = c.alternatives.first().map(|a| a.to_string()),
            _ => return None,
        }
    }
    Some((out, segment?))
}

/// Where a path's segments are and the part of them it reads.
type Resolution = (Locator, Option<FieldSel>);

/// Resolves a written path for the schemas; structures used are added to `used`.
pub fn resolve(
    text: &str,
    w: &Written,
    schemas: &Schemas,
    used: &mut BTreeMap<String, Vec<Node>>,
) -> Result<Path, String> {
    let mut candidates: Vec<(Resolution, Vec<String>)> = Vec::new();
    if let [(segment, index)] = w.steps.as_slice() {
        let is_segment_id = segment.len() == 3
            && segment
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !is_segment_id {
            return Err(format!(
                "`{segment}` is not a segment id (three capital letters or digits); a group needs a segment after it ({segment}.PID:5)"
            ));
        }
        let locator = Locator::Flat {
            segment: segment.clone(),
            index: *index,
        };
        match &w.field {
            None => candidates.push(((locator, None), vec!["*".into()])),
            Some(f) => match numeric_field(f) {
                Some(sel) => candidates.push(((locator, Some(sel)), vec!["*".into()])),
                None => {
                    let mut last_err = String::new();
                    for v in &schemas.versions {
                        match field_in(v, segment, f) {
                            Ok(sel) => add_key(&mut candidates, (locator.clone(), Some(sel)), v.to_string()),
                            Err(e) => last_err = e,
                        }
                    }
                    if candidates.is_empty() {
                        return Err(last_err);
                    }
                    // the same position in every version: any message, even one
                    // whose MSH-12 names no version HIE knows
                    if let [(_, keys)] = candidates.as_mut_slice()
                        && keys.len() == schemas.versions.len()
                    {
                        *keys = vec!["*".into()];
                    }
                }
            },
        }
    } else {
        let mut last_err = format!(
            "group path `{text}` does not exist in any message structure of HL7 {}",
            schemas.versions.join(", ")
        );
        for v in &schemas.versions {
            let Some(vdef) = def::version(v) else { continue };
            let structures: Vec<&'static str> = match &schemas.structures {
                Some(map) => map.get(v).cloned().unwrap_or_default(),
                None => vdef.messages.iter().map(|m| m.name).collect(),
            };
            for s in structures {
                let Some(m) = def::message(v, s) else { continue };
                let Some((steps, segment)) = walk(m.elements, &w.steps) else {
                    continue;
                };
                if segment.is_empty()
                    && (w.field.is_some() || steps.last().is_some_and(|s| s.index != Index::Count))
                {
                    last_err = format!(
                        "`{text}` ends at the group {}: name a segment in it, or count the group with (*)",
                        steps.last().map(|s| s.name.as_str()).unwrap_or_default()
                    );
                    continue;
                }
                let field = match &w.field {
                    None => None,
                    Some(f) => match field_in(v, &segment, f) {
                        Ok(sel) => Some(sel),
                        Err(e) => {
                            last_err = e;
                            continue;
                        }
                    },
                };
                let key = format!("{v}:{}", m.name);
                used.entry(key.clone()).or_insert_with(|| nodes(m.elements));
                add_key(&mut candidates, (Locator::Grouped(steps), field), key);
            }
        }
        if candidates.is_empty() {
            return Err(last_err);
        }
    }
    Ok(Path {
        text: text.to_owned(),
        candidates: candidates
            .into_iter()
            .map(|((segments, field), keys)| PathCandidate {
                keys,
                segments,
                field,
            })
            .collect(),
    })
}

/// Where a bare segment path (`OBX:5`) differs from IRIS: the structures of
/// `schemas` that have `segment` only inside a group, with the group path to it.
pub fn nested_only(segment: &str, schemas: &Schemas) -> Vec<String> {
    fn find(elements: &'static [Element], segment: &str, prefix: &str) -> Option<String> {
        for e in elements {
            match e {
                Element::Segment(s) if s.name.eq_ignore_ascii_case(segment) => {
                    return Some(format!("{prefix}{}", s.name));
                }
                Element::Group(g) => {
                    if let Some(p) = find(g.elements, segment, &format!("{prefix}{}.", g.iris_name)) {
                        return Some(p);
                    }
                }
                _ => {}
            }
        }
        None
    }
    let Some(map) = &schemas.structures else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (v, structures) in map {
        for s in structures {
            let Some(m) = def::message(v, s) else { continue };
            let top = m
                .elements
                .iter()
                .any(|e| matches!(e, Element::Segment(x) if x.name.eq_ignore_ascii_case(segment)));
            if top {
                continue;
            }
            if let Some(p) = find(m.elements, segment, "") {
                let line = format!("{v}:{} has it at {p}", m.name);
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    out
}

/// The segment a path ends at (for `Segment.{…}` inside a foreach).
pub fn final_segment(path: &Path) -> Option<String> {
    path.candidates.iter().find_map(|c| match &c.segments {
        Locator::Flat { segment, .. } => Some(segment.clone()),
        Locator::Grouped(steps) => steps.last().map(|s| s.name.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let w = parse("PIDgrpgrp(1).ORCgrp(2).OBXgrp().OBX:5").unwrap();
        assert_eq!(
            w.steps,
            vec![
                ("PIDgrpgrp".into(), Index::Nth(1)),
                ("ORCgrp".into(), Index::Nth(2)),
                ("OBXgrp".into(), Index::All),
                ("OBX".into(), Index::First),
            ]
        );
        assert_eq!(w.field.unwrap().field, "5");
        let w = parse("PID:PatientName(1).familylastname").unwrap();
        let f = w.field.unwrap();
        assert_eq!(f.repetition, Some(Index::Nth(1)));
        assert_eq!(f.component.as_deref(), Some("familylastname"));
        let w = parse("PID:3(*)").unwrap();
        assert_eq!(w.field.unwrap().repetition, Some(Index::Count));
        assert!(parse("1:9").unwrap_err().contains("position"));
        assert!(parse("PID:3(0)").unwrap_err().contains("from 1"));
        assert!(parse("PID:3.1.2.4").unwrap_err().contains("4 levels"));
        assert!(parse("PID:3(1").unwrap_err().contains("missing `)`"));
    }
}
