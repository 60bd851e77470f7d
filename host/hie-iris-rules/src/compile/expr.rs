//! The stored condition language of IRIS rules.
//!
//! ```text
//! or       = and { "||" and }
//! and      = concat { "&&" and }
//! concat   = additive { ("&" | "_") additive }
//! additive = product { ("+" | "-") product }
//! product  = compare { ("*" | "/") compare }
//! compare  = unary { ("=" | "!=" | "<" | ">" | "<=" | ">=" | "[" | "'=" | "'[" | "'<" | "'>" | WORD) unary }
//! unary    = ("!" | "'" | "-" | "+") unary | primary
//! primary  = "string" | number | "(" or ")" | NAME "(" args ")" | NAME | ROOT ".{" path "}"
//! ```
//!
//! The precedence is the one the IRIS documentation gives ("Expressions in
//! Business Rules"): comparisons first, then `* /`, `+ -`, concatenation,
//! `&&`, `||`. WORD is a two-argument function written between its arguments
//! (`HL7.{MSH:9.2} In "A01,A04"`); names are case-insensitive.

use crate::model::{BinOp, Expr, Func, Prop};
use crate::pattern::Pattern;
use crate::value::{canonical, number};

/// The four virtual property syntaxes of IRIS rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// `{path}`: a path in the message structure.
    Curly,
    /// `[SEG:field]`: the field in every SEG segment, wherever it is.
    Search,
    /// `(path)`: all values of a path with `()` repetitions.
    Values,
    /// `<xpath>`: XPath into an XML stream property.
    XPath,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(String),
    Name(String),
    /// `ROOT.{body}`, `ROOT.[body]`, `ROOT.(body)` or `ROOT.<body>`.
    Path {
        root: String,
        body: String,
        kind: PathKind,
    },
    Op(&'static str),
    Open,
    Close,
    Comma,
}

/// What a path or property in a condition resolves to; the compiler supplies it.
pub trait Resolver {
    /// `HL7.{body}` / `Document.{body}`.
    fn path(&mut self, body: &str, kind: PathKind) -> Result<Expr, String>;
    /// `Segment.{body}` inside a foreach.
    fn segment_field(&mut self, body: &str) -> Result<Expr, String>;
    /// A lookup table named by a literal (`Lookup("T", …)`), or `None` when the
    /// table name is computed.
    fn table(&mut self, name: Option<&str>);
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

fn err_at(pos: usize, msg: impl std::fmt::Display) -> String {
    format!("at character {}: {msg}", pos + 1)
}

impl Lexer {
    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, String> {
        let mut out = Vec::new();
        loop {
            while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
                self.pos += 1;
            }
            let start = self.pos;
            let Some(&c) = self.chars.get(self.pos) else {
                return Ok(out);
            };
            let next = self.chars.get(self.pos + 1).copied();
            let two = |a: char, b: char| c == a && next == Some(b);
            let tok = if c == '"' {
                self.string()?
            } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
                self.number()
            } else if c.is_alphabetic() || c == '%' || c == '$' || (c == '.' && next == Some('.')) {
                self.name()?
            } else {
                let (op, len): (&'static str, usize) = if two('&', '&') {
                    ("&&", 2)
                } else if two('|', '|') {
                    ("||", 2)
                } else if two('!', '=') {
                    ("!=", 2)
                } else if two('<', '=') {
                    ("<=", 2)
                } else if two('>', '=') {
                    (">=", 2)
                } else if two('\'', '=') {
                    ("'=", 2)
                } else if two('\'', '[') {
                    ("'[", 2)
                } else if two('\'', '<') {
                    ("'<", 2)
                } else if two('\'', '>') {
                    ("'>", 2)
                } else if two('=', '=') {
                    return Err(err_at(start, "`==` is not an operator: write `=` to compare"));
                } else {
                    match c {
                        '=' => ("=", 1),
                        '<' => ("<", 1),
                        '>' => (">", 1),
                        '!' => ("!", 1),
                        '\'' => ("'", 1),
                        '[' => ("[", 1),
                        '+' => ("+", 1),
                        '-' => ("-", 1),
                        '*' => ("*", 1),
                        '/' => ("/", 1),
                        '&' => ("&", 1),
                        '_' => ("_", 1),
                        '(' => ("(", 1),
                        ')' => (")", 1),
                        ',' => (",", 1),
                        '|' => return Err(err_at(start, "a single `|` is not an operator: `||` is or")),
                        other => return Err(err_at(start, format!("unexpected character `{other}`"))),
                    }
                };
                self.pos += len;
                match op {
                    "(" => Tok::Open,
                    ")" => Tok::Close,
                    "," => Tok::Comma,
                    op => Tok::Op(op),
                }
            };
            out.push((start, tok));
        }
    }

    fn string(&mut self) -> Result<Tok, String> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => return Err(err_at(start, "string without its closing `\"`")),
                Some('"') if self.chars.get(self.pos + 1) == Some(&'"') => {
                    s.push('"');
                    self.pos += 2;
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(Tok::Str(s));
                }
                Some(&c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || *c == '.')
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        Tok::Num(canonical(number(&text)))
    }

    fn name(&mut self) -> Result<Tok, String> {
        let start = self.pos;
        while self.chars.get(self.pos) == Some(&'.') {
            self.pos += 1;
        }
        loop {
            match self.chars.get(self.pos) {
                Some(c) if c.is_alphanumeric() || *c == '%' || *c == '$' => self.pos += 1,
                Some('.') => {
                    let after = self.chars.get(self.pos + 1).copied();
                    if after == Some('(') || after == Some('<') {
                        // HL7.(multi-valued path) and HL7.<xpath>: bodies may nest ()
                        let root: String = self.chars[start..self.pos].iter().collect();
                        let (open, close) = if after == Some('(') {
                            ('(', ')')
                        } else {
                            ('<', '>')
                        };
                        let body_start = self.pos + 2;
                        let mut depth = 1;
                        let mut end = None;
                        for (i, c) in self.chars[body_start..].iter().enumerate() {
                            if *c == open {
                                depth += 1;
                            } else if *c == close {
                                depth -= 1;
                                if depth == 0 {
                                    end = Some(body_start + i);
                                    break;
                                }
                            }
                        }
                        let Some(end) = end else {
                            return Err(err_at(
                                start,
                                format!("`{root}.{open}` without its closing `{close}`"),
                            ));
                        };
                        let body: String = self.chars[body_start..end].iter().collect();
                        self.pos = end + 1;
                        let kind = if open == '(' {
                            PathKind::Values
                        } else {
                            PathKind::XPath
                        };
                        return Ok(Tok::Path { root, body, kind });
                    }
                    if after == Some('{') || after == Some('[') {
                        let root: String = self.chars[start..self.pos].iter().collect();
                        let close = if after == Some('{') { '}' } else { ']' };
                        let body_start = self.pos + 2;
                        let Some(len) = self.chars[body_start..].iter().position(|c| *c == close) else {
                            return Err(err_at(
                                start,
                                format!("`{root}.{}` without its closing `{close}`", after.unwrap_or(' ')),
                            ));
                        };
                        let body: String = self.chars[body_start..body_start + len].iter().collect();
                        self.pos = body_start + len + 1;
                        let kind = if close == ']' {
                            PathKind::Search
                        } else {
                            PathKind::Curly
                        };
                        return Ok(Tok::Path { root, body, kind });
                    }
                    if after.is_some_and(|c| c.is_alphanumeric() || c == '%') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                _ => break,
            }
        }
        Ok(Tok::Name(self.chars[start..self.pos].iter().collect()))
    }
}

struct Parser<'r> {
    toks: Vec<(usize, Tok)>,
    i: usize,
    end: usize,
    resolver: &'r mut dyn Resolver,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|(p, _)| *p).unwrap_or(self.end)
    }

    fn eat_op(&mut self, ops: &[&str]) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Op(op)) if ops.contains(op) => {
                let op = *op;
                self.i += 1;
                Some(op)
            }
            _ => None,
        }
    }

    /// `word` written as an operator (`AND`, `OR`: how the rule editor shows `&&`, `||`).
    fn eat_word(&mut self, word: &str) -> bool {
        // only ever reached where an operator may stand, so never a value
        let is_word = matches!(self.peek(), Some(Tok::Name(n)) if n.eq_ignore_ascii_case(word));
        if is_word {
            self.i += 1;
        }
        is_word
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat_op(&["||"]).is_some() || self.eat_word("or") {
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.concat()?;
        while self.eat_op(&["&&"]).is_some() || self.eat_word("and") {
            let r = self.concat()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn concat(&mut self) -> Result<Expr, String> {
        let mut l = self.additive()?;
        while self.eat_op(&["&", "_"]).is_some() {
            let r = self.additive()?;
            l = Expr::Bin(BinOp::Concat, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut l = self.product()?;
        while let Some(op) = self.eat_op(&["+", "-"]) {
            let r = self.product()?;
            let op = if op == "+" { BinOp::Add } else { BinOp::Sub };
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut l = self.compare()?;
        while let Some(op) = self.eat_op(&["*", "/"]) {
            let r = self.compare()?;
            let op = if op == "*" { BinOp::Mul } else { BinOp::Div };
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    /// A word operator at this point (a two-argument function name not followed by `(`).
    fn word_operator(&self) -> Option<Func> {
        let Some(Tok::Name(name)) = self.peek() else {
            return None;
        };
        if matches!(self.toks.get(self.i + 1), Some((_, Tok::Open))) {
            return None;
        }
        Func::from_name(name).filter(|f| f.is_operator())
    }

    fn compare(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        loop {
            if let Some(f) = self.word_operator() {
                self.i += 1;
                let r = self.unary()?;
                l = self.call(f, vec![l, r])?;
                continue;
            }
            let Some(op) = self.eat_op(&["=", "!=", "<", ">", "<=", ">=", "[", "'=", "'[", "'<", "'>"])
            else {
                return Ok(l);
            };
            let r = self.unary()?;
            let (op, negate) = match op {
                "=" => (BinOp::Eq, false),
                "!=" | "'=" => (BinOp::Ne, false),
                "<" => (BinOp::Lt, false),
                ">" => (BinOp::Gt, false),
                "<=" => (BinOp::Le, false),
                ">=" => (BinOp::Ge, false),
                "[" => (BinOp::Contains, false),
                "'[" => (BinOp::NotContains, false),
                // ObjectScript: '< is "not less than", '> "not greater than"
                "'<" => (BinOp::Lt, true),
                _ => (BinOp::Gt, true),
            };
            let e = Expr::Bin(op, Box::new(l), Box::new(r));
            l = if negate { Expr::Not(Box::new(e)) } else { e };
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.eat_op(&["!", "'", "-", "+"]) {
            Some("!" | "'") => Ok(Expr::Not(Box::new(self.unary()?))),
            Some("-") => match self.unary()? {
                Expr::Num(n) => Ok(Expr::Num(canonical(-number(&n)))),
                e => Ok(Expr::Neg(Box::new(e))),
            },
            Some(_) => Ok(Expr::Plus(Box::new(self.unary()?))),
            None => self.primary(),
        }
    }

    fn expected(&self, what: &str) -> String {
        let found = match self.peek() {
            None => "the end".to_owned(),
            Some(Tok::Str(s)) => format!("\"{s}\""),
            Some(Tok::Num(n)) => n.clone(),
            Some(Tok::Name(n)) => format!("`{n}`"),
            Some(Tok::Path { root, body, .. }) => format!("`{root}` path `{body}`"),
            Some(Tok::Op(op)) => format!("`{op}`"),
            Some(Tok::Open) => "`(`".into(),
            Some(Tok::Close) => "`)`".into(),
            Some(Tok::Comma) => "`,`".into(),
        };
        err_at(self.pos(), format!("expected {what}, found {found}"))
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let pos = self.pos();
        let Some(tok) = self.peek().cloned() else {
            return Err(self.expected("a value"));
        };
        self.i += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Open => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(self.expected("`)`"));
                }
                self.i += 1;
                Ok(e)
            }
            Tok::Path { root, body, kind } => {
                if kind == PathKind::XPath {
                    return Err(err_at(
                        pos,
                        format!(
                            "`{root}.<{body}>` (XPath into an XML stream property) does not apply to HL7 v2 messages"
                        ),
                    ));
                }
                if root.eq_ignore_ascii_case("HL7") || root.eq_ignore_ascii_case("Document") {
                    self.resolver.path(&body, kind).map_err(|e| err_at(pos, e))
                } else if root.eq_ignore_ascii_case("Segment") && kind == PathKind::Curly {
                    self.resolver.segment_field(&body).map_err(|e| err_at(pos, e))
                } else {
                    Err(err_at(
                        pos,
                        format!(
                            "`{root}.{{…}}`: only HL7.{{…}}, Document.{{…}} and Segment.{{…}} paths are supported"
                        ),
                    ))
                }
            }
            Tok::Name(name) => {
                if self.peek() == Some(&Tok::Open) {
                    self.i += 1;
                    let bare = name.trim_start_matches('.');
                    let Some(f) = Func::from_name(bare) else {
                        return Err(err_at(
                            pos,
                            format!(
                                "`{name}()` is not an IRIS built-in function HIE knows (a custom function class does not carry over)"
                            ),
                        ));
                    };
                    let mut args = Vec::new();
                    if self.peek() == Some(&Tok::Close) {
                        self.i += 1;
                    } else {
                        loop {
                            // an omitted argument (`Lookup("T",x,,"U")`) is the empty string
                            if matches!(self.peek(), Some(Tok::Comma | Tok::Close)) {
                                args.push(Expr::Str(String::new()));
                            } else {
                                args.push(self.or()?);
                            }
                            match self.peek() {
                                Some(Tok::Comma) => self.i += 1,
                                Some(Tok::Close) => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return Err(self.expected("`,` or `)`")),
                            }
                        }
                    }
                    let (min, max) = f.arity();
                    if args.len() < min || args.len() > max {
                        let want = if min == max {
                            min.to_string()
                        } else {
                            format!("{min} to {max}")
                        };
                        return Err(err_at(
                            pos,
                            format!("{}() takes {want} arguments, found {}", f.name(), args.len()),
                        ));
                    }
                    return self.call(f, args);
                }
                property(&name).ok_or_else(|| {
                    err_at(
                        pos,
                        format!("`{name}` is not a property HIE can read (supported: Source, HL7.Name, HL7.DocType, HL7.DocTypeName, HL7.DocTypeCategory, HL7.TypeVersion, HL7.ParentId, HL7.{{path}})"),
                    )
                })
            }
            Tok::Op(_) | Tok::Close | Tok::Comma => {
                self.i -= 1;
                Err(self.expected("a value"))
            }
        }
    }

    /// A function call, with literal arguments checked (and patterns parsed) now.
    fn call(&mut self, f: Func, args: Vec<Expr>) -> Result<Expr, String> {
        let literal = |i: usize| match args.get(i) {
            Some(Expr::Str(s) | Expr::Num(s)) => Some(s.clone()),
            _ => None,
        };
        match f {
            Func::Matches | Func::DoesNotMatch => {
                if let Some(p) = literal(1) {
                    let pattern = Pattern::parse(&p)?;
                    let mut args = args;
                    let value = args.swap_remove(0);
                    return Ok(Expr::Matches(Box::new(value), pattern, f == Func::DoesNotMatch));
                }
            }
            Func::RegexMatch => {
                if let Some(p) = literal(1) {
                    regex_lite::Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("RegexMatch: {p:?} is not a regular expression: {e}"))?;
                }
            }
            Func::Lookup | Func::Exists => {
                let table = literal(0);
                self.resolver.table(table.as_deref());
            }
            _ => {}
        }
        Ok(Expr::Call(f, args))
    }
}

fn property(name: &str) -> Option<Expr> {
    let lower = name.to_ascii_lowercase();
    let (root, prop) = match lower.split_once('.') {
        Some((r, p)) => (r, p),
        None => ("", lower.as_str()),
    };
    let p = match (root, prop) {
        ("", "source") => Prop::Source,
        ("", "msgclass") => Prop::MsgClass,
        ("hl7" | "document", "name") => Prop::Name,
        ("hl7" | "document", "doctype") => Prop::DocType,
        ("hl7" | "document", "doctypename") => Prop::DocTypeName,
        ("hl7" | "document", "doctypecategory") => Prop::DocTypeCategory,
        ("hl7" | "document", "typeversion") => Prop::TypeVersion,
        ("hl7" | "document", "parentid") => Prop::ParentId,
        _ => return None,
    };
    Some(Expr::Prop(p))
}

/// Parses a stored condition or value expression.
pub fn parse(text: &str, resolver: &mut dyn Resolver) -> Result<Expr, String> {
    let chars: Vec<char> = text.chars().collect();
    let end = chars.len();
    let toks = Lexer { chars, pos: 0 }.tokens()?;
    if toks.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut p = Parser {
        toks,
        i: 0,
        end,
        resolver,
    };
    let e = p.or()?;
    if p.i < p.toks.len() {
        return Err(p.expected("an operator or the end"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths become string literals naming them, so trees are easy to compare.
    struct Names(Vec<Option<String>>);

    impl Resolver for Names {
        fn path(&mut self, body: &str, kind: PathKind) -> Result<Expr, String> {
            if body == "BAD" {
                return Err("no such path".into());
            }
            Ok(Expr::Str(match kind {
                PathKind::Curly => format!("path:{body}"),
                other => format!("{other:?}:{body}"),
            }))
        }
        fn segment_field(&mut self, body: &str) -> Result<Expr, String> {
            Ok(Expr::Str(format!("seg:{body}")))
        }
        fn table(&mut self, name: Option<&str>) {
            self.0.push(name.map(str::to_owned));
        }
    }

    fn p(text: &str) -> Result<Expr, String> {
        parse(text, &mut Names(Vec::new()))
    }

    fn s(v: &str) -> Box<Expr> {
        Box::new(Expr::Str(v.into()))
    }

    fn n(v: &str) -> Box<Expr> {
        Box::new(Expr::Num(v.into()))
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = p(r#"HL7.{MSH:9.1}="ADT"&&HL7.{MSH:9.2}="A01"||HL7.{MSH:9.1}="ORU""#).unwrap();
        let Expr::Bin(BinOp::Or, l, r) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(*l, Expr::Bin(BinOp::And, _, _)));
        assert_eq!(*r, Expr::Bin(BinOp::Eq, s("path:MSH:9.1"), s("ORU")));
    }

    #[test]
    fn comparisons_bind_tighter_than_arithmetic_as_documented() {
        // IRIS: logical/comparison operators first, then * /, then + -
        let e = p("1+2=3").unwrap();
        assert_eq!(
            e,
            Expr::Bin(BinOp::Add, n("1"), Box::new(Expr::Bin(BinOp::Eq, n("2"), n("3"))))
        );
        let e = p("(1+2)=3").unwrap();
        assert_eq!(
            e,
            Expr::Bin(BinOp::Eq, Box::new(Expr::Bin(BinOp::Add, n("1"), n("2"))), n("3"))
        );
        let e = p("1+2.5*2").unwrap();
        assert_eq!(
            e,
            Expr::Bin(
                BinOp::Add,
                n("1"),
                Box::new(Expr::Bin(BinOp::Mul, n("2.5"), n("2")))
            )
        );
    }

    #[test]
    fn strings_double_their_quotes() {
        assert_eq!(p(r#""say ""hi""""#).unwrap(), Expr::Str("say \"hi\"".into()));
        assert_eq!(p(r#""""#).unwrap(), Expr::Str(String::new()));
        assert!(p(r#""open"#).unwrap_err().contains("closing"));
    }

    #[test]
    fn numbers_are_canonical() {
        assert_eq!(p("1").unwrap(), Expr::Num("1".into()));
        assert_eq!(p("01.50").unwrap(), Expr::Num("1.5".into()));
        assert_eq!(p("-0.5").unwrap(), Expr::Num("-.5".into()));
    }

    #[test]
    fn and_or_as_words() {
        assert_eq!(p("1 AND 0 or 1").unwrap(), p("1 && 0 || 1").unwrap());
        assert_eq!(p("1 and (0 Or 1)").unwrap(), p("1&&(0||1)").unwrap());
    }

    #[test]
    fn unary_not_and_objectscript_negations() {
        assert_eq!(p("!1").unwrap(), Expr::Not(n("1")));
        assert_eq!(
            p(r#"HL7.{PID:8}'="""#).unwrap(),
            Expr::Bin(BinOp::Ne, s("path:PID:8"), s(""))
        );
        assert_eq!(
            p(r#""abc"'["x""#).unwrap(),
            Expr::Bin(BinOp::NotContains, s("abc"), s("x"))
        );
        assert_eq!(
            p("2'<1").unwrap(),
            Expr::Not(Box::new(Expr::Bin(BinOp::Lt, n("2"), n("1"))))
        );
        assert_eq!(
            p(r#"!(HL7.{MSH:9.1}="ADT")"#).unwrap(),
            Expr::Not(Box::new(Expr::Bin(BinOp::Eq, s("path:MSH:9.1"), s("ADT"))))
        );
    }

    #[test]
    fn word_operators_infix_or_as_functions_any_case() {
        let want = Expr::Call(
            Func::Contains,
            vec![Expr::Str("path:MSH:9".into()), Expr::Str("ADT".into())],
        );
        assert_eq!(p(r#"HL7.{MSH:9} Contains "ADT""#).unwrap(), want);
        assert_eq!(p(r#"HL7.{MSH:9} contains "ADT""#).unwrap(), want);
        assert_eq!(p(r#"CONTAINS(HL7.{MSH:9},"ADT")"#).unwrap(), want);
        for word in [
            "DoesNotContain",
            "In",
            "NotIn",
            "StartsWith",
            "DoesNotStartWith",
            "Like",
            "NotLike",
            "IntersectsList",
            "DoesNotIntersectList",
            "RegexMatch",
        ] {
            let e = p(&format!(r#"HL7.{{MSH:9.2}} {word} "A01,A04""#)).unwrap();
            let Expr::Call(f, args) = e else { panic!("{word}") };
            assert_eq!(f.name(), word);
            assert_eq!(args.len(), 2);
        }
        // infix word operators sit with the comparisons, under && and ||
        let e = p(r#"HL7.{MSH:9.2} In "A01,A04" && HL7.{PV1:2}="I""#).unwrap();
        assert!(matches!(e, Expr::Bin(BinOp::And, _, _)), "{e:?}");
    }

    #[test]
    fn literal_patterns_are_parsed_once() {
        let e = p(r#"Matches(HL7.{PID:3.1},"3N1""-""4N")"#).unwrap();
        let Expr::Matches(_, pattern, false) = e else {
            panic!("{e:?}")
        };
        assert!(pattern.matches("123-4567"));
        let e = p(r#"HL7.{PID:3.1} DoesNotMatch "1.N""#).unwrap();
        assert!(matches!(e, Expr::Matches(_, _, true)));
        assert!(
            p(r#"Matches(HL7.{PID:3.1},"N")"#)
                .unwrap_err()
                .contains("repeat count")
        );
        assert!(
            p(r#"RegexMatch(HL7.{PID:3.1},"(")"#)
                .unwrap_err()
                .contains("regular expression")
        );
    }

    #[test]
    fn functions_check_their_arguments() {
        assert!(p("ToUpper()").unwrap_err().contains("takes 1 arguments, found 0"));
        assert!(
            p(r#"MyPkg.Check(HL7.{PID:3})"#)
                .unwrap_err()
                .contains("not an IRIS built-in function")
        );
        assert!(
            p(r#"$LENGTH(HL7.{PID:3})>0"#)
                .unwrap_err()
                .contains("not an IRIS built-in function")
        );
        // an omitted argument is empty, ..Name is the ObjectScript spelling
        let e = p(r#"..Lookup("Gender",HL7.{PID:8},,"U")"#).unwrap();
        assert_eq!(
            e,
            Expr::Call(
                Func::Lookup,
                vec![
                    Expr::Str("Gender".into()),
                    Expr::Str("path:PID:8".into()),
                    Expr::Str(String::new()),
                    Expr::Str("U".into())
                ]
            )
        );
        let mut names = Names(Vec::new());
        parse(
            r#"Exists("Routes",HL7.{MSH:4}) || Lookup(ToUpper("t"),"x")="y""#,
            &mut names,
        )
        .unwrap();
        assert_eq!(names.0, vec![Some("Routes".to_owned()), None]);
    }

    #[test]
    fn properties() {
        assert_eq!(p("Source").unwrap(), Expr::Prop(Prop::Source));
        assert_eq!(p("HL7.Name").unwrap(), Expr::Prop(Prop::Name));
        assert_eq!(p("Document.DocType").unwrap(), Expr::Prop(Prop::DocType));
        assert_eq!(p("HL7.ParentId").unwrap(), Expr::Prop(Prop::ParentId));
        assert!(p("context.Limit > 5").unwrap_err().contains("not a property"));
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(
            p(r#"HL7.{MSH:9}="A" &&"#).unwrap_err(),
            "at character 19: expected a value, found the end"
        );
        assert_eq!(
            p(r#"1 2"#).unwrap_err(),
            "at character 3: expected an operator or the end, found 2"
        );
        assert!(p("a == b").unwrap_err().contains("`==` is not an operator"));
        assert!(p("HL7.{BAD}").unwrap_err().contains("no such path"));
        assert!(p("HL7.<//fracture>").unwrap_err().contains("XPath"));
        assert!(p("(1").unwrap_err().contains("expected `)`"));
        assert!(p("").unwrap_err().contains("empty"));
    }

    #[test]
    fn the_other_path_syntaxes() {
        assert_eq!(p("HL7.[OBX:5]").unwrap(), Expr::Str("Search:OBX:5".into()));
        assert_eq!(p("HL7.(NK1():1)").unwrap(), Expr::Str("Values:NK1():1".into()));
        assert_eq!(
            p(r#"Document.(OBX():3.1) [ "K""#).unwrap(),
            Expr::Bin(BinOp::Contains, s("Values:OBX():3.1"), s("K"))
        );
        assert!(p("HL7.(NK1():1").unwrap_err().contains("without its closing"));
    }

    #[test]
    fn segment_fields_and_concatenation() {
        assert_eq!(
            p(r#"Segment.{ObservationIdentifier}_"x""#).unwrap(),
            Expr::Bin(BinOp::Concat, s("seg:ObservationIdentifier"), s("x"))
        );
        assert_eq!(p(r#""a"&"b""#).unwrap(), Expr::Bin(BinOp::Concat, s("a"), s("b")));
    }
}
