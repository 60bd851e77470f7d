//! The IRIS utility functions (`Ens.Util.FunctionSet`) rules may call, with the
//! behaviour the IRIS documentation gives them.

use std::collections::BTreeMap;

use crate::model::Func;
use crate::pattern::{Pattern, like};
use crate::value::{boolean, canonical, number, truthy};

impl Func {
    /// The function for a name as written (case-insensitive), or `None`.
    pub fn from_name(name: &str) -> Option<Func> {
        let all = [
            Func::Contains,
            Func::DoesNotContain,
            Func::StartsWith,
            Func::DoesNotStartWith,
            Func::In,
            Func::NotIn,
            Func::IntersectsList,
            Func::DoesNotIntersectList,
            Func::Like,
            Func::NotLike,
            Func::Matches,
            Func::DoesNotMatch,
            Func::RegexMatch,
            Func::Lookup,
            Func::Exists,
            Func::Length,
            Func::ToUpper,
            Func::ToLower,
            Func::Min,
            Func::Max,
            Func::Round,
            Func::SubString,
            Func::Piece,
            Func::ReplaceStr,
            Func::Translate,
            Func::Pad,
            Func::If,
            Func::Not,
        ];
        all.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The IRIS name.
    pub fn name(self) -> &'static str {
        match self {
            Func::Contains => "Contains",
            Func::DoesNotContain => "DoesNotContain",
            Func::StartsWith => "StartsWith",
            Func::DoesNotStartWith => "DoesNotStartWith",
            Func::In => "In",
            Func::NotIn => "NotIn",
            Func::IntersectsList => "IntersectsList",
            Func::DoesNotIntersectList => "DoesNotIntersectList",
            Func::Like => "Like",
            Func::NotLike => "NotLike",
            Func::Matches => "Matches",
            Func::DoesNotMatch => "DoesNotMatch",
            Func::RegexMatch => "RegexMatch",
            Func::Lookup => "Lookup",
            Func::Exists => "Exists",
            Func::Length => "Length",
            Func::ToUpper => "ToUpper",
            Func::ToLower => "ToLower",
            Func::Min => "Min",
            Func::Max => "Max",
            Func::Round => "Round",
            Func::SubString => "SubString",
            Func::Piece => "Piece",
            Func::ReplaceStr => "ReplaceStr",
            Func::Translate => "Translate",
            Func::Pad => "Pad",
            Func::If => "If",
            Func::Not => "Not",
        }
    }

    /// How many arguments it takes: (at least, at most).
    pub fn arity(self) -> (usize, usize) {
        match self {
            Func::ToUpper | Func::ToLower | Func::Not => (1, 1),
            Func::Contains
            | Func::DoesNotContain
            | Func::StartsWith
            | Func::DoesNotStartWith
            | Func::In
            | Func::NotIn
            | Func::Like
            | Func::NotLike
            | Func::Matches
            | Func::DoesNotMatch
            | Func::RegexMatch
            | Func::Exists => (2, 2),
            Func::IntersectsList | Func::DoesNotIntersectList => (2, 4),
            Func::Lookup => (2, 4),
            Func::Length | Func::Round => (1, 2),
            Func::Min | Func::Max => (1, 8),
            Func::SubString | Func::ReplaceStr => (2, 3),
            Func::Piece => (1, 4),
            Func::Translate => (2, 3),
            Func::Pad => (2, 3),
            Func::If => (2, 3),
        }
    }

    /// Whether it may be written as an infix word operator (`a Contains "x"`).
    pub fn is_operator(self) -> bool {
        self.arity().0 == 2
            && !matches!(
                self,
                Func::Exists | Func::Lookup | Func::SubString | Func::ReplaceStr | Func::Translate
            )
            && !matches!(self, Func::Pad | Func::If)
    }
}

/// `In`'s list: comma-separated, or with a custom separator (`a|b,,|`) or
/// item wrappers (`<a><b>,,<>`) named after two commas.
fn in_list(value: &str, items: &str) -> bool {
    if let Some((list, spec)) = items.rsplit_once(",,") {
        let spec: Vec<char> = spec.chars().collect();
        match spec.as_slice() {
            [sep] => return list.split(*sep).any(|i| i == value),
            [open, close] => {
                return list.contains(&format!("{open}{value}{close}"));
            }
            _ => {}
        }
    }
    items.split(',').any(|i| i == value)
}

/// A list in `sep` form; `><` means `<a><b><c>`.
fn list_items(text: &str, sep: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    if sep == "><" {
        let inner = text.strip_prefix('<').unwrap_or(text);
        let inner = inner.strip_suffix('>').unwrap_or(inner);
        return inner.split("><").map(str::to_owned).collect();
    }
    if sep.is_empty() {
        return vec![text.to_owned()];
    }
    text.split(sep).map(str::to_owned).collect()
}

/// `$PIECE` position: a number, `*` (the last) or `*-n`.
fn piece_position(spec: &str, count: usize) -> i64 {
    let s = spec.trim();
    if let Some(rest) = s.strip_prefix('*') {
        let back = if rest.is_empty() { 0.0 } else { number(rest) };
        return count as i64 + back as i64;
    }
    number(s) as i64
}

thread_local! {
    /// Compiled `RegexMatch` patterns: rules use a few, on every message.
    static REGEXES: std::cell::RefCell<BTreeMap<String, regex_lite::Regex>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Whether all of `value` matches the regular expression `pattern`.
fn regex_match(value: &str, pattern: &str) -> Result<bool, String> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return Ok(re.is_match(value));
        }
        let re = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("RegexMatch: {pattern:?} is not a regular expression: {e}"))?;
        let hit = re.is_match(value);
        if cache.len() < 256 {
            cache.insert(pattern.to_owned(), re);
        }
        Ok(hit)
    })
}

/// The widest `Pad` result (ObjectScript strings are at most 3,641,144 characters).
const MAX_PAD: i64 = 3_641_144;

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map(String::as_str).unwrap_or("")
}

/// Calls `f`; an error says which function and what is wrong.
pub fn call(
    f: Func,
    args: &[String],
    lookups: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<String, String> {
    let a = arg(args, 0);
    let b = arg(args, 1);
    Ok(match f {
        Func::Contains => boolean(a.contains(b)),
        Func::DoesNotContain => boolean(!a.contains(b)),
        Func::StartsWith => boolean(a.starts_with(b)),
        Func::DoesNotStartWith => boolean(!a.starts_with(b)),
        Func::In => boolean(in_list(a, b)),
        Func::NotIn => boolean(!in_list(a, b)),
        Func::IntersectsList | Func::DoesNotIntersectList => {
            let src_sep = args
                .get(2)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("><");
            let target_sep = args
                .get(3)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("><");
            let targets = list_items(b, target_sep);
            let hit = list_items(a, src_sep).iter().any(|v| targets.contains(v));
            boolean(hit == (f == Func::IntersectsList))
        }
        Func::Like => boolean(like(a, b)),
        Func::NotLike => boolean(!like(a, b)),
        Func::Matches | Func::DoesNotMatch => {
            let p = Pattern::parse(b).map_err(|e| format!("{}: {e}", f.name()))?;
            boolean(p.matches(a) == (f == Func::Matches))
        }
        Func::RegexMatch => boolean(regex_match(a, b)?),
        Func::Lookup => {
            let default = arg(args, 2);
            if a.is_empty() || b.is_empty() {
                // the IRIS documentation's defaultOnEmptyInput table
                let use_default = match number(arg(args, 3)) as i64 {
                    1 => !b.is_empty(),
                    2 => !a.is_empty(),
                    3 => true,
                    _ => false,
                };
                return Ok(if use_default {
                    default.to_owned()
                } else {
                    String::new()
                });
            }
            lookups
                .get(a)
                .and_then(|t| t.get(b))
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        }
        Func::Exists => boolean(lookups.get(a).is_some_and(|t| t.contains_key(b))),
        Func::Length => match args.get(1) {
            None => a.chars().count().to_string(),
            Some(d) if d.is_empty() => "0".into(),
            Some(d) => (a.matches(d.as_str()).count() + 1).to_string(),
        },
        Func::ToUpper => a.to_uppercase(),
        Func::ToLower => a.to_lowercase(),
        Func::Min | Func::Max => {
            let nums = args.iter().map(|s| number(s));
            let n = if f == Func::Min {
                nums.fold(f64::INFINITY, f64::min)
            } else {
                nums.fold(f64::NEG_INFINITY, f64::max)
            };
            canonical(n)
        }
        Func::Round => {
            let digits = number(b) as i32;
            let scale = 10f64.powi(digits);
            canonical((number(a) * scale).round() / scale)
        }
        Func::SubString => {
            let chars: Vec<char> = a.chars().collect();
            let from = number(b).max(1.0) as usize;
            let to = match args.get(2) {
                Some(m) => number(m) as i64,
                None => chars.len() as i64,
            };
            if to < from as i64 {
                String::new()
            } else {
                let to = (to as usize).min(chars.len());
                chars
                    .get(from - 1..to)
                    .map(|c| c.iter().collect())
                    .unwrap_or_default()
            }
        }
        Func::Piece => {
            let delim = args.get(1).map(String::as_str).unwrap_or(",");
            if delim.is_empty() {
                return Ok(String::new());
            }
            let pieces: Vec<&str> = a.split(delim).collect();
            let from = args.get(2).map(|s| piece_position(s, pieces.len())).unwrap_or(1);
            let to = args
                .get(3)
                .map(|s| piece_position(s, pieces.len()))
                .unwrap_or(from);
            let from = from.max(1);
            if to < from {
                String::new()
            } else {
                let end = (to as usize).min(pieces.len());
                pieces
                    .get(from as usize - 1..end)
                    .map(|p| p.join(delim))
                    .unwrap_or_default()
            }
        }
        Func::ReplaceStr => {
            if b.is_empty() {
                a.to_owned()
            } else {
                a.replace(b, arg(args, 2))
            }
        }
        Func::Translate => {
            let from: Vec<char> = b.chars().collect();
            let to: Vec<char> = arg(args, 2).chars().collect();
            a.chars()
                .filter_map(|c| match from.iter().position(|x| *x == c) {
                    Some(i) => to.get(i).copied(),
                    None => Some(c),
                })
                .collect()
        }
        Func::Pad => {
            // bounded: a width read from a message must not exhaust memory
            let width = (number(b) as i64).clamp(-MAX_PAD, MAX_PAD);
            let fill = arg(args, 2).chars().next().unwrap_or(' ');
            let len = a.chars().count() as i64;
            let missing = (width.abs() - len).max(0) as usize;
            let pad: String = std::iter::repeat_n(fill, missing).collect();
            if width < 0 { pad + a } else { a.to_owned() + &pad }
        }
        Func::If => {
            if truthy(a) {
                b.to_owned()
            } else {
                arg(args, 2).to_owned()
            }
        }
        Func::Not => boolean(!truthy(a)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(f: Func, args: &[&str]) -> String {
        let mut tables = BTreeMap::new();
        tables.insert(
            "Gender".to_owned(),
            BTreeMap::from([
                ("M".to_owned(), "Male".to_owned()),
                ("F".to_owned(), "Female".to_owned()),
            ]),
        );
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        call(f, &args, &tables).unwrap()
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(Func::from_name("contains"), Some(Func::Contains));
        assert_eq!(Func::from_name("DOESNOTSTARTWITH"), Some(Func::DoesNotStartWith));
        assert_eq!(Func::from_name("EndsWith"), None);
        assert!(Func::In.is_operator());
        assert!(!Func::Lookup.is_operator());
    }

    #[test]
    fn string_tests() {
        assert_eq!(c(Func::Contains, &["Hollywood, California", "od, Ca"]), "1");
        assert_eq!(c(Func::Contains, &["Hollywood", "Wood"]), "0");
        assert_eq!(c(Func::DoesNotContain, &["abc", "x"]), "1");
        assert_eq!(c(Func::StartsWith, &["ADT^A01", "ADT"]), "1");
        assert_eq!(c(Func::DoesNotStartWith, &["ADT^A01", "ADT"]), "0");
    }

    #[test]
    fn in_lists_as_documented() {
        assert_eq!(c(Func::In, &["A01", "A01,A04,A08"]), "1");
        assert_eq!(c(Func::In, &["A0", "A01,A04,A08"]), "0", "whole items only");
        assert_eq!(c(Func::NotIn, &["A03", "A01,A04"]), "1");
        assert_eq!(c(Func::In, &["a", "a|b|c,,|"]), "1");
        assert_eq!(c(Func::In, &["d", "a|b|c,,|"]), "0");
        assert_eq!(c(Func::In, &["a", "<a><b><c>,,<>"]), "1");
        assert_eq!(c(Func::In, &["", "A,,B"]), "0");
    }

    #[test]
    fn intersecting_lists() {
        assert_eq!(c(Func::IntersectsList, &["<A><B>", "<C><B>"]), "1");
        assert_eq!(c(Func::IntersectsList, &["<A><B>", "<C><D>"]), "0");
        assert_eq!(c(Func::IntersectsList, &["<A><B>", "C,B", "", ","]), "1");
        assert_eq!(
            c(Func::IntersectsList, &["A", "<A>"]),
            "1",
            "one item, no brackets"
        );
        assert_eq!(c(Func::DoesNotIntersectList, &["<A><B>", "<C><D>"]), "1");
        assert_eq!(c(Func::IntersectsList, &["", "<A>"]), "0");
    }

    #[test]
    fn patterns() {
        assert_eq!(c(Func::Like, &["ADT^A01", "ADT%"]), "1");
        assert_eq!(c(Func::NotLike, &["ADT^A01", "ORU%"]), "1");
        assert_eq!(c(Func::Matches, &["123-45-6789", "3N1\"-\"2N1\"-\"4N"]), "1");
        assert_eq!(c(Func::DoesNotMatch, &["123-45-6789", "3N1\"-\"2N1\"-\"4N"]), "0");
        assert_eq!(c(Func::RegexMatch, &["ORU^R01", "OR[UM]\\^R0[13]"]), "1");
        assert_eq!(
            c(Func::RegexMatch, &["xORU^R01", "OR[UM]\\^R0[13]"]),
            "0",
            "whole value"
        );
        let err = call(Func::RegexMatch, &["a".into(), "(".into()], &BTreeMap::new()).unwrap_err();
        assert!(err.contains("is not a regular expression"), "{err}");
    }

    #[test]
    fn lookups() {
        assert_eq!(c(Func::Lookup, &["Gender", "M"]), "Male");
        assert_eq!(c(Func::Lookup, &["Gender", "X"]), "");
        assert_eq!(c(Func::Lookup, &["Gender", "X", "U"]), "U");
        assert_eq!(
            c(Func::Lookup, &["Gender", "", "U"]),
            "",
            "empty key, defaultOnEmptyInput 0"
        );
        assert_eq!(c(Func::Lookup, &["Gender", "", "U", "2"]), "U");
        assert_eq!(c(Func::Lookup, &["Gender", "", "U", "1"]), "");
        assert_eq!(
            c(Func::Lookup, &["Nope", "M", "U"]),
            "U",
            "a table without the key"
        );
        assert_eq!(
            c(Func::Lookup, &["", "M", "U"]),
            "",
            "no table name, defaultOnEmptyInput 0"
        );
        assert_eq!(c(Func::Lookup, &["", "M", "U", "1"]), "U");
        assert_eq!(c(Func::Lookup, &["", "M", "U", "2"]), "");
        assert_eq!(c(Func::Lookup, &["", "", "U", "3"]), "U");
        assert_eq!(c(Func::Exists, &["Gender", "F"]), "1");
        assert_eq!(c(Func::Exists, &["Gender", "U"]), "0");
    }

    #[test]
    fn string_functions() {
        assert_eq!(c(Func::Length, &["abc"]), "3");
        assert_eq!(c(Func::Length, &["a,b,c", ","]), "3");
        assert_eq!(c(Func::Length, &["", ","]), "1");
        assert_eq!(c(Func::ToUpper, &["adt"]), "ADT");
        assert_eq!(c(Func::ToLower, &["ADT"]), "adt");
        assert_eq!(c(Func::SubString, &["ADT^A01", "5"]), "A01");
        assert_eq!(c(Func::SubString, &["ADT^A01", "1", "3"]), "ADT");
        assert_eq!(c(Func::SubString, &["abc", "3", "1"]), "");
        assert_eq!(c(Func::Piece, &["A,B,C,D"]), "A");
        assert_eq!(c(Func::Piece, &["A^B^C", "^", "2"]), "B");
        assert_eq!(c(Func::Piece, &["A^B^C", "^", "2", "*"]), "B^C");
        assert_eq!(c(Func::Piece, &["A^B^C", "^", "*-1"]), "B");
        assert_eq!(c(Func::ReplaceStr, &["abcabc", "abc", "X"]), "XX");
        assert_eq!(c(Func::Translate, &["abcd", "abc", "AB"]), "ABd");
        assert_eq!(c(Func::Pad, &["7", "-3", "0"]), "007");
        assert_eq!(c(Func::Pad, &["7", "3"]), "7  ");
        assert_eq!(c(Func::Pad, &["7", "-1E99", "0"]).len(), MAX_PAD as usize);
        assert_eq!(c(Func::If, &["1", "yes", "no"]), "yes");
        assert_eq!(c(Func::If, &["0", "yes", "no"]), "no");
        assert_eq!(c(Func::Not, &["0"]), "1");
    }

    #[test]
    fn numbers() {
        assert_eq!(c(Func::Min, &["30", "80", "65"]), "30");
        assert_eq!(c(Func::Max, &["9.125", "6.875"]), "9.125");
        assert_eq!(c(Func::Round, &[".333333", "2"]), ".33");
        assert_eq!(c(Func::Round, &["2.5"]), "3");
    }
}
