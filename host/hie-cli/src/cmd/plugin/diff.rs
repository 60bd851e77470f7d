//! A line diff in unified format, for HL7 shown one segment per line.

/// HL7 segments of `body` as display lines: split on CR or LF, without the
/// empty line a final terminator leaves.
pub fn segments(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut lines: Vec<String> = text.split(['\r', '\n']).map(str::to_owned).collect();
    // `\r\n` leaves empty lines between segments, a final terminator one at the end
    lines.retain(|l| !l.is_empty());
    lines
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Keep,
    Delete,
    Insert,
}

/// The shortest edit script from `a` to `b` (longest common subsequence).
fn edits(a: &[String], b: &[String]) -> Vec<(Edit, usize, usize)> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the LCS of a[i..] and b[j..]
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((Edit::Keep, i, j));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // deletions first, as diff(1) shows them
            out.push((Edit::Delete, i, j));
            i += 1;
        } else {
            out.push((Edit::Insert, i, j));
            j += 1;
        }
    }
    out
}

/// A unified diff of `expected` → `actual` with `context` lines around each
/// change, or `None` if they are equal.
pub fn unified(expected: &[String], actual: &[String], context: usize) -> Option<String> {
    let script = edits(expected, actual);
    let changed: Vec<usize> = (0..script.len()).filter(|&k| script[k].0 != Edit::Keep).collect();
    let first = *changed.first()?;
    let mut out = String::from("--- expected\n+++ actual\n");
    let mut start = first.saturating_sub(context);
    let mut k = 0;
    while k < changed.len() {
        // extend the hunk while the next change is within 2 * context lines
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * context + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + context + 1).min(script.len());
        let hunk = &script[start..end];
        let (a0, b0) = (hunk[0].1, hunk[0].2);
        let a_len = hunk.iter().filter(|e| e.0 != Edit::Insert).count();
        let b_len = hunk.iter().filter(|e| e.0 != Edit::Delete).count();
        out.push_str(&format!("@@ -{},{a_len} +{},{b_len} @@\n", a0 + 1, b0 + 1));
        for &(edit, i, j) in hunk {
            match edit {
                Edit::Keep => out.push_str(&format!(" {}\n", expected[i])),
                Edit::Delete => out.push_str(&format!("-{}\n", expected[i])),
                Edit::Insert => out.push_str(&format!("+{}\n", actual[j])),
            }
        }
        k += 1;
        if let Some(&next) = changed.get(k) {
            start = next.saturating_sub(context);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn equal_inputs_have_no_diff() {
        assert_eq!(unified(&lines("a b c"), &lines("a b c"), 3), None);
    }

    #[test]
    fn changed_segment_shows_with_context() {
        let d = unified(
            &lines("MSH EVN PID|F PV1 OBX1 OBX2 OBX3 OBX4"),
            &lines("MSH EVN PID|M PV1 OBX1 OBX2 OBX3 OBX4"),
            1,
        );
        assert_eq!(
            d.unwrap(),
            "--- expected\n+++ actual\n@@ -2,3 +2,3 @@\n EVN\n-PID|F\n+PID|M\n PV1\n"
        );
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let d = unified(&lines("a b c d e f g h"), &lines("A b c d e f g H"), 1).unwrap();
        assert_eq!(
            d,
            "--- expected\n+++ actual\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n@@ -7,2 +7,2 @@\n g\n-h\n+H\n"
        );
    }

    #[test]
    fn segments_accept_cr_lf_and_crlf() {
        assert_eq!(segments(b"MSH|x\rPID|1\r"), ["MSH|x", "PID|1"]);
        assert_eq!(segments(b"MSH|x\r\nPID|1\n"), ["MSH|x", "PID|1"]);
    }
}
