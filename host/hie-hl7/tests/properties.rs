//! Property tests: generated messages round-trip byte-exact, set-then-get returns what was
//! set, escape/unescape round-trip, paths print and parse back.

use hie_hl7::{Delimiters, Message, OwnedMessage, Path, escape, unescape};
use proptest::prelude::*;

/// Delimiter candidates; `.` is left out because formatting escapes (`\.br\`) contain it.
const PUNCTUATION: &[u8] = b"!\"#$%&'()*+,-/:;<=>?@[\\]^_`{|}~";

/// Five (or six, with a v2.7 truncation character) distinct delimiters in random roles.
fn delimiters() -> impl Strategy<Value = Delimiters> {
    (
        proptest::sample::subsequence(PUNCTUATION, 6).prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(|(d, truncation)| Delimiters {
            field: d[0],
            component: d[1],
            repetition: d[2],
            escape: d[3],
            subcomponent: d[4],
            truncation: truncation.then_some(d[5]),
        })
}

/// Leaf text: letters, digits, spaces, non-ASCII characters and escape sequences.
fn leaf(d: Delimiters) -> BoxedStrategy<String> {
    let esc = char::from(d.escape);
    let piece = prop_oneof![
        6 => "[A-Za-z0-9 ]{1,6}",
        1 => "[éü漢🩺]",
        1 => proptest::sample::select(vec!["F", "S", "T", "R", "E", "X0D0A", ".br", "H", "N"])
            .prop_map(move |code| format!("{esc}{code}{esc}")),
    ];
    proptest::collection::vec(piece, 0..3)
        .prop_map(|pieces| pieces.concat())
        .boxed()
}

/// Joins strategies' outputs with a separator, `n` times.
fn joined(inner: BoxedStrategy<String>, sep: u8, max: usize) -> BoxedStrategy<String> {
    proptest::collection::vec(inner, 1..=max)
        .prop_map(move |parts| parts.join(&char::from(sep).to_string()))
        .boxed()
}

fn field(d: Delimiters) -> BoxedStrategy<String> {
    let component = joined(leaf(d), d.subcomponent, 2);
    let repetition = joined(component, d.component, 3);
    joined(repetition, d.repetition, 2)
}

fn segment_name() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9]{2}".prop_filter("header names", |n| {
        !["MSH", "FHS", "BHS", "BTS", "FTS"].contains(&n.as_str())
    })
}

/// A whole message with random delimiters, as text, and whether it ends with `\r`.
fn message() -> impl Strategy<Value = (String, Delimiters)> {
    delimiters().prop_flat_map(|d| {
        let msh_fields = proptest::collection::vec(field(d), 6);
        let segment = (segment_name(), proptest::collection::vec(field(d), 0..8));
        let segments = proptest::collection::vec(segment, 0..8);
        (msh_fields, segments, any::<bool>()).prop_map(move |(msh, segments, final_cr)| {
            let f = char::from(d.field).to_string();
            let c = char::from(d.component);
            let mut text = format!("MSH{f}{}{f}{}", d.encoding_characters(), msh.join(&f));
            text.push_str(&format!("{f}ADT{c}A01{f}CTRL{f}P{f}2.5"));
            for (name, fields) in segments {
                text.push('\r');
                text.push_str(&name);
                for value in fields {
                    text.push_str(&f);
                    text.push_str(&value);
                }
            }
            if final_cr {
                text.push('\r');
            }
            (text, d)
        })
    })
}

/// A path that can be written and read back: no MSH-1/2, no MSH fields the parser requires.
fn writable_path() -> impl Strategy<Value = String> {
    let sub = (1usize..4).prop_map(|s| format!(".{s}"));
    let component =
        (1usize..5, proptest::option::of(sub)).prop_map(|(c, s)| format!(".{c}{}", s.unwrap_or_default()));
    let repetition = (1usize..4).prop_map(|r| format!("({r})"));
    let tail = (proptest::option::of(repetition), proptest::option::of(component))
        .prop_map(|(r, c)| format!("{}{}", r.unwrap_or_default(), c.unwrap_or_default()));
    let other = (
        prop_oneof![Just("PID".to_owned()), Just("OBX".to_owned()), segment_name()],
        1usize..4,
        1usize..15,
    )
        .prop_map(|(name, n, field)| format!("{name}({n})-{field}"));
    let msh =
        proptest::sample::select(vec![3usize, 4, 5, 6, 7, 8, 10, 11, 13]).prop_map(|f| format!("MSH-{f}"));
    (prop_oneof![3 => other, 1 => msh], tail).prop_map(|(head, tail)| format!("{head}{tail}"))
}

/// Arbitrary text, biased towards delimiter and control characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[|^~\\\\&#\r\n\t\u{0}\u{b}\u{1c}a-z .é]{0,24}"]
}

const BASE: &[u8] =
    b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H^MR||DOE^JOHN\rOBX|1|ST|X||v\r";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn generated_messages_round_trip_byte_exact((text, d) in message()) {
        let message = Message::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(*message.delimiters(), d);
        prop_assert_eq!(message.to_bytes(), text.as_bytes());
        prop_assert_eq!(message.to_owned_message().to_bytes(), text.as_bytes());
        prop_assert_eq!(message.control_id(), Some("CTRL".to_owned()));
        let lf = text.replace('\r', "\n");
        prop_assert_eq!(Message::parse(lf.as_bytes()).unwrap().to_bytes(), text.as_bytes());
    }

    #[test]
    fn set_then_get_returns_what_was_set(path in writable_path(), value in any_text()) {
        let mut message = OwnedMessage::parse(BASE).unwrap();
        message.set(&path, &value).unwrap();
        prop_assert_eq!(message.get(&path).unwrap(), Some(value.clone()));
        let target = &path.as_bytes()[..3];
        let untouched = |m: &OwnedMessage| -> Vec<Vec<u8>> {
            m.segments().filter(|s| s.name().as_bytes() != target).map(|s| s.raw().to_vec()).collect()
        };
        prop_assert_eq!(untouched(&message), untouched(&OwnedMessage::parse(BASE).unwrap()));
        let bytes = message.to_bytes();
        let reparsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(reparsed.get(&path).unwrap(), Some(value.clone()));
        if !path.starts_with("MSH-10") {
            prop_assert_eq!(reparsed.control_id(), Some("1".to_owned()));
        }
        if !path.starts_with("PID(1)-5") {
            prop_assert_eq!(reparsed.get("PID-5.2").unwrap(), Some("JOHN".to_owned()));
        }
    }

    #[test]
    fn set_then_get_in_latin1(path in writable_path(), value in "[\\x{20}-\\x{ff}]{0,24}") {
        let base = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5|||||FRA|8859/1\r";
        let mut message = OwnedMessage::parse(base).unwrap();
        message.set(&path, &value).unwrap();
        let bytes = message.to_bytes();
        prop_assert!(value.is_ascii() || bytes.iter().any(|b| *b >= 0x80));
        prop_assert_eq!(Message::parse(&bytes).unwrap().get(&path).unwrap(), Some(value));
    }

    #[test]
    fn clear_after_set_reads_empty_or_absent(path in writable_path(), value in any_text()) {
        let mut message = OwnedMessage::parse(BASE).unwrap();
        message.set(&path, &value).unwrap();
        message.clear(&path).unwrap();
        let after = message.get(&path).unwrap();
        prop_assert!(after.as_deref().is_none_or(str::is_empty), "{:?}", after);
    }

    #[test]
    fn escape_then_unescape_is_identity(text in any_text(), d in delimiters()) {
        let escaped = escape(&text, &d);
        let unescaped = unescape(escaped.as_bytes(), &d);
        prop_assert_eq!(unescaped.as_ref(), text.as_bytes());
        let structural = [d.field, d.component, d.repetition, d.subcomponent, b'\r', b'\n', 0];
        prop_assert!(!escaped.bytes().any(|b| structural.contains(&b) || Some(b) == d.truncation));
    }

    #[test]
    fn paths_print_and_parse_back(path in writable_path()) {
        let parsed = Path::parse(&path).unwrap();
        prop_assert_eq!(parsed.to_string(), path.clone());
        prop_assert_eq!(parsed.to_string().parse::<Path>().unwrap(), parsed);
    }
}
