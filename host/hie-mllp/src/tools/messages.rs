//! Messages to send: read from files and directories (batches split), or generated.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hie_hl7::Message;

/// One message to send, with the MSH-10 its ACK must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message bytes, segments ended by `\r`.
    pub payload: Bytes,
    /// MSH-10, if the message parses.
    pub control_id: Option<String>,
}

impl Outgoing {
    /// Wrap `payload`, reading its control id.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        let payload = payload.into();
        let control_id = Message::parse(&payload)
            .ok()
            .and_then(|message| message.control_id());
        Outgoing { payload, control_id }
    }
}

/// A message file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a message, a file of messages or a batch.
    #[error("{path} is not hl7: {source}")]
    NotHl7 {
        /// The path.
        path: PathBuf,
        /// The parser's reason.
        source: hie_hl7::ParseError,
    },
}

/// Read every message from `paths`: files (one message, several, or an FHS/BHS batch) and
/// directories (their files, sorted by name, not recursive). Line ends become `\r`.
pub fn load_messages(paths: &[PathBuf]) -> Result<Vec<Outgoing>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            for file in dir_files(path)? {
                load_file(&file, &mut out)?;
            }
        } else {
            load_file(path, &mut out)?;
        }
    }
    Ok(out)
}

fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_file(path: &Path, out: &mut Vec<Outgoing>) -> Result<(), LoadError> {
    let raw = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = normalize_line_ends(&raw);
    let parts = hie_hl7::batch::split(&text).map_err(|source| LoadError::NotHl7 {
        path: path.to_owned(),
        source,
    })?;
    out.extend(
        parts
            .into_iter()
            .map(|part| Outgoing::new(trim_blank_tail(part).to_vec())),
    );
    Ok(())
}

/// `\r\n` and `\n` to `\r`: files are written with an editor, the wire wants `\r`.
fn normalize_line_ends(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\r' if bytes.peek() == Some(&&b'\n') => {
                bytes.next();
                out.push(b'\r');
            }
            b'\n' => out.push(b'\r'),
            _ => out.push(b),
        }
    }
    out
}

fn trim_blank_tail(message: &[u8]) -> &[u8] {
    let end = message
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    // Keep one segment terminator.
    let with_cr = (end + 1).min(message.len());
    &message[..with_cr]
}

/// `count` ADT^A01 messages with unique control ids `{prefix}{n}` and distinct patients.
pub fn generate_adt_a01(count: usize, prefix: &str) -> Vec<Outgoing> {
    let now = hie_hl7::ack::now_timestamp();
    let stamp = now.get(..14).unwrap_or(&now);
    (0..count)
        .map(|n| {
            let control_id = format!("{prefix}{n:08}");
            let payload = format!(
                "MSH|^~\\&|HIESEND|HIE|HIERECV|HIE|{stamp}||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r\
                 EVN|A01|{stamp}\r\
                 PID|1||MRN{n:08}^^^HIE^MR||TEST^PATIENT^{n}||19800101|U|||1 MAIN ST^^SPRINGFIELD^IL^62701\r\
                 PV1|1|I|WARD1^101^A|||||||MED\r"
            );
            Outgoing {
                payload: Bytes::from(payload),
                control_id: Some(control_id),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_parse_with_unique_control_ids() {
        let messages = generate_adt_a01(50, "T");
        let ids: std::collections::HashSet<_> = messages.iter().map(|m| m.control_id.clone()).collect();
        assert_eq!(ids.len(), 50);
        for m in &messages {
            let parsed = Message::parse(&m.payload).expect("generated message parses");
            assert_eq!(parsed.message_type().as_deref(), Some("ADT^A01"));
            assert_eq!(parsed.control_id(), m.control_id);
        }
    }

    #[test]
    fn files_dirs_and_batches_are_loaded_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID1|P|2.5\nPID|1\n";
        let batch = "FHS|^~\\&\r\nBHS|^~\\&\r\nMSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID2|P|2.5\r\nMSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID3|P|2.5\r\nBTS|2\r\nFTS|1\r\n";
        std::fs::write(dir.path().join("a.hl7"), one).expect("write");
        std::fs::write(dir.path().join("b.hl7"), batch).expect("write");
        std::fs::write(dir.path().join(".hidden"), "junk").expect("write");
        let messages = load_messages(&[dir.path().to_owned()]).expect("loads");
        let ids: Vec<_> = messages.iter().map(|m| m.control_id.as_deref()).collect();
        assert_eq!(ids, vec![Some("ID1"), Some("ID2"), Some("ID3")]);
        assert_eq!(
            &messages[0].payload[..],
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID1|P|2.5\rPID|1\r"
        );
        assert!(!messages[1].payload.windows(3).any(|w| w == b"BTS"));
    }

    #[test]
    fn a_file_that_is_not_hl7_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.txt");
        std::fs::write(&path, "hello\n").expect("write");
        let err = load_messages(&[path]).expect_err("not hl7");
        assert!(err.to_string().contains("x.txt"), "{err}");
        let missing = load_messages(&[dir.path().join("nope")]).expect_err("missing");
        assert!(missing.to_string().starts_with("cannot read"), "{missing}");
    }
}
