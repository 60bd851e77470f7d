//! ObjectScript value semantics: every value is a string; numbers are read from
//! a string's numeric prefix; `1`/`0` are true/false.
//!
//! IRIS compiles rule conditions to ObjectScript, so a condition behaves as
//! ObjectScript does: `=` and `!=` compare strings exactly, `<` `>` `<=` `>=`
//! compare numbers (a string with no numeric prefix reads as 0), and a value is
//! true when its number is not zero.

/// The number a string reads as in ObjectScript: its longest numeric prefix
/// (`"12abc"` → 12, `"abc"` → 0, `" 1"` → 0, `"--3"` → 3, `"1.5E2x"` → 150).
pub fn number(s: &str) -> f64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    while i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        if b[i] == b'-' {
            negative = !negative;
        }
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut end = i;
    if i < b.len() && b[i] == b'.' {
        let mut j = i + 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > i + 1 {
            end = j;
        }
        i = j;
    }
    if end == start {
        return 0.0;
    }
    // an exponent counts only when digits follow it
    if i == end && i < b.len() && (b[i] == b'E' || b[i] == b'e') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let digits = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > digits {
            end = j;
        }
    }
    let text = &s[start..end];
    let value: f64 = text.parse().unwrap_or(0.0);
    if negative { -value } else { value }
}

/// True when `s` is a canonical number already (what ObjectScript `+s=s` tests).
pub fn is_number(s: &str) -> bool {
    !s.is_empty() && canonical(number(s)) == s
}

/// The canonical ObjectScript form of a number: no `+`, no leading zero before
/// the point, no trailing zeros (`0.50` → `.5`, `-0.5` → `-.5`, `3.0` → `3`).
pub fn canonical(n: f64) -> String {
    if !n.is_finite() {
        return String::new();
    }
    if n == 0.0 {
        return "0".into();
    }
    // 15 significant digits hide binary noise (0.1 + 0.2 prints as .3)
    let digits = 14 - n.abs().log10().floor() as i32;
    let mut text = if digits > 0 {
        format!("{:.*}", digits.min(17) as usize, n)
    } else {
        format!("{:.0}", n)
    };
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if let Some(rest) = text.strip_prefix("0.") {
        text = format!(".{rest}");
    } else if let Some(rest) = text.strip_prefix("-0.") {
        text = format!("-.{rest}");
    }
    text
}

/// ObjectScript truth: the value's number is not zero.
pub fn truthy(s: &str) -> bool {
    number(s) != 0.0
}

/// `"1"` or `"0"`.
pub fn boolean(b: bool) -> String {
    if b { "1".into() } else { "0".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_prefix_as_objectscript_reads_it() {
        let cases = [
            ("12abc", 12.0),
            ("abc", 0.0),
            ("", 0.0),
            (" 1", 0.0),
            ("--3", 3.0),
            ("-+-2", 2.0),
            ("-2", -2.0),
            ("1.5E2x", 150.0),
            ("1E", 1.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("007", 7.0),
            ("20240101120000", 20240101120000.0),
        ];
        for (text, want) in cases {
            assert_eq!(number(text), want, "{text:?}");
        }
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical(0.5), ".5");
        assert_eq!(canonical(-0.5), "-.5");
        assert_eq!(canonical(3.0), "3");
        assert_eq!(canonical(0.1 + 0.2), ".3");
        assert_eq!(canonical(1.0 / 3.0), ".333333333333333");
        assert_eq!(canonical(120.0), "120");
        assert_eq!(canonical(20240101120000.0), "20240101120000");
        assert!(is_number("12"));
        assert!(!is_number("012"));
        assert!(!is_number("1.0"));
        assert!(!is_number(""));
        assert!(is_number("-.5"));
    }

    #[test]
    fn truth() {
        assert!(truthy("1"));
        assert!(truthy("2abc"));
        assert!(!truthy("abc"));
        assert!(!truthy(""));
        assert!(!truthy("0.0"));
    }
}
