//! Batch files: `FHS`/`BHS` … `BTS`/`FTS` envelopes, or plain files of several messages.

use crate::error::ParseError;
use crate::util::printable;

/// Splits a batch (or a file of consecutive messages) into message byte slices.
///
/// Each slice starts at an `MSH` segment and keeps its own terminators, so it parses
/// byte-exact. `FHS`, `BHS`, `BTS` and `FTS` segments are dropped. `\r`, `\n` and `\r\n`
/// all end segments. An envelope with no message gives an empty list.
pub fn split(input: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let mut messages = Vec::new();
    let mut current: Option<usize> = None;
    for (index, (start, end)) in segment_spans(input).enumerate() {
        let segment = input.get(start..end).unwrap_or_default();
        if segment.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let name = segment.get(..3).unwrap_or(segment);
        match name {
            b"FHS" | b"BHS" | b"BTS" | b"FTS" | b"MSH" => {
                if let Some(from) = current.take() {
                    messages.push(input.get(from..start).unwrap_or_default());
                }
                if name == b"MSH" {
                    current = Some(start);
                }
            }
            _ if current.is_none() => {
                return Err(ParseError::Batch {
                    index: index + 1,
                    name: printable(name),
                    reason: "segment is outside of any message (no MSH before it)".to_owned(),
                });
            }
            _ => {}
        }
    }
    if let Some(from) = current {
        messages.push(input.get(from..).unwrap_or_default());
    }
    Ok(messages)
}

/// Spans of lines: each `(start, end)` excludes its terminator; the next begins after it.
fn segment_spans(input: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    let mut ends = input
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\r' || **b == b'\n')
        .map(|(i, _)| i)
        .chain(std::iter::once(input.len()));
    std::iter::from_fn(move || {
        if start > input.len() {
            return None;
        }
        let end = ends.next()?;
        let span = (start, end);
        start = end + 1;
        Some(span)
    })
}
