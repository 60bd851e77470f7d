//! Field paths: `MSH-9.1`, `PID-3(2).1`, `OBX(3)-5`, `PID-5.1.1`.

use std::fmt;
use std::str::FromStr;

use crate::error::PathError;

/// A parsed field path `SEG[(n)]-F[(r)][.C[.S]]`; all indexes are 1-based.
///
/// `PID-3` is the whole field (every repetition); `PID-3(2)` its second repetition;
/// `PID-3.1` the first component of the first repetition; `PID-5.1.1` a subcomponent;
/// `OBX(3)-5` field 5 of the third OBX segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    segment: [u8; 3],
    segment_index: Option<usize>,
    field: usize,
    repetition: Option<usize>,
    component: Option<usize>,
    subcomponent: Option<usize>,
}

impl Path {
    /// Parses a path; whitespace is not allowed.
    pub fn parse(s: &str) -> Result<Path, PathError> {
        let err = |reason: &str| PathError::Syntax {
            path: s.to_owned(),
            reason: reason.to_owned(),
        };
        let bytes = s.as_bytes();
        let name = bytes
            .get(..3)
            .ok_or_else(|| err("a path starts with a 3-character segment name"))?;
        if !is_segment_name(name) {
            return Err(err("segment name must be 3 uppercase letters or digits"));
        }
        let mut segment = [0u8; 3];
        segment.copy_from_slice(name);
        let mut cursor = Cursor {
            rest: bytes.get(3..).unwrap_or_default(),
        };
        let segment_index = cursor.index_in_parens().map_err(&err)?;
        if !cursor.eat(b'-') {
            return Err(err("expected '-' and a field number after the segment"));
        }
        let field = cursor
            .number()
            .map_err(&err)?
            .ok_or_else(|| err("missing field number"))?;
        let repetition = cursor.index_in_parens().map_err(&err)?;
        let mut component = None;
        let mut subcomponent = None;
        if cursor.eat(b'.') {
            component = Some(
                cursor
                    .number()
                    .map_err(&err)?
                    .ok_or_else(|| err("missing component"))?,
            );
            if cursor.eat(b'.') {
                let sub = cursor
                    .number()
                    .map_err(&err)?
                    .ok_or_else(|| err("missing subcomponent"))?;
                subcomponent = Some(sub);
            }
        }
        if !cursor.rest.is_empty() {
            return Err(err("unexpected characters after the path"));
        }
        Ok(Path {
            segment,
            segment_index,
            field,
            repetition,
            component,
            subcomponent,
        })
    }

    /// `MSH-<field>[.<component>]`, for the crate's own reads.
    pub(crate) const fn msh(field: usize, component: Option<usize>) -> Path {
        Path {
            segment: *b"MSH",
            segment_index: None,
            field,
            repetition: None,
            component,
            subcomponent: None,
        }
    }

    /// The segment name, e.g. `PID`.
    pub fn segment(&self) -> &str {
        std::str::from_utf8(&self.segment).unwrap_or_default()
    }

    pub(crate) fn segment_bytes(&self) -> &[u8; 3] {
        &self.segment
    }

    /// Which occurrence of the segment (1-based; 1 when not given).
    pub fn segment_index(&self) -> usize {
        self.segment_index.unwrap_or(1)
    }

    /// The field number (1-based; MSH-1 is the field separator).
    pub fn field(&self) -> usize {
        self.field
    }

    /// The repetition, if the path names one (a component path implies repetition 1).
    pub fn repetition(&self) -> Option<usize> {
        self.repetition.or(self.component.map(|_| 1))
    }

    /// The component, if any.
    pub fn component(&self) -> Option<usize> {
        self.component
    }

    /// The subcomponent, if any.
    pub fn subcomponent(&self) -> Option<usize> {
        self.subcomponent
    }
}

/// True for an HL7 segment name: three uppercase ASCII letters or digits.
pub(crate) fn is_segment_name(name: &[u8]) -> bool {
    name.len() == 3 && name.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Larger indexes are refused so a path cannot make [`crate::OwnedMessage::set`] allocate without bound.
const MAX_INDEX: usize = 100_000;

struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn eat(&mut self, b: u8) -> bool {
        match self.rest.split_first() {
            Some((first, rest)) if *first == b => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// A positive decimal number, or `None` if no digit follows.
    fn number(&mut self) -> Result<Option<usize>, &'static str> {
        let digits = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Ok(None);
        }
        let (text, rest) = self.rest.split_at_checked(digits).unwrap_or_default();
        self.rest = rest;
        let value = text.iter().try_fold(0usize, |n, d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        });
        match value {
            Some(0) => Err("indexes are 1-based, 0 is not allowed"),
            Some(n) if n <= MAX_INDEX => Ok(Some(n)),
            _ => Err("index is too large"),
        }
    }

    fn index_in_parens(&mut self) -> Result<Option<usize>, &'static str> {
        if !self.eat(b'(') {
            return Ok(None);
        }
        let n = self.number()?.ok_or("expected a number inside parentheses")?;
        if !self.eat(b')') {
            return Err("missing ')'");
        }
        Ok(Some(n))
    }
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Path, PathError> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())?;
        if let Some(n) = self.segment_index {
            write!(f, "({n})")?;
        }
        write!(f, "-{}", self.field)?;
        if let Some(r) = self.repetition {
            write!(f, "({r})")?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}
