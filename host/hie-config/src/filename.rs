//! `file-out` file names: HIE templates (`{id}`, `{session}`, `{n}`) and IRIS
//! `Filename` specifications (`%f_%Q%!+(_a)`), parsed once when the production is
//! checked and rendered for each message by the engine.
//!
//! IRIS semantics follow `Ens.Util.File.CreateTimestamp()` and "Time Stamp
//! Specifications for Filenames" in the IRIS documentation:
//! - `%f` and `%F` are the source file name of the message (the `file.name`
//!   property a `file-in` service sets; empty when the message did not come from a
//!   file), stripped of `|?\/:[]<>&,;`, NUL, BEL, TAB, CR and LF;
//! - time codes give the local time at writing: `%Y %y %m %d %H %I %M %S %j %p %a
//!   %A %b %B %D`, `%q` (ODBC `YYYY-MM-DD HH:MM:SS`) and `%Q` (the same with
//!   milliseconds); a `#` after the `%` drops leading zeros (`%#d`);
//! - `%+(nn)`, `%#+(nn)`, `%!+(nn)`, `%#!+(nn)`, `%$+(nn)`, `%#$+(nn)`: an
//!   alphanumeric counter made unique in the target directory (`!`: used only if the
//!   name without it exists; `$`: incremented for every file; `#`: leading
//!   non-significant `0`/`a` characters omitted);
//! - `%%` is a literal `%`;
//! - in the final name spaces become `_`, `/` become `-` and `:` become `.`.
//!
//! Codes whose meaning could not be confirmed from the IRIS documentation (`%c`,
//! `%x`, `%X`, `%s`, `%N`, `%K`, `%L`, `%U`, `%W`, `%w`, `%Z`, …) are refused when
//! the production is checked rather than guessed.

use std::fmt::Write as _;

/// A parsed `file-out` file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilenameSpec {
    parts: Vec<Part>,
    /// Whether the name uses IRIS codes (then spaces, `/` and `:` are replaced).
    iris: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{id}`: a fresh UUIDv7 per file.
    Id,
    /// `{session}`: the message's session id.
    Session,
    /// `{n}`: files written by this worker so far.
    Count,
    /// `%f` / `%F`.
    Source,
    Time(TimeCode, bool),
    Unique(Unique),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeCode {
    Year4,
    Year2,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    DayOfYear,
    AmPm,
    WeekdayShort,
    WeekdayLong,
    MonthShort,
    MonthLong,
    /// `%D` = `%m/%d/%y`.
    Date,
    /// `%q`.
    Odbc,
    /// `%Q`.
    OdbcMillis,
}

/// How the `+` counter is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueMode {
    /// `%+(nn)`: always present, incremented while the name exists.
    Always,
    /// `%!+(nn)`: left out unless the name without it exists.
    IfExists,
    /// `%$+(nn)`: incremented for every file, then while the name exists.
    Sequence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Unique {
    mode: UniqueMode,
    /// `#`: leading non-significant `0`/`a`/`A` characters omitted.
    trim: bool,
    seed: String,
}

/// The moment a file is written, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Year, e.g. 2026.
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// 0–999.
    pub millis: u32,
    /// 1–366.
    pub day_of_year: u32,
    /// 0 = Sunday … 6 = Saturday.
    pub weekday: u32,
}

/// What a file name may refer to besides the time.
#[derive(Debug, Clone, Copy)]
pub struct NameContext<'a> {
    /// A fresh id for this file (`{id}`).
    pub id: &'a str,
    /// The message's session (`{session}`).
    pub session: &'a str,
    /// Files written before this one by the worker (`{n}`).
    pub count: u64,
    /// The source file name of the message (`%f`), if it came from a file.
    pub source: Option<&'a str>,
    /// The time of writing.
    pub stamp: Stamp,
    /// For `%$+`: how many files this item wrote before (the counter's start).
    pub sequence: u64,
}

const IRIS_STRIPPED: &[char] = &[
    '|', '?', '\\', '/', ':', '[', ']', '<', '>', '&', ',', ';', '\0', '\u{7}', '\t', '\n', '\r',
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl FilenameSpec {
    /// Parse a template; the error says which code is wrong.
    pub fn parse(text: &str) -> Result<FilenameSpec, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut iris = false;
        let mut uniques = 0;
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let flush = |literal: &mut String, parts: &mut Vec<Part>| {
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(literal)));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '{' {
                let rest: String = chars[i..].iter().collect();
                let token = [
                    ("{id}", Part::Id),
                    ("{session}", Part::Session),
                    ("{n}", Part::Count),
                ]
                .into_iter()
                .find(|(t, _)| rest.starts_with(t));
                if let Some((t, part)) = token {
                    flush(&mut literal, &mut parts);
                    parts.push(part);
                    i += t.chars().count();
                    continue;
                }
                literal.push(c);
                i += 1;
                continue;
            }
            if c != '%' {
                literal.push(c);
                i += 1;
                continue;
            }
            iris = true;
            let start = i;
            i += 1;
            let mut trim = false;
            let mut mode = UniqueMode::Always;
            let mut flagged = false;
            while i < chars.len() && matches!(chars[i], '#' | '!' | '$') {
                match chars[i] {
                    '#' => trim = true,
                    '!' => {
                        mode = UniqueMode::IfExists;
                        flagged = true;
                    }
                    _ => {
                        mode = UniqueMode::Sequence;
                        flagged = true;
                    }
                }
                i += 1;
            }
            let Some(&code) = chars.get(i) else {
                return Err(format!(
                    "{text:?} ends with an incomplete code after '%' (write %% for a literal %)"
                ));
            };
            i += 1;
            let spelled: String = chars[start..i].iter().collect();
            if code == '+' {
                if chars.get(i) != Some(&'(') {
                    return Err(format!(
                        "{spelled} in {text:?} needs a counter in parentheses, e.g. %+(000)"
                    ));
                }
                let Some(close) = chars[i..].iter().position(|&c| c == ')') else {
                    return Err(format!("{spelled}( in {text:?} is not closed with ')'"));
                };
                let seed: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                uniques += 1;
                if uniques > 1 {
                    return Err(format!("{text:?} has more than one %+ counter"));
                }
                flush(&mut literal, &mut parts);
                parts.push(Part::Unique(Unique { mode, trim, seed }));
                continue;
            }
            if flagged {
                return Err(format!(
                    "{spelled} in {text:?}: '!' and '$' only apply to the %+ counter"
                ));
            }
            let part = match code {
                '%' => {
                    literal.push('%');
                    continue;
                }
                'f' | 'F' => Part::Source,
                'Y' => Part::Time(TimeCode::Year4, trim),
                'y' => Part::Time(TimeCode::Year2, trim),
                'm' => Part::Time(TimeCode::Month, trim),
                'd' => Part::Time(TimeCode::Day, trim),
                'H' => Part::Time(TimeCode::Hour24, trim),
                'I' => Part::Time(TimeCode::Hour12, trim),
                'M' => Part::Time(TimeCode::Minute, trim),
                'S' => Part::Time(TimeCode::Second, trim),
                'j' => Part::Time(TimeCode::DayOfYear, trim),
                'p' => Part::Time(TimeCode::AmPm, trim),
                'a' => Part::Time(TimeCode::WeekdayShort, trim),
                'A' => Part::Time(TimeCode::WeekdayLong, trim),
                'b' => Part::Time(TimeCode::MonthShort, trim),
                'B' => Part::Time(TimeCode::MonthLong, trim),
                'D' => Part::Time(TimeCode::Date, trim),
                'q' => Part::Time(TimeCode::Odbc, trim),
                'Q' => Part::Time(TimeCode::OdbcMillis, trim),
                other => {
                    return Err(format!(
                        "%{other} in {text:?} is not a supported file name code (supported: %f %F %Y %y %m %d %H %I %M %S %j %p %a %A %b %B %D %q %Q, '#' to drop leading zeros, %+(nn) with '!', '$' or '#', and %%)"
                    ));
                }
            };
            flush(&mut literal, &mut parts);
            parts.push(part);
        }
        flush(&mut literal, &mut parts);
        if parts.is_empty() {
            return Err("the file name must not be empty".into());
        }
        Ok(FilenameSpec { parts, iris })
    }

    /// Whether the name has a `%+` counter in `%$+` (sequence) mode.
    pub fn unique_mode(&self) -> Option<UniqueMode> {
        self.parts.iter().find_map(|p| match p {
            Part::Unique(u) => Some(u.mode),
            _ => None,
        })
    }

    /// Whether the name holds `{id}`: only then does a writer need a fresh UUID per file.
    pub fn uses_id(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Id))
    }

    /// Whether the name holds a time code: only then does a writer need the local time.
    pub fn uses_time(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Time(..)))
    }

    /// The file name for one message. `exists` says whether a name is taken in the
    /// target directory (used by the `%+` counter only).
    pub fn render(&self, ctx: &NameContext<'_>, exists: &dyn Fn(&str) -> bool) -> String {
        let Some(unique) = self.parts.iter().find_map(|p| match p {
            Part::Unique(u) => Some(u),
            _ => None,
        }) else {
            return self.assemble(ctx, None);
        };
        let mut counter = unique.seed.clone();
        match unique.mode {
            UniqueMode::IfExists => {
                let plain = self.assemble(ctx, Some(""));
                if !exists(&plain) {
                    return plain;
                }
            }
            UniqueMode::Sequence => counter = advance(&counter, ctx.sequence),
            UniqueMode::Always => {}
        }
        // a bound keeps a full directory from spinning forever; the last name is used
        for _ in 0..100_000 {
            let name = self.assemble(ctx, Some(&shown(&counter, unique.trim)));
            if !exists(&name) {
                return name;
            }
            counter = increment(&counter);
        }
        self.assemble(ctx, Some(&shown(&counter, unique.trim)))
    }

    fn assemble(&self, ctx: &NameContext<'_>, counter: Option<&str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Id => out.push_str(ctx.id),
                Part::Session => out.push_str(ctx.session),
                Part::Count => {
                    let _ = write!(out, "{}", ctx.count);
                }
                Part::Source => out.extend(
                    ctx.source
                        .unwrap_or_default()
                        .chars()
                        .filter(|c| !IRIS_STRIPPED.contains(c)),
                ),
                Part::Time(code, trim) => time(&mut out, *code, *trim, &ctx.stamp),
                Part::Unique(_) => out.push_str(counter.unwrap_or_default()),
            }
        }
        if self.iris {
            out = out
                .chars()
                .map(|c| match c {
                    ' ' => '_',
                    '/' => '-',
                    ':' => '.',
                    c => c,
                })
                .collect();
        }
        out
    }
}

fn time(out: &mut String, code: TimeCode, trim: bool, s: &Stamp) {
    let num = |out: &mut String, v: u32, width: usize| {
        if trim {
            let _ = write!(out, "{v}");
        } else {
            let _ = write!(out, "{v:0width$}");
        }
    };
    match code {
        TimeCode::Year4 => {
            let _ = write!(out, "{:04}", s.year);
        }
        TimeCode::Year2 => num(out, s.year.rem_euclid(100) as u32, 2),
        TimeCode::Month => num(out, s.month, 2),
        TimeCode::Day => num(out, s.day, 2),
        TimeCode::Hour24 => num(out, s.hour, 2),
        TimeCode::Hour12 => num(out, (s.hour + 11) % 12 + 1, 2),
        TimeCode::Minute => num(out, s.minute, 2),
        TimeCode::Second => num(out, s.second, 2),
        TimeCode::DayOfYear => num(out, s.day_of_year, 3),
        TimeCode::AmPm => out.push_str(if s.hour < 12 { "AM" } else { "PM" }),
        TimeCode::WeekdayShort => out.push_str(&WEEKDAYS[s.weekday as usize % 7][..3]),
        TimeCode::WeekdayLong => out.push_str(WEEKDAYS[s.weekday as usize % 7]),
        TimeCode::MonthShort => out.push_str(&MONTHS[(s.month as usize + 11) % 12][..3]),
        TimeCode::MonthLong => out.push_str(MONTHS[(s.month as usize + 11) % 12]),
        TimeCode::Date => {
            num(out, s.month, 2);
            out.push('/');
            num(out, s.day, 2);
            out.push('/');
            num(out, s.year.rem_euclid(100) as u32, 2);
        }
        TimeCode::Odbc | TimeCode::OdbcMillis => {
            let _ = write!(
                out,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                s.year, s.month, s.day, s.hour, s.minute, s.second
            );
            if code == TimeCode::OdbcMillis {
                let _ = write!(out, ".{:03}", s.millis);
            }
        }
    }
}

/// The counter with `#`: leading `0`/`a`/`A` alphanumerics dropped.
fn shown(counter: &str, trim: bool) -> String {
    if !trim {
        return counter.to_string();
    }
    let mut significant = false;
    counter
        .chars()
        .filter(|&c| {
            if significant || !c.is_ascii_alphanumeric() {
                return true;
            }
            if matches!(c, '0' | 'a' | 'A') {
                return false;
            }
            significant = true;
            true
        })
        .collect()
}

/// The next counter value: the rightmost alphanumeric character steps
/// (`0-9`, `a-z`, `A-Z`), carrying left like an odometer; a carry out of the
/// leftmost one adds a digit or letter (`9` → `10`, `z` → `ba`). Other
/// characters stay where they are; a counter without alphanumerics gets `1`.
/// `counter` incremented `n` times (as [`increment`] does, one step at a time), in
/// time proportional to its length: each alphanumeric character is a digit (base 10,
/// or base 26 for letters), and a carry past the first one adds a digit of its kind.
fn advance(counter: &str, n: u64) -> String {
    if n == 0 {
        return counter.to_string();
    }
    let mut chars: Vec<char> = counter.chars().collect();
    if !chars.iter().any(char::is_ascii_alphanumeric) {
        chars.push('0');
    }
    let digit = |c: char| -> (u64, u8, u64) {
        match c {
            '0'..='9' => (10, b'0', u64::from(c as u8 - b'0')),
            'a'..='z' => (26, b'a', u64::from(c as u8 - b'a')),
            _ => (26, b'A', u64::from(c as u8 - b'A')),
        }
    };
    let mut carry = n;
    let mut first = 0;
    for i in (0..chars.len()).rev() {
        if !chars[i].is_ascii_alphanumeric() {
            continue;
        }
        first = i;
        if carry == 0 {
            continue;
        }
        let (radix, base, value) = digit(chars[i]);
        let total = value + carry;
        chars[i] = char::from(base + (total % radix) as u8);
        carry = total / radix;
    }
    let (radix, base, _) = digit(chars[first]);
    while carry > 0 {
        chars.insert(first, char::from(base + (carry % radix) as u8));
        carry /= radix;
    }
    chars.into_iter().collect()
}

fn increment(counter: &str) -> String {
    let mut chars: Vec<char> = counter.chars().collect();
    let mut i = chars.len();
    let mut first_alnum = None;
    while i > 0 {
        i -= 1;
        let c = chars[i];
        if !c.is_ascii_alphanumeric() {
            continue;
        }
        first_alnum = Some(i);
        let (next, carry) = match c {
            '9' => ('0', true),
            'z' => ('a', true),
            'Z' => ('A', true),
            c => (char::from(c as u8 + 1), false),
        };
        chars[i] = next;
        if !carry {
            return chars.into_iter().collect();
        }
    }
    match first_alnum {
        Some(pos) => {
            let lead = match chars[pos] {
                '0' => '1',
                'a' => 'b',
                _ => 'B',
            };
            chars.insert(pos, lead);
        }
        None => chars.push('1'),
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            year: 2026,
            month: 3,
            day: 7,
            hour: 14,
            minute: 5,
            second: 9,
            millis: 42,
            day_of_year: 66,
            weekday: 6,
        }
    }

    fn ctx(source: Option<&str>) -> NameContext<'_> {
        NameContext {
            id: "ID",
            session: "SESSION",
            count: 3,
            source,
            stamp: stamp(),
            sequence: 0,
        }
    }

    fn render(spec: &str, source: Option<&str>, taken: &[&str]) -> String {
        let spec = FilenameSpec::parse(spec).unwrap();
        spec.render(&ctx(source), &|n| taken.contains(&n))
    }

    #[test]
    fn hie_templates_are_kept() {
        assert_eq!(render("{id}.hl7", None, &[]), "ID.hl7");
        assert_eq!(render("{session}-{n}.txt", None, &[]), "SESSION-3.txt");
        // no IRIS code: nothing is replaced
        assert_eq!(render("a b:{id}", None, &[]), "a b:ID");
    }

    #[test]
    fn iris_default_filename() {
        // the default of EnsLib.HL7.Operation.FileOperation
        assert_eq!(
            render("%f_%Q%!+(_a)", Some("adt in.hl7"), &[]),
            "adt_in.hl7_2026-03-07_14.05.09.042"
        );
        assert_eq!(
            render("%f_%Q%!+(_a)", Some("x.hl7"), &["x.hl7_2026-03-07_14.05.09.042"]),
            "x.hl7_2026-03-07_14.05.09.042_a"
        );
        assert_eq!(
            render(
                "%f_%Q%!+(_a)",
                Some("x.hl7"),
                &["x.hl7_2026-03-07_14.05.09.042", "x.hl7_2026-03-07_14.05.09.042_a"]
            ),
            "x.hl7_2026-03-07_14.05.09.042_b"
        );
    }

    #[test]
    fn time_codes() {
        assert_eq!(
            render("%H%M_ORM_O01_%f.txt", Some("in.txt"), &[]),
            "1405_ORM_O01_in.txt.txt"
        );
        assert_eq!(render("%Y%m%d%H%M%S", None, &[]), "20260307140509");
        assert_eq!(render("%#d-%#m-%y", None, &[]), "7-3-26");
        assert_eq!(
            render("%j %p %I %a %A %b %B", None, &[]),
            "066_PM_02_Sat_Saturday_Mar_March"
        );
        assert_eq!(render("%D", None, &[]), "03-07-26");
        assert_eq!(render("%q", None, &[]), "2026-03-07_14.05.09");
        assert_eq!(render("100%%.txt", None, &[]), "100%.txt");
    }

    #[test]
    fn source_names_are_stripped() {
        assert_eq!(
            render("%f", Some("a|b?c\\d/e:f[g]h<i>j&k,l;m\tn"), &[]),
            "abcdefghijklmn"
        );
        assert_eq!(render("out_%F", None, &[]), "out_");
    }

    #[test]
    fn counters() {
        assert_eq!(render("f%+(000)", None, &[]), "f000");
        assert_eq!(render("f%+(000)", None, &["f000", "f001"]), "f002");
        assert_eq!(render("f%#+(000)", None, &[]), "f");
        assert_eq!(render("f%#+(000)", None, &["f"]), "f1");
        assert_eq!(render("f%#!+(0)", None, &[]), "f");
        let spec = FilenameSpec::parse("f%$+(00)").unwrap();
        let mut c = ctx(None);
        c.sequence = 12;
        assert_eq!(spec.render(&c, &|_| false), "f12");
        assert_eq!(spec.render(&c, &|n| n == "f12"), "f13");
        assert_eq!(increment("09"), "10");
        assert_eq!(increment("99"), "100");
        assert_eq!(increment("_z"), "_ba");
        assert_eq!(increment("a9"), "b0");
        assert_eq!(increment("--"), "--1");
    }

    #[test]
    fn refused_codes() {
        for bad in ["%c", "%s", "%x", "%", "%+", "%+(1", "%!Y", "%+(1)%+(2)", ""] {
            assert!(FilenameSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let e = FilenameSpec::parse("out_%N.hl7").unwrap_err();
        assert!(e.contains("%N"), "{e}");
    }

    #[test]
    fn advance_is_repeated_increment() {
        for seed in ["", "0", "9", "a", "z", "Z", "0a", "_a9", "x-9z", "ZZ", "000"] {
            let mut stepped = seed.to_string();
            for n in 0..3000u64 {
                assert_eq!(advance(seed, n), stepped, "{seed:?} + {n}");
                stepped = increment(&stepped);
            }
        }
    }
}
