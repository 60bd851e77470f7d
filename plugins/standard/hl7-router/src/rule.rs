//! The rule language: `CONDITION -> TARGET[, TARGET…]`.
//!
//! ```text
//! rule      = condition "->" target { "," target }
//! condition = and { "or" and }
//! and       = unary { "and" unary }
//! unary     = "not" unary | "(" condition ")" | test
//! test      = PATH ( "=" value | "!=" value | "in" list | "exists"
//!                  | "contains" value | "starts-with" value | "ends-with" value )
//! list      = "[" value { "," value } "]"
//! value     = "quoted text" | bare-word
//! ```

use std::fmt;

use hie_sdk::SyntaxError;
use hie_sdk::hl7::{Hl7, Path};

/// A parsed rule: when `condition` holds, the message goes to `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The condition on the message.
    pub condition: Condition,
    /// Target items, in the order written.
    pub targets: Vec<String>,
}

/// A boolean condition over HL7 field values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// Either holds.
    Or(Box<Condition>, Box<Condition>),
    /// Does not hold.
    Not(Box<Condition>),
    /// A test on the text at one path.
    Test {
        /// The field path as written, e.g. `MSH-9.1`.
        path: String,
        /// What is checked.
        op: Op,
    },
}

/// A test on one field's text. An absent field reads as empty text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Equal to the value.
    Eq(String),
    /// Not equal to the value.
    Ne(String),
    /// Equal to one of the values.
    In(Vec<String>),
    /// Present and not empty.
    Exists,
    /// Contains the value.
    Contains(String),
    /// Starts with the value.
    StartsWith(String),
    /// Ends with the value.
    EndsWith(String),
}

impl Condition {
    /// Whether the condition holds for `msg`.
    pub fn matches(&self, msg: &Hl7) -> bool {
        match self {
            Condition::And(a, b) => a.matches(msg) && b.matches(msg),
            Condition::Or(a, b) => a.matches(msg) || b.matches(msg),
            Condition::Not(c) => !c.matches(msg),
            Condition::Test { path, op } => {
                let text = msg.get(path).unwrap_or_default();
                match op {
                    Op::Eq(v) => text == *v,
                    Op::Ne(v) => text != *v,
                    Op::In(vs) => vs.contains(&text),
                    Op::Exists => !text.is_empty(),
                    Op::Contains(v) => text.contains(v.as_str()),
                    Op::StartsWith(v) => text.starts_with(v.as_str()),
                    Op::EndsWith(v) => text.ends_with(v.as_str()),
                }
            }
        }
    }
}

/// Why a rule does not parse, and where.
pub type RuleError = SyntaxError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Eq,
    Ne,
    Arrow,
    Comma,
    Open,
    Close,
    OpenList,
    CloseList,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Quoted(q) => write!(f, "\"{q}\""),
            Tok::Eq => f.write_str("`=`"),
            Tok::Ne => f.write_str("`!=`"),
            Tok::Arrow => f.write_str("`->`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
            Tok::OpenList => f.write_str("`[`"),
            Tok::CloseList => f.write_str("`]`"),
        }
    }
}

/// A token and its 1-based column.
type Spanned = (Tok, usize);

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn lex(text: &str) -> Result<Vec<Spanned>, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let err = |reason: &str| RuleError {
            column,
            reason: reason.to_owned(),
        };
        match c {
            c if c.is_whitespace() => i += 1,
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err("unterminated quoted text")),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((Tok::Quoted(value), column));
            }
            '=' => {
                out.push((Tok::Eq, column));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((Tok::Ne, column));
                i += 2;
            }
            '-' if chars.get(i + 1) == Some(&'>') => {
                out.push((Tok::Arrow, column));
                i += 2;
            }
            ',' | '(' | ')' | '[' | ']' => {
                let tok = match c {
                    ',' => Tok::Comma,
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '[' => Tok::OpenList,
                    _ => Tok::CloseList,
                };
                out.push((tok, column));
                i += 1;
            }
            c if is_word_char(c) => {
                let start = i;
                while i < chars.len() {
                    if chars[i] == '-' && chars.get(i + 1) == Some(&'>') {
                        break;
                    }
                    if is_word_char(chars[i]) {
                        i += 1;
                    } else if chars[i] == '(' && i > start && attached_index(&chars[i..]).is_some() {
                        // `PID-3(1)`, `OBX(2)-5`: a repetition or segment index, part of the path
                        i += attached_index(&chars[i..]).unwrap_or(0);
                    } else {
                        break;
                    }
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), column));
            }
            _ => return Err(err(&format!("unexpected character `{c}`"))),
        }
    }
    Ok(out)
}

/// Length of `(digits)` at the start of `rest`, if that is what it holds.
fn attached_index(rest: &[char]) -> Option<usize> {
    let digits = rest.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
    (digits > 0 && rest.get(digits + 1) == Some(&')')).then_some(digits + 2)
}

/// Parses one rule.
pub fn parse(text: &str) -> Result<Rule, RuleError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: text.chars().count() + 1,
    };
    let condition = p.condition()?;
    p.expect(&Tok::Arrow, "`->` and the target items")?;
    let mut targets = vec![p.target()?];
    while p.eat(&Tok::Comma) {
        targets.push(p.target()?);
    }
    if let Some((tok, column)) = p.peek() {
        return Err(RuleError {
            column,
            reason: format!("unexpected {tok} after the targets"),
        });
    }
    Ok(Rule { condition, targets })
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    /// Column just past the end of the text, for "missing" errors.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(Tok, usize)> {
        self.tokens.get(self.pos).cloned()
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let hit = self.peek().is_some_and(|(t, _)| t == *tok);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case(word));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn fail<T>(&self, expected: &str) -> Result<T, RuleError> {
        Err(match self.tokens.get(self.pos) {
            Some((tok, column)) => RuleError {
                column: *column,
                reason: format!("expected {expected}, found {tok}"),
            },
            None => RuleError {
                column: self.end,
                reason: format!("expected {expected} at the end of the rule"),
            },
        })
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<(), RuleError> {
        if self.eat(tok) {
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn condition(&mut self) -> Result<Condition, RuleError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, RuleError> {
        let mut left = self.unary()?;
        while self.eat_word("and") {
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, RuleError> {
        if self.eat_word("not") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::Open) {
            let inner = self.condition()?;
            self.expect(&Tok::Close, "`)`")?;
            return Ok(inner);
        }
        self.test()
    }

    fn test(&mut self) -> Result<Condition, RuleError> {
        let Some((Tok::Word(path), column)) = self.peek() else {
            return self.fail("a field path such as MSH-9.1");
        };
        if let Err(e) = Path::parse(&path) {
            return Err(RuleError {
                column,
                reason: e.to_string(),
            });
        }
        self.pos += 1;
        let op = match self.next() {
            Some((Tok::Eq, _)) => Op::Eq(self.value()?),
            Some((Tok::Ne, _)) => Op::Ne(self.value()?),
            Some((Tok::Word(w), _)) => match w.to_ascii_lowercase().as_str() {
                "in" => Op::In(self.list()?),
                "exists" => Op::Exists,
                "contains" => Op::Contains(self.value()?),
                "starts-with" => Op::StartsWith(self.value()?),
                "ends-with" => Op::EndsWith(self.value()?),
                _ => {
                    self.pos -= 1;
                    return self.fail(OPERATORS);
                }
            },
            _ => {
                self.pos -= 1;
                return self.fail(OPERATORS);
            }
        };
        Ok(Condition::Test { path, op })
    }

    fn value(&mut self) -> Result<String, RuleError> {
        match self.peek() {
            Some((Tok::Quoted(v) | Tok::Word(v), _)) => {
                self.pos += 1;
                Ok(v)
            }
            _ => self.fail("a value (quoted text or a bare word)"),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, RuleError> {
        self.expect(&Tok::OpenList, "`[` and a list of values")?;
        let mut values = vec![self.value()?];
        while self.eat(&Tok::Comma) {
            values.push(self.value()?);
        }
        self.expect(&Tok::CloseList, "`,` or `]`")?;
        Ok(values)
    }

    fn target(&mut self) -> Result<String, RuleError> {
        match self.peek() {
            Some((Tok::Word(w), _)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => self.fail("a target item name"),
        }
    }
}

const OPERATORS: &str = "an operator (=, !=, in, exists, contains, starts-with, ends-with)";

#[cfg(test)]
mod tests {
    use super::*;

    fn test(path: &str, op: Op) -> Condition {
        Condition::Test {
            path: path.into(),
            op,
        }
    }

    #[test]
    fn parses_precedence_and_grouping() {
        let r = parse(r#"MSH-9.1 = "ADT" and MSH-9.2 in ["A01","A04"] or not PID-3(1).1 exists -> pas, ris"#)
            .unwrap();
        assert_eq!(r.targets, ["pas", "ris"]);
        let adt = test("MSH-9.1", Op::Eq("ADT".into()));
        let event = test("MSH-9.2", Op::In(vec!["A01".into(), "A04".into()]));
        let exists = test("PID-3(1).1", Op::Exists);
        assert_eq!(
            r.condition,
            Condition::Or(
                Box::new(Condition::And(Box::new(adt.clone()), Box::new(event.clone()))),
                Box::new(Condition::Not(Box::new(exists)))
            )
        );
        let grouped = parse("MSH-9.1 = ADT and (MSH-9.2 = A01 or OBX(2)-5 starts-with X) -> a").unwrap();
        let Condition::And(_, right) = grouped.condition else {
            panic!("and at the top")
        };
        assert!(matches!(*right, Condition::Or(..)));
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            (
                "MSH-9.1 = -> a",
                11,
                "expected a value (quoted text or a bare word), found `->`",
            ),
            (
                "MSH-9.1 = ADT",
                14,
                "expected `->` and the target items at the end of the rule",
            ),
            ("MSH-9.1 is ADT -> a", 9, "expected an operator"),
            ("(MSH-9.1 exists -> a", 17, "expected `)`, found `->`"),
            (
                "MSH-9.1 in [A01 A04] -> a",
                17,
                "expected `,` or `]`, found `A04`",
            ),
            ("MSH-9.1 = \"ADT -> a", 11, "unterminated quoted text"),
            ("MSH9 exists -> a", 1, "invalid path \"MSH9\""),
            ("MSH-9.1 exists -> a b", 21, "unexpected `b` after the targets"),
            (
                "MSH-9.1 exists ->",
                18,
                "expected a target item name at the end of the rule",
            ),
            ("MSH-9.1 = A & B -> x", 13, "unexpected character `&`"),
        ];
        for (text, column, reason) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.column, column, "{text}: {err}");
            assert!(err.reason.starts_with(reason), "{text}: {err}");
        }
    }

    #[test]
    fn evaluates_against_a_message() {
        let msg = hie_sdk::Message::hl7(
            "MSH|^~\\&|LAB|H|EHR|H|20240101||ORU^R01|1|P|2.5\rPID|1||123^^^MRN~456^^^NHS\rOBX|1|TX|||first\rOBX|2|TX|||second note\r",
        );
        let hl7 = msg.parse_hl7().unwrap();
        let holds = |text: &str| parse(&format!("{text} -> t")).unwrap().condition.matches(&hl7);
        assert!(holds("MSH-9.1 = ORU"));
        assert!(holds("MSH-9.1 != ADT"));
        assert!(holds("PID-3(2).1 = 456"));
        assert!(holds("OBX(2)-5 contains note"));
        assert!(holds("OBX(2)-5 ends-with note and OBX(1)-5 starts-with fi"));
        assert!(holds("PID-8 = \"\""), "an absent field reads as empty");
        assert!(!holds("PID-8 exists"));
        assert!(holds("not PID-8 exists"));
        assert!(holds("MSH-9.2 in [A01, R01]"));
        assert!(!holds("MSH-9.2 in [A01, A04]"));
        assert!(
            holds("MSH-9.2 = X OR MSH-9.2 = R01"),
            "keywords are case-insensitive"
        );
    }
}
