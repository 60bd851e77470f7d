//! The two wildcard languages of the IRIS rule functions: ObjectScript pattern
//! match (`Matches`, e.g. `3N1"-"2N1"-"4N`) and SQL `LIKE` (`Like`, `%` and `_`).

use serde::{Deserialize, Serialize};

/// A parsed ObjectScript pattern (the right side of the `?` operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern(Vec<Atom>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Atom {
    min: usize,
    /// `None`: no upper bound.
    max: Option<usize>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    /// Pattern codes such as `AN`; `negated` for `'N`.
    Codes { codes: String, negated: bool },
    /// A quoted literal.
    Literal(String),
    /// `(p1,p2,…)`: any of the alternatives.
    Alternatives(Vec<Vec<Atom>>),
}

impl Pattern {
    /// Parses an ObjectScript pattern; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let atoms = parse_sequence(&chars, &mut pos, false)?;
        if pos != chars.len() {
            return Err(format!(
                "pattern {text:?}: unexpected `{}` at character {}",
                chars[pos],
                pos + 1
            ));
        }
        if atoms.is_empty() {
            return Err(format!("pattern {text:?} is empty"));
        }
        Ok(Pattern(atoms))
    }

    /// Whether all of `value` matches the pattern.
    pub fn matches(&self, value: &str) -> bool {
        let chars: Vec<char> = value.chars().collect();
        let mut budget = 100_000usize;
        match_seq(&self.0, &chars, 0, &mut budget, &mut |end, _| end == chars.len())
    }
}

fn parse_sequence(chars: &[char], pos: &mut usize, in_group: bool) -> Result<Vec<Atom>, String> {
    let mut atoms = Vec::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        if in_group && (c == ',' || c == ')') {
            break;
        }
        let (min, max) = parse_count(chars, pos)?;
        let kind = parse_kind(chars, pos)?;
        atoms.push(Atom { min, max, kind });
    }
    Ok(atoms)
}

fn parse_number(chars: &[char], pos: &mut usize) -> Option<usize> {
    let start = *pos;
    while *pos < chars.len() && chars[*pos].is_ascii_digit() {
        *pos += 1;
    }
    if *pos == start {
        return None;
    }
    chars[start..*pos].iter().collect::<String>().parse().ok()
}

fn parse_count(chars: &[char], pos: &mut usize) -> Result<(usize, Option<usize>), String> {
    let first = parse_number(chars, pos);
    if *pos < chars.len() && chars[*pos] == '.' {
        *pos += 1;
        let second = parse_number(chars, pos);
        return Ok((first.unwrap_or(0), second));
    }
    match first {
        Some(n) => Ok((n, Some(n))),
        None => Err(format!(
            "pattern: expected a repeat count (such as 3, 1.5 or .) at character {}",
            *pos + 1
        )),
    }
}

fn parse_kind(chars: &[char], pos: &mut usize) -> Result<Kind, String> {
    let Some(&c) = chars.get(*pos) else {
        return Err(
            "pattern: a repeat count must be followed by codes, a \"string\" or (alternatives)".into(),
        );
    };
    match c {
        '"' => {
            *pos += 1;
            let mut lit = String::new();
            loop {
                match chars.get(*pos) {
                    None => return Err("pattern: unterminated \"string\"".into()),
                    Some('"') if chars.get(*pos + 1) == Some(&'"') => {
                        lit.push('"');
                        *pos += 2;
                    }
                    Some('"') => {
                        *pos += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        *pos += 1;
                    }
                }
            }
            Ok(Kind::Literal(lit))
        }
        '(' => {
            *pos += 1;
            let mut alternatives = Vec::new();
            loop {
                alternatives.push(parse_sequence(chars, pos, true)?);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(')') => {
                        *pos += 1;
                        break;
                    }
                    _ => return Err("pattern: missing `)` after the alternatives".into()),
                }
            }
            Ok(Kind::Alternatives(alternatives))
        }
        _ => {
            let negated = c == '\'';
            if negated {
                *pos += 1;
            }
            let mut codes = String::new();
            while let Some(&ch) = chars.get(*pos) {
                let up = ch.to_ascii_uppercase();
                if "ACELNPU".contains(up) {
                    if !codes.contains(up) {
                        codes.push(up);
                    }
                    *pos += 1;
                } else {
                    break;
                }
            }
            if codes.is_empty() {
                return Err(format!(
                    "pattern: `{}` at character {} is not a pattern code (A C E L N P U), a \"string\" or (alternatives)",
                    chars.get(*pos).copied().unwrap_or(' '),
                    *pos + 1
                ));
            }
            Ok(Kind::Codes { codes, negated })
        }
    }
}

fn code_matches(code: char, c: char) -> bool {
    match code {
        'A' => c.is_alphabetic(),
        'C' => c.is_control(),
        'E' => true,
        'L' => c.is_lowercase(),
        'N' => c.is_ascii_digit(),
        'P' => c == ' ' || c.is_ascii_punctuation(),
        'U' => c.is_uppercase(),
        _ => false,
    }
}

/// Matches `atoms` from `pos`; `done` decides whether an end position completes the match.
fn match_seq(
    atoms: &[Atom],
    chars: &[char],
    pos: usize,
    budget: &mut usize,
    done: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some((atom, rest)) = atoms.split_first() else {
        return done(pos, budget);
    };
    match_atom(atom, 0, chars, pos, budget, &mut |p, b| {
        match_seq(rest, chars, p, b, done)
    })
}

/// Matches further repetitions of `atom` (already `count` times) from `pos`, then `next`.
fn match_atom(
    atom: &Atom,
    count: usize,
    chars: &[char],
    pos: usize,
    budget: &mut usize,
    next: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let can_stop = count >= atom.min;
    let can_go = atom.max.is_none_or(|m| count < m);
    // one more repetition first (greedy), then stopping here
    if can_go {
        let progressed = match &atom.kind {
            Kind::Codes { codes, negated } => match chars.get(pos) {
                Some(&c) if codes.chars().any(|k| code_matches(k, c)) != *negated => {
                    match_atom(atom, count + 1, chars, pos + 1, budget, next)
                }
                _ => false,
            },
            Kind::Literal(lit) => {
                let lit: Vec<char> = lit.chars().collect();
                if !lit.is_empty() && chars[pos.min(chars.len())..].starts_with(&lit) {
                    match_atom(atom, count + 1, chars, pos + lit.len(), budget, next)
                } else {
                    false
                }
            }
            Kind::Alternatives(alts) => alts.iter().any(|alt| {
                let mut after =
                    |p: usize, b: &mut usize| p > pos && match_atom(atom, count + 1, chars, p, b, next);
                match_seq(alt, chars, pos, budget, &mut after)
            }),
        };
        if progressed {
            return true;
        }
    }
    can_stop && next(pos, budget)
}

/// A SQL `LIKE` pattern: `%` any run, `_` one character, an escape character
/// named by a `%%X` suffix (IRIS `Like`).
pub fn like(value: &str, pattern: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let (body, escape) = if p.len() >= 3 && p[p.len() - 3] == '%' && p[p.len() - 2] == '%' {
        (&p[..p.len() - 3], Some(p[p.len() - 1]))
    } else {
        (&p[..], None)
    };
    #[derive(PartialEq)]
    enum T {
        Any,
        One,
        Lit(char),
    }
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if Some(c) == escape && i + 1 < body.len() {
            tokens.push(T::Lit(body[i + 1]));
            i += 2;
            continue;
        }
        tokens.push(match c {
            '%' => T::Any,
            '_' => T::One,
            c => T::Lit(c),
        });
        i += 1;
    }
    let v: Vec<char> = value.chars().collect();
    // classic wildcard matching with one backtrack point per `%`
    let (mut vi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match tokens.get(ti) {
            Some(T::One) => {
                vi += 1;
                ti += 1;
            }
            Some(T::Lit(c)) if *c == v[vi] => {
                vi += 1;
                ti += 1;
            }
            Some(T::Any) => {
                star = Some((ti, vi));
                ti += 1;
            }
            _ => match star {
                Some((st, sv)) => {
                    ti = st + 1;
                    vi = sv + 1;
                    star = Some((st, sv + 1));
                }
                None => return false,
            },
        }
    }
    tokens[ti..].iter().all(|t| *t == T::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, value: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(value)
    }

    #[test]
    fn objectscript_patterns() {
        assert!(m("3N1\"-\"2N1\"-\"4N", "123-45-6789"));
        assert!(!m("3N1\"-\"2N1\"-\"4N", "123-45-678"));
        assert!(!m("3N1\"-\"2N1\"-\"4N", "123-45-67890"));
        assert!(m("1U.L", "Smith"));
        assert!(!m("1U.L", "smith"));
        assert!(m(".E", ""));
        assert!(m("1.3N", "12"));
        assert!(!m("1.3N", "1234"));
        assert!(m("2.N", "1234"));
        assert!(!m("2.N", "1"));
        assert!(m("1\"A\".N", "A01"));
        assert!(m("1(1\"ADT\",1\"ORU\")1\"^\".E", "ORU^R01"));
        assert!(!m("1(1\"ADT\",1\"ORU\")1\"^\".E", "SIU^S12"));
        assert!(m("1.(1\"ab\",1\"c\")", "abcab"));
        assert!(m("3'N", "abc"));
        assert!(!m("3'N", "a1c"));
        assert!(m("1AN.ANP", "a-1 b"));
        assert!(m("1\"\"\"\"", "\""));
        assert!(m("3n", "123"), "codes are case-insensitive");
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(Pattern::parse("N").unwrap_err().contains("repeat count"));
        assert!(Pattern::parse("3X").unwrap_err().contains("not a pattern code"));
        assert!(Pattern::parse("1\"abc").unwrap_err().contains("unterminated"));
        assert!(Pattern::parse("1(1N,1A").unwrap_err().contains("missing `)`"));
    }

    #[test]
    fn sql_like() {
        assert!(like("ADT^A01", "ADT%"));
        assert!(like("ADT^A01", "%A01"));
        assert!(like("ADT^A01", "ADT_A01"));
        assert!(!like("ADT^A01", "ADT_A0"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("abcabc", "%b%b%"));
        assert!(!like("adt", "ADT"), "LIKE is case-sensitive here");
        // escape character named by a %%X suffix (the IRIS documentation's example)
        assert!(like("%SYSVARx_rest", "#%SYSVAR_#_%%%#"));
        assert!(!like("%SYSVARxyrest", "#%SYSVAR_#_%%%#"));
        assert!(!like("ASYSVARx_rest", "#%SYSVAR_#_%%%#"));
    }
}
