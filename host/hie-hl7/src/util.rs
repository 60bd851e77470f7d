//! Small byte helpers shared by the parser and the editor.

/// A short, printable rendering of untrusted bytes for error messages (at most 16 bytes).
pub(crate) fn printable(bytes: &[u8]) -> String {
    let shown = bytes.get(..16).unwrap_or(bytes);
    let mut s = String::new();
    for &b in shown {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > shown.len() {
        s.push('…');
    }
    s
}

/// The `n`th (0-based) piece of `raw` split on `sep`, or `None` if there are fewer pieces.
pub(crate) fn nth_piece(raw: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    // a plain loop: pieces are short, so SIMD search set-up would cost more than it saves
    let mut seen = 0;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == sep {
            if seen == n {
                return raw.get(start..i);
            }
            seen += 1;
            start = i + 1;
        }
    }
    if seen == n { raw.get(start..) } else { None }
}

/// Replaces the `n`th (0-based) piece of `raw` split on `sep` with what `edit` returns,
/// adding empty pieces when there are fewer. With `trim`, and when every piece after
/// the `n`th is empty, trailing empty pieces are dropped (keeping at least `keep`).
pub(crate) fn splice_piece(
    raw: &[u8],
    sep: u8,
    n: usize,
    trim: Option<usize>,
    edit: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut pieces: Vec<Vec<u8>> = raw.split(|b| *b == sep).map(<[u8]>::to_vec).collect();
    if pieces.len() <= n {
        pieces.resize(n + 1, Vec::new());
    }
    if let Some(piece) = pieces.get_mut(n) {
        *piece = edit(piece);
    }
    // Trim only when nothing after the edited piece has content: a clear in the middle
    // must leave the separators after it (and the message's own trailing ones) alone.
    let rest_empty = pieces.iter().skip(n + 1).all(Vec::is_empty);
    if let Some(keep) = trim.filter(|_| rest_empty) {
        while pieces.len() > keep.max(1) && pieces.last().is_some_and(Vec::is_empty) {
            pieces.pop();
        }
    }
    pieces.join(&sep)
}
