//! The values a plugin works with: [`Message`], [`Outcome`], [`Failure`], [`LogLevel`].

use std::fmt;

/// Content type of an HL7 v2 ER7 body.
pub const CONTENT_TYPE_HL7V2: &str = "application/hl7-v2";
/// Content type of a JSON body.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Priority of a new message, the same as the engine's default.
const DEFAULT_PRIORITY: u8 = 4;

/// A message as a plugin sees it: envelope fields plus the body bytes.
///
/// Ids are set by the host; a message a plugin creates has empty ids and the
/// host assigns fresh ones when it sends it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) source: String,
    pub(crate) content_type: String,
    pub(crate) priority: u8,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) attempt: u32,
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// A new message with this content type and body.
    pub fn new(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Message {
        Message {
            id: String::new(),
            session_id: String::new(),
            correlation_id: None,
            source: String::new(),
            content_type: content_type.into(),
            priority: DEFAULT_PRIORITY,
            properties: Vec::new(),
            attempt: 1,
            body: body.into(),
        }
    }

    /// A new HL7 v2 message (`application/hl7-v2`).
    pub fn hl7(body: impl Into<Vec<u8>>) -> Message {
        Message::new(CONTENT_TYPE_HL7V2, body)
    }

    /// Unique id of this message (empty for a message the plugin created).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Id shared by one inbound message and everything it causes.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The request/reply correlation id, if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Name of the item that produced the message.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Content type of the body, e.g. [`CONTENT_TYPE_HL7V2`].
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Sets the content type.
    pub fn set_content_type(&mut self, content_type: impl Into<String>) {
        self.content_type = content_type.into();
    }

    /// Priority, 0 (lowest) to 9 (highest).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Sets the priority; values above 9 are stored as 9.
    pub fn set_priority(&mut self, priority: u8) {
        self.priority = priority.min(9);
    }

    /// Delivery attempt, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// This message with another body (same envelope fields).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Message {
        self.set_body(body);
        self
    }

    /// Takes the body out, leaving it empty.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The value of property `key`.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All properties, in the order they were set.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets property `key`, replacing an earlier value.
    pub fn set_property(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.properties.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.properties.push((key, value)),
        }
    }

    /// This message with property `key` set.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Message {
        self.set_property(key, value);
        self
    }

    /// Removes property `key` and returns its value.
    pub fn remove_property(&mut self, key: &str) -> Option<String> {
        let at = self.properties.iter().position(|(k, _)| k == key)?;
        Some(self.properties.remove(at).1)
    }
}

/// A business failure: a code, a text for a person, and whether a retry may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Short machine-readable code, e.g. `no-route`, `bad-message`, `timeout`.
    pub code: String,
    /// What went wrong, for an operator; never a whole message body.
    pub text: String,
    /// Whether the same message may succeed on another attempt.
    pub retryable: bool,
}

impl Failure {
    /// A failure that retrying will not cure (the engine dead-letters, NAKs `AE`).
    pub fn permanent(code: impl Into<String>, text: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            text: text.into(),
            retryable: false,
        }
    }

    /// A failure that may go away on another attempt (the engine retries).
    pub fn transient(code: impl Into<String>, text: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            text: text.into(),
            retryable: true,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

impl std::error::Error for Failure {}

/// A message addressed to one target item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Name of the target item.
    pub target: String,
    /// The message to send there.
    pub message: Message,
}

/// What a plugin decided to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed; nothing further to send.
    Done,
    /// Send this message to the item's configured targets.
    Pass(Message),
    /// Send each message to the target it names.
    Forward(Vec<Routed>),
    /// Reply to whoever sent the message (the caller of a request, or the inbound sender).
    Reply(Message),
    /// Discard the message on purpose, with the reason.
    Drop(String),
}

impl Outcome {
    /// Processed; nothing further to send.
    pub fn done() -> Outcome {
        Outcome::Done
    }

    /// Send `msg` to the item's configured targets.
    pub fn pass(msg: Message) -> Outcome {
        Outcome::Pass(msg)
    }

    /// Send `msg` to the item `target`.
    pub fn forward(target: impl Into<String>, msg: Message) -> Outcome {
        Outcome::Forward(vec![Routed {
            target: target.into(),
            message: msg,
        }])
    }

    /// Send a copy of `msg` to each of `targets`.
    pub fn forward_all<T: Into<String>>(targets: impl IntoIterator<Item = T>, msg: Message) -> Outcome {
        Outcome::Forward(
            targets
                .into_iter()
                .map(|t| Routed {
                    target: t.into(),
                    message: msg.clone(),
                })
                .collect(),
        )
    }

    /// Reply with `msg` to whoever sent the message.
    pub fn reply(msg: Message) -> Outcome {
        Outcome::Reply(msg)
    }

    /// Discard the message on purpose; `reason` is recorded in its trace.
    pub fn drop(reason: impl Into<String>) -> Outcome {
        Outcome::Drop(reason.into())
    }

    /// The targets this outcome names (empty unless it is [`Outcome::Forward`]).
    pub fn targets(&self) -> Vec<&str> {
        match self {
            Outcome::Forward(routed) => routed.iter().map(|r| r.target.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The kind of outcome: `done`, `pass`, `forward`, `reply` or `drop`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Pass(_) => "pass",
            Outcome::Forward(_) => "forward",
            Outcome::Reply(_) => "reply",
            Outcome::Drop(_) => "drop",
        }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very detailed; the only level at which message bodies may be logged.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not fail the message.
    Warn,
    /// A failure.
    Error,
}

/// An item's (or a hook's) settings, as given to `on_init`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    entries: Vec<(String, String)>,
}

impl Settings {
    /// Settings from key/value pairs.
    pub fn new<K: Into<String>, V: Into<String>>(entries: impl IntoIterator<Item = (K, V)>) -> Settings {
        Settings {
            entries: entries.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming the missing setting.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("missing setting `{key}`"))
    }

    /// The value of `key` parsed as a `T`, or `default` when it is not set.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| format!("setting `{key}` = {v:?}: {e}")),
        }
    }

    /// Every setting, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The numbered settings `PREFIX.N` (e.g. `rule.1`, `rule.2`, `rule.10`),
    /// ordered by `N`, as `(key, value)` pairs. A key whose suffix is not a
    /// number is an error, so a typo does not silently drop a rule.
    pub fn numbered(&self, prefix: &str) -> Result<Vec<(&str, &str)>, String> {
        let dotted = format!("{prefix}.");
        let mut out = Vec::new();
        for (k, v) in self.iter() {
            if let Some(n) = k.strip_prefix(&dotted) {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("setting `{k}`: expected `{prefix}.N` with N a number"))?;
                out.push((n, k, v));
            }
        }
        out.sort_by_key(|(n, _, _)| *n);
        Ok(out.into_iter().map(|(_, k, v)| (k, v)).collect())
    }

    /// The numbered settings `PREFIX.N` (see [`Settings::numbered`]) each parsed
    /// with `parse`, as `(key, value)` pairs in order of `N`. The first that does
    /// not parse is an error naming the setting, the column and the text, e.g.
    /// `rule.2 does not parse at column 17: expected a value: MSH-9.1 = -> b`.
    pub fn parse_numbered<T>(
        &self,
        prefix: &str,
        parse: impl Fn(&str) -> Result<T, SyntaxError>,
    ) -> Result<Vec<(String, T)>, String> {
        self.numbered(prefix)?
            .into_iter()
            .map(|(key, text)| match parse(text) {
                Ok(value) => Ok((key.to_owned(), value)),
                Err(e) => Err(format!("{key} does not parse at {e}: {text}")),
            })
            .collect()
    }

    /// The settings as key/value pairs.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.entries
    }
}

/// Why a setting's value does not parse, and where: for plugins whose settings
/// are small languages (routing rules, mapping steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based character column of the offending token (just past the end for a missing one).
    pub column: usize,
    /// What was expected or is wrong.
    pub reason: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_unique_and_replaceable() {
        let mut m = Message::hl7("MSH|").with_property("a", "1");
        m.set_property("a", "2");
        m.set_property("b", "3");
        assert_eq!(m.property("a"), Some("2"));
        assert_eq!(m.properties().count(), 2);
        assert_eq!(m.remove_property("a").as_deref(), Some("2"));
        assert_eq!(m.property("a"), None);
    }

    #[test]
    fn numbered_settings_sort_by_number_and_reject_typos() {
        let s = Settings::new([
            ("rule.10", "c"),
            ("rule.2", "b"),
            ("default", "x"),
            ("rule.1", "a"),
        ]);
        let values: Vec<_> = s.numbered("rule").unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, ["a", "b", "c"]);
        let bad = Settings::new([("rule.one", "a")]);
        assert_eq!(
            bad.numbered("rule").unwrap_err(),
            "setting `rule.one`: expected `rule.N` with N a number"
        );
    }

    #[test]
    fn parse_numbered_names_the_failing_setting() {
        let s = Settings::new([("step.2", "bad"), ("step.1", "7")]);
        let parse = |t: &str| {
            t.parse::<u8>().map_err(|e| SyntaxError {
                column: 1,
                reason: e.to_string(),
            })
        };
        assert_eq!(
            s.parse_numbered("step", parse).unwrap_err(),
            "step.2 does not parse at column 1: invalid digit found in string: bad"
        );
        let ok = Settings::new([("step.1", "7")])
            .parse_numbered("step", parse)
            .unwrap();
        assert_eq!(ok, [("step.1".to_owned(), 7)]);
    }

    #[test]
    fn forward_all_copies_the_message_per_target() {
        let o = Outcome::forward_all(["a", "b"], Message::hl7("x"));
        assert_eq!(o.targets(), ["a", "b"]);
        assert_eq!(o.kind(), "forward");
    }

    #[test]
    fn failure_displays_code_and_text() {
        let f = Failure::permanent("no-route", "no rule matched");
        assert_eq!(f.to_string(), "no-route: no rule matched");
        assert!(!f.retryable);
        assert!(Failure::transient("timeout", "x").retryable);
    }
}
