//! Mapping steps: one `map.N` setting each.
//!
//! ```text
//! set PATH = VALUE              text, separators escaped (VALUE: the rest, or "quoted")
//! set-raw PATH = VALUE          raw ER7, e.g. DOE^JANE
//! copy PATH -> PATH             raw copy; an empty source clears the destination
//! clear PATH                    empties the value; separators stay
//! translate PATH via TABLE [-> PATH] [else keep | else clear | else error | else VALUE]
//! ```

use hie_sdk::hl7::{Hl7, Path};
use hie_sdk::{Failure, SyntaxError, host};

/// What a `translate` does when the table has no entry for the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Leave the destination as it is (for an in-place translate: the original value).
    Keep,
    /// Clear the destination.
    Clear,
    /// Fail the message with code `no-translation`.
    Error,
    /// Write this value.
    Value(String),
}

/// One edit of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write text at a path.
    Set {
        /// Where.
        path: String,
        /// What; escaped on write.
        value: String,
    },
    /// Write raw ER7 at a path.
    SetRaw {
        /// Where.
        path: String,
        /// What, as ER7.
        raw: String,
    },
    /// Copy the raw value at `from` to `to`.
    Copy {
        /// Source path.
        from: String,
        /// Destination path.
        to: String,
    },
    /// Empty a path.
    Clear {
        /// Where.
        path: String,
    },
    /// Replace the value at `from` by its entry in `table`, written to `to`.
    Translate {
        /// Source path.
        from: String,
        /// The host lookup table.
        table: String,
        /// Destination path (the source unless `-> PATH` is given).
        to: String,
        /// What to do without an entry.
        missing: Missing,
    },
}

impl Step {
    /// Applies this step to `msg`.
    pub fn apply(&self, msg: &mut Hl7) -> Result<(), Failure> {
        match self {
            Step::Set { path, value } => msg.set(path, value),
            Step::SetRaw { path, raw } => msg.set_raw(path, raw),
            Step::Clear { path } => clear(msg, path),
            Step::Copy { from, to } => match msg.get_raw(from).filter(|v| !v.is_empty()) {
                Some(raw) => msg.set_raw(to, &raw),
                None => clear(msg, to),
            },
            Step::Translate {
                from,
                table,
                to,
                missing,
            } => {
                let value = msg.get(from).unwrap_or_default();
                match (host::lookup(table, &value), missing) {
                    (Some(mapped), _) => msg.set(to, &mapped),
                    (None, Missing::Value(fallback)) => msg.set(to, fallback),
                    (None, Missing::Keep) if to == from => Ok(()),
                    (None, Missing::Keep) => msg.set(to, &value),
                    (None, Missing::Clear) => clear(msg, to),
                    (None, Missing::Error) => Err(Failure::permanent(
                        "no-translation",
                        format!("no entry in lookup table {table} for the value at {from}"),
                    )),
                }
            }
        }
    }
}

/// Empties the value at `path` if it exists. Separators stay, so the fields
/// after it keep their positions and the rest of the segment its bytes.
fn clear(msg: &mut Hl7, path: &str) -> Result<(), Failure> {
    match msg.get_raw(path) {
        Some(_) => msg.set_raw(path, ""),
        None => Ok(()),
    }
}

/// Why a step does not parse, and where.
pub type StepError = SyntaxError;

/// Splits `text` into words (with their 1-based columns) up to the end or to `=`.
struct Words<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Words<'t> {
    fn column(&self) -> usize {
        self.text[..self.pos].chars().count() + 1
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn err<T>(&mut self, reason: impl Into<String>) -> Result<T, StepError> {
        self.skip_space();
        Err(StepError {
            column: self.column(),
            reason: reason.into(),
        })
    }

    /// The next whitespace-separated word and its column.
    fn word(&mut self) -> Option<(&'t str, usize)> {
        self.skip_space();
        let rest = &self.text[self.pos..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        let column = self.column();
        self.pos += len;
        Some((&rest[..len], column))
    }

    fn path(&mut self) -> Result<String, StepError> {
        match self.word() {
            Some((w, column)) => match Path::parse(w) {
                Ok(_) => Ok(w.to_owned()),
                Err(e) => Err(StepError {
                    column,
                    reason: e.to_string(),
                }),
            },
            None => self.err("expected a field path such as PID-3(1).1 at the end"),
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), StepError> {
        let save = self.pos;
        match self.word() {
            Some((w, _)) if w == keyword => Ok(()),
            Some((w, _)) => {
                self.pos = save;
                self.err(format!("expected `{keyword}`, found `{w}`"))
            }
            None => self.err(format!("expected `{keyword}` at the end")),
        }
    }

    /// The rest of the text as a value: a quoted string, or the trimmed bare text.
    fn value(&mut self) -> Result<String, StepError> {
        self.skip_space();
        let rest = self.text[self.pos..].trim_end();
        if rest.is_empty() {
            return self.err("expected a value at the end");
        }
        let Some(quoted) = rest.strip_prefix('"') else {
            self.pos = self.text.len();
            return Ok(rest.to_owned());
        };
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    self.pos += i + 2;
                    return Ok(value);
                }
                c => value.push(c),
            }
        }
        self.err("unterminated quoted value")
    }

    fn end(&mut self) -> Result<(), StepError> {
        match self.word() {
            None => Ok(()),
            Some((w, column)) => Err(StepError {
                column,
                reason: format!("unexpected `{w}`"),
            }),
        }
    }
}

/// Parses one step.
pub fn parse(text: &str) -> Result<Step, StepError> {
    let mut w = Words { text, pos: 0 };
    let step = match w.word() {
        Some(("set", _)) => {
            let path = w.path()?;
            w.keyword("=")?;
            Step::Set {
                path,
                value: w.value()?,
            }
        }
        Some(("set-raw", _)) => {
            let path = w.path()?;
            w.keyword("=")?;
            Step::SetRaw {
                path,
                raw: w.value()?,
            }
        }
        Some(("copy", _)) => {
            let from = w.path()?;
            w.keyword("->")?;
            Step::Copy { from, to: w.path()? }
        }
        Some(("clear", _)) => Step::Clear { path: w.path()? },
        Some(("translate", _)) => translate(&mut w)?,
        Some((other, column)) => {
            return Err(StepError {
                column,
                reason: format!(
                    "unknown operation `{other}`: expected set, set-raw, copy, clear or translate"
                ),
            });
        }
        None => return w.err("empty: expected set, set-raw, copy, clear or translate"),
    };
    w.end()?;
    Ok(step)
}

fn translate(w: &mut Words<'_>) -> Result<Step, StepError> {
    let from = w.path()?;
    w.keyword("via")?;
    let Some((table, _)) = w.word() else {
        return w.err("expected a lookup table name at the end");
    };
    let save = w.pos;
    let to = match w.word() {
        Some(("->", _)) => w.path()?,
        _ => {
            w.pos = save;
            from.clone()
        }
    };
    let save = w.pos;
    let missing = match w.word() {
        Some(("else", _)) => {
            let save = w.pos;
            match w.word() {
                Some(("keep", _)) => Missing::Keep,
                Some(("clear", _)) => Missing::Clear,
                Some(("error", _)) => Missing::Error,
                _ => {
                    w.pos = save;
                    Missing::Value(w.value()?)
                }
            }
        }
        _ => {
            w.pos = save;
            Missing::Keep
        }
    };
    Ok(Step::Translate {
        from,
        table: table.to_owned(),
        to,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_operation() {
        let set = |path: &str, value: &str| Step::Set {
            path: path.into(),
            value: value.into(),
        };
        assert_eq!(parse("set PID-8 = F").unwrap(), set("PID-8", "F"));
        assert_eq!(
            parse("set OBX-5 = two words ").unwrap(),
            set("OBX-5", "two words")
        );
        assert_eq!(
            parse(r#"set OBX-5 = " padded \"x\" ""#).unwrap(),
            set("OBX-5", " padded \"x\" ")
        );
        assert_eq!(
            parse("set-raw PID-5 = DOE^JANE").unwrap(),
            Step::SetRaw {
                path: "PID-5".into(),
                raw: "DOE^JANE".into()
            }
        );
        assert_eq!(
            parse("copy PID-3(1).1 -> PID-2").unwrap(),
            Step::Copy {
                from: "PID-3(1).1".into(),
                to: "PID-2".into()
            }
        );
        assert_eq!(
            parse("clear PID-19").unwrap(),
            Step::Clear {
                path: "PID-19".into()
            }
        );
        let tr = |to: &str, missing| Step::Translate {
            from: "PV1-3.1".into(),
            table: "wards".into(),
            to: to.into(),
            missing,
        };
        assert_eq!(
            parse("translate PV1-3.1 via wards").unwrap(),
            tr("PV1-3.1", Missing::Keep)
        );
        assert_eq!(
            parse("translate PV1-3.1 via wards -> ZPV-1").unwrap(),
            tr("ZPV-1", Missing::Keep)
        );
        assert_eq!(
            parse("translate PV1-3.1 via wards else error").unwrap(),
            tr("PV1-3.1", Missing::Error)
        );
        assert_eq!(
            parse("translate PV1-3.1 via wards else clear").unwrap(),
            tr("PV1-3.1", Missing::Clear)
        );
        assert_eq!(
            parse("translate PV1-3.1 via wards -> ZPV-1 else \"UNKNOWN\"").unwrap(),
            tr("ZPV-1", Missing::Value("UNKNOWN".into()))
        );
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("cpy PID-3 -> PID-2", 1, "unknown operation `cpy`"),
            ("set PID8 = F", 5, "invalid path \"PID8\""),
            ("set PID-8 F", 11, "expected `=`, found `F`"),
            ("set PID-8 =", 12, "expected a value at the end"),
            ("copy PID-3 PID-2", 12, "expected `->`, found `PID-2`"),
            ("clear PID-19 PID-20", 14, "unexpected `PID-20`"),
            (
                "translate PV1-3.1 via",
                22,
                "expected a lookup table name at the end",
            ),
            ("set PID-8 = \"F", 13, "unterminated quoted value"),
            ("   ", 4, "empty"),
        ];
        for (text, column, reason) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.column, column, "{text}: {err}");
            assert!(err.reason.starts_with(reason), "{text}: {err}");
        }
    }
}
