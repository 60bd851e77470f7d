//! Reply-code policy: what an outbound operation does with the reply it got (or did not get).
//!
//! Two spellings of the same rules:
//!
//! - IRIS `ReplyCodeActions`, as-is: `:?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C`.
//!   Conditions: `:?A` (AA or CA), `:?E` (AE or CE), `:?R` (AR or CR), `:_` (empty
//!   MSA-1), `:*` (any reply not matched by another rule), `:~` (reply without MSA),
//!   `:I?` (MSA-2 is not the sent control id), `:T?` (reply type is not the expected
//!   one), `:XY` (MSA-1 is literally `XY`), `X` (no reply at all: timeout, connection
//!   lost), `E` (any transport error), `E*text` (a transport error whose message contains
//!   `text`). Actions, one letter each: `C` completed, `W` warn and complete, `R` retry,
//!   `S` suspend, `D` disable the operation, `F` fail; `R` combines with a final action
//!   (`RF`: retry, then fail when the retries run out).
//! - Native: `accept=complete, error=retry-then-fail, reject=fail, no-reply=retry`, with
//!   conditions `accept error reject empty other no-msa id-mismatch type-mismatch no-reply
//!   transport-error` or a literal code (`AA`), and actions `complete warn retry suspend
//!   disable fail` or `retry-then-<final>`.
//!
//! Evaluation follows IRIS: every matching warn-only rule adds a warning; otherwise the
//! first matching rule from the left decides, `other` (`:*`) rules only after all others.
//! A reply that matches nothing completes; no reply that matches nothing retries then fails.

use std::fmt;

/// What to do once retrying is over (or at once, without retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalAction {
    /// The message is done.
    Complete,
    /// The message is done, with a warning logged.
    Warn,
    /// Set the message aside (suspended) and go on with the next.
    Suspend,
    /// Disable the operation and keep the message at the head of its queue.
    Disable,
    /// The message failed; go on with the next.
    Fail,
}

/// The action a rule prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    /// Retry first (as long as the operation's retry budget lasts).
    pub retry: bool,
    /// What to do without retry, or when retries run out.
    pub then: FinalAction,
}

impl Action {
    /// Complete at once.
    pub const COMPLETE: Action = Action::now(FinalAction::Complete);

    const fn now(then: FinalAction) -> Action {
        Action { retry: false, then }
    }

    const fn retry_then(then: FinalAction) -> Action {
        Action { retry: true, then }
    }

    /// True if this action completes the message without retry.
    pub fn is_done(&self) -> bool {
        !self.retry && matches!(self.then, FinalAction::Complete | FinalAction::Warn)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let then = match self.then {
            FinalAction::Complete => "complete",
            FinalAction::Warn => "warn",
            FinalAction::Suspend => "suspend",
            FinalAction::Disable => "disable",
            FinalAction::Fail => "fail",
        };
        if self.retry {
            write!(f, "retry-then-{then}")
        } else {
            f.write_str(then)
        }
    }
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// MSA-1 is AA or CA.
    Accept,
    /// MSA-1 is AE or CE.
    Error,
    /// MSA-1 is AR or CR.
    Reject,
    /// MSA-1 is empty.
    EmptyCode,
    /// MSA-1 is exactly this code.
    Code(String),
    /// Any reply no other rule matched.
    Other,
    /// A reply without an MSA segment.
    NoMsa,
    /// MSA-2 differs from the sent control id.
    ControlIdMismatch,
    /// The reply's type is not the expected one.
    TypeMismatch,
    /// No reply at all.
    NoReply,
    /// A transport error, optionally one whose message contains the text.
    TransportError(Option<String>),
}

/// What came back for one sent message, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum ReplyOutcome<'a> {
    /// A reply arrived.
    Reply {
        /// MSA-1 (`None`: no MSA segment).
        code: Option<&'a str>,
        /// MSA-2 differs from the sent MSH-10.
        control_id_mismatch: bool,
        /// The reply type is not the one expected.
        type_mismatch: bool,
    },
    /// No reply: the error says why (timeout, reset, refused…).
    NoReply(&'a crate::MllpError),
}

impl Condition {
    fn matches(&self, outcome: &ReplyOutcome<'_>) -> bool {
        match (self, outcome) {
            (Condition::NoReply, ReplyOutcome::NoReply(_)) => true,
            (Condition::TransportError(None), ReplyOutcome::NoReply(_)) => true,
            (Condition::TransportError(Some(text)), ReplyOutcome::NoReply(err)) => {
                err.to_string().contains(text.as_str())
            }
            (Condition::Other, ReplyOutcome::Reply { .. }) => true,
            (Condition::NoMsa, ReplyOutcome::Reply { code, .. }) => code.is_none(),
            (
                Condition::ControlIdMismatch,
                ReplyOutcome::Reply {
                    control_id_mismatch, ..
                },
            ) => *control_id_mismatch,
            (Condition::TypeMismatch, ReplyOutcome::Reply { type_mismatch, .. }) => *type_mismatch,
            (cond, ReplyOutcome::Reply { code: Some(code), .. }) => cond.matches_code(code),
            _ => false,
        }
    }

    fn matches_code(&self, code: &str) -> bool {
        let code = code.trim();
        match self {
            Condition::Accept => matches!(code, "AA" | "CA"),
            Condition::Error => matches!(code, "AE" | "CE"),
            Condition::Reject => matches!(code, "AR" | "CR"),
            Condition::EmptyCode => code.is_empty(),
            Condition::Code(literal) => literal.eq_ignore_ascii_case(code),
            _ => false,
        }
    }
}

/// One `condition=action` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the rule matches.
    pub condition: Condition,
    /// What it prescribes.
    pub action: Action,
}

/// The policy's answer for one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What to do with the message.
    pub action: Action,
    /// Warnings from matching warn-only rules (condition names).
    pub warnings: Vec<String>,
}

/// An invalid reply-code policy string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reply code actions at {rule:?}: {reason}")]
pub struct PolicyError {
    /// The offending rule text.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An ordered list of reply-code rules (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyCodeActions {
    rules: Vec<Rule>,
}

/// The IRIS default for HL7 operations.
pub const IRIS_DEFAULT: &str = ":?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C";

/// HIE's default: accept completes, error retries then fails, reject fails, no reply retries.
pub const NATIVE_DEFAULT: &str =
    "accept=complete, error=retry-then-fail, reject=fail, no-msa=fail, id-mismatch=warn, no-reply=retry";

impl Default for ReplyCodeActions {
    fn default() -> Self {
        ReplyCodeActions::parse(NATIVE_DEFAULT).expect("the native default parses")
    }
}

impl ReplyCodeActions {
    /// Parse either spelling: IRIS if the first rule starts with `:` or is `E…`/`X`, else native.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let rules = text
            .split(',')
            .map(str::trim)
            .filter(|rule| !rule.is_empty())
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReplyCodeActions { rules })
    }

    /// Build from rules directly.
    pub fn from_rules(rules: Vec<Rule>) -> Self {
        ReplyCodeActions { rules }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decide what to do with `outcome`.
    pub fn evaluate(&self, outcome: &ReplyOutcome<'_>) -> Verdict {
        let matching = |rule: &&Rule| rule.condition.matches(outcome);
        let warnings = self
            .rules
            .iter()
            .filter(|rule| rule.action == Action::now(FinalAction::Warn))
            .filter(matching)
            .map(|rule| condition_name(&rule.condition))
            .collect();
        let deciding = |other: bool| {
            self.rules
                .iter()
                .filter(move |rule| rule.action != Action::now(FinalAction::Warn))
                .filter(move |rule| (rule.condition == Condition::Other) == other)
                .find(matching)
        };
        let action = match deciding(false).or_else(|| deciding(true)) {
            Some(rule) => rule.action,
            None => match outcome {
                ReplyOutcome::Reply { .. } => Action::COMPLETE,
                ReplyOutcome::NoReply(_) => Action::retry_then(FinalAction::Fail),
            },
        };
        Verdict { action, warnings }
    }
}

impl ReplyCodeActions {
    /// Decide what to do with the reply bytes `reply` to a message with control id `sent_control_id`.
    ///
    /// A reply that is not HL7, or has no MSA, is a reply without MSA (`:~`); the expected
    /// reply type (`:T?`) is `ACK`.
    pub fn evaluate_reply(&self, reply: &[u8], sent_control_id: Option<&str>) -> Verdict {
        let parsed = hie_hl7::Message::parse(reply).ok();
        let field = |path: &str| {
            parsed
                .as_ref()
                .and_then(|message| message.get(path).ok().flatten())
        };
        let has_msa = parsed
            .as_ref()
            .is_some_and(|message| message.segment("MSA", 1).is_some());
        let code = has_msa.then(|| field("MSA-1").unwrap_or_default());
        let control_id_mismatch = sent_control_id.is_some_and(|sent| field("MSA-2").as_deref() != Some(sent));
        let type_mismatch = field("MSH-9.1").as_deref() != Some("ACK");
        self.evaluate(&ReplyOutcome::Reply {
            code: code.as_deref(),
            control_id_mismatch,
            type_mismatch,
        })
    }
}

fn parse_rule(text: &str) -> Result<Rule, PolicyError> {
    let error = |reason: &str| PolicyError {
        rule: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (condition, action) = text
        .split_once('=')
        .ok_or_else(|| error("expected condition=action"))?;
    let (condition, action) = (condition.trim(), action.trim());
    let iris = condition.starts_with(':') || condition == "X" || condition.starts_with('E');
    let condition = if iris {
        parse_iris_condition(condition)
    } else {
        parse_native_condition(condition)
    }
    .ok_or_else(|| error("unknown condition"))?;
    let action = if iris {
        parse_iris_action(action)
    } else {
        parse_native_action(action)
    }
    .map_err(|reason| error(&reason))?;
    Ok(Rule { condition, action })
}

fn parse_iris_condition(text: &str) -> Option<Condition> {
    Some(match text {
        ":?A" => Condition::Accept,
        ":?E" => Condition::Error,
        ":?R" => Condition::Reject,
        ":_" => Condition::EmptyCode,
        ":*" => Condition::Other,
        ":~" => Condition::NoMsa,
        ":I?" => Condition::ControlIdMismatch,
        ":T?" => Condition::TypeMismatch,
        "X" => Condition::NoReply,
        "E" => Condition::TransportError(None),
        _ => {
            if let Some(needle) = text.strip_prefix("E*") {
                Condition::TransportError(Some(needle.to_owned()))
            } else {
                let code = text.strip_prefix(':')?;
                if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return None;
                }
                Condition::Code(code.to_ascii_uppercase())
            }
        }
    })
}

fn parse_native_condition(text: &str) -> Option<Condition> {
    Some(match text.to_ascii_lowercase().as_str() {
        "accept" => Condition::Accept,
        "error" => Condition::Error,
        "reject" => Condition::Reject,
        "empty" => Condition::EmptyCode,
        "other" => Condition::Other,
        "no-msa" => Condition::NoMsa,
        "id-mismatch" => Condition::ControlIdMismatch,
        "type-mismatch" => Condition::TypeMismatch,
        "no-reply" | "timeout" => Condition::NoReply,
        "transport-error" => Condition::TransportError(None),
        code if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
            Condition::Code(code.to_ascii_uppercase())
        }
        _ => return None,
    })
}

fn parse_iris_action(text: &str) -> Result<Action, String> {
    let mut retry = false;
    let mut then = None;
    for letter in text.chars() {
        let next = match letter.to_ascii_uppercase() {
            'R' => {
                retry = true;
                continue;
            }
            'C' => FinalAction::Complete,
            'W' => FinalAction::Warn,
            'S' => FinalAction::Suspend,
            'D' => FinalAction::Disable,
            'F' => FinalAction::Fail,
            other => return Err(format!("unknown action letter {other:?} (use C W R S D F)")),
        };
        if then.replace(next).is_some_and(|prev| prev != next) {
            return Err("more than one final action (combine R with one of C W S D F)".into());
        }
    }
    match (retry, then) {
        (false, None) => Err("empty action".into()),
        (retry, then) => Ok(Action {
            retry,
            then: then.unwrap_or(FinalAction::Fail),
        }),
    }
}

fn parse_native_action(text: &str) -> Result<Action, String> {
    let text = text.to_ascii_lowercase();
    let (retry, then) = match text.strip_prefix("retry-then-") {
        Some(rest) => (true, rest),
        None if text == "retry" => (true, "fail"),
        None => (false, text.as_str()),
    };
    let then = match then {
        "complete" => FinalAction::Complete,
        "warn" => FinalAction::Warn,
        "suspend" => FinalAction::Suspend,
        "disable" => FinalAction::Disable,
        "fail" => FinalAction::Fail,
        other => {
            return Err(format!(
                "unknown action {other:?} (use complete warn retry suspend disable fail or retry-then-…)"
            ));
        }
    };
    Ok(Action { retry, then })
}

fn condition_name(condition: &Condition) -> String {
    match condition {
        Condition::Accept => "accept".into(),
        Condition::Error => "error".into(),
        Condition::Reject => "reject".into(),
        Condition::EmptyCode => "empty".into(),
        Condition::Code(code) => code.clone(),
        Condition::Other => "other".into(),
        Condition::NoMsa => "no-msa".into(),
        Condition::ControlIdMismatch => "id-mismatch".into(),
        Condition::TypeMismatch => "type-mismatch".into(),
        Condition::NoReply => "no-reply".into(),
        Condition::TransportError(None) => "transport-error".into(),
        Condition::TransportError(Some(text)) => format!("transport-error containing {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MllpError;

    fn reply(code: &str) -> ReplyOutcome<'_> {
        ReplyOutcome::Reply {
            code: Some(code),
            control_id_mismatch: false,
            type_mismatch: false,
        }
    }

    fn action(policy: &ReplyCodeActions, outcome: ReplyOutcome<'_>) -> Action {
        policy.evaluate(&outcome).action
    }

    #[test]
    fn iris_default_parses_into_seven_rules() {
        let policy = ReplyCodeActions::parse(IRIS_DEFAULT).expect("parses");
        let conditions: Vec<_> = policy.rules().iter().map(|r| r.condition.clone()).collect();
        assert_eq!(
            conditions,
            vec![
                Condition::Reject,
                Condition::Error,
                Condition::NoMsa,
                Condition::Accept,
                Condition::Other,
                Condition::ControlIdMismatch,
                Condition::TypeMismatch,
            ]
        );
        assert_eq!(policy.rules()[0].action, Action::retry_then(FinalAction::Fail));
    }

    #[test]
    fn iris_default_maps_codes_like_iris() {
        let policy = ReplyCodeActions::parse(IRIS_DEFAULT).expect("parses");
        assert_eq!(action(&policy, reply("AA")), Action::COMPLETE);
        assert_eq!(action(&policy, reply("CA")), Action::COMPLETE);
        assert_eq!(
            action(&policy, reply("AR")),
            Action::retry_then(FinalAction::Fail)
        );
        assert_eq!(
            action(&policy, reply("CR")),
            Action::retry_then(FinalAction::Fail)
        );
        assert_eq!(action(&policy, reply("AE")), Action::now(FinalAction::Suspend));
        assert_eq!(action(&policy, reply("ZZ")), Action::now(FinalAction::Suspend));
        let no_msa = ReplyOutcome::Reply {
            code: None,
            control_id_mismatch: false,
            type_mismatch: false,
        };
        assert_eq!(action(&policy, no_msa), Action::now(FinalAction::Suspend));
        // AA with the wrong control id: completes, with a warning.
        let mismatch = ReplyOutcome::Reply {
            code: Some("AA"),
            control_id_mismatch: true,
            type_mismatch: false,
        };
        let verdict = policy.evaluate(&mismatch);
        assert_eq!(verdict.action, Action::COMPLETE);
        assert_eq!(verdict.warnings, vec!["id-mismatch".to_owned()]);
        // No rule for no reply: retry, then fail.
        let timeout = MllpError::Timeout { timeout_ms: 10 };
        assert_eq!(
            action(&policy, ReplyOutcome::NoReply(&timeout)),
            Action::retry_then(FinalAction::Fail)
        );
    }

    #[test]
    fn other_is_a_fallback_wherever_it_stands() {
        let policy = ReplyCodeActions::parse(":*=F,:?A=C").expect("parses");
        assert_eq!(action(&policy, reply("AA")), Action::COMPLETE);
        assert_eq!(action(&policy, reply("AE")), Action::now(FinalAction::Fail));
    }

    #[test]
    fn native_default_maps_codes() {
        let policy = ReplyCodeActions::default();
        assert_eq!(action(&policy, reply("AA")), Action::COMPLETE);
        assert_eq!(
            action(&policy, reply("AE")),
            Action::retry_then(FinalAction::Fail)
        );
        assert_eq!(action(&policy, reply("AR")), Action::now(FinalAction::Fail));
        let timeout = MllpError::Timeout { timeout_ms: 10 };
        let verdict = policy.evaluate(&ReplyOutcome::NoReply(&timeout));
        assert!(verdict.action.retry);
        assert!(!verdict.action.is_done());
        assert!(action(&policy, reply("AA")).is_done());
    }

    #[test]
    fn literal_codes_and_transport_errors() {
        let policy = ReplyCodeActions::parse(":AE=W,:CE=D,E*refused=S,X=RS").expect("parses");
        assert_eq!(action(&policy, reply("ce")), Action::now(FinalAction::Disable));
        assert_eq!(policy.evaluate(&reply("AE")).warnings, vec!["AE".to_owned()]);
        let refused = MllpError::ConnectionRefused {
            addr: "127.0.0.1:1".into(),
        };
        assert_eq!(
            action(&policy, ReplyOutcome::NoReply(&refused)),
            Action::now(FinalAction::Suspend)
        );
        let timeout = MllpError::Timeout { timeout_ms: 10 };
        assert_eq!(
            action(&policy, ReplyOutcome::NoReply(&timeout)),
            Action::retry_then(FinalAction::Suspend)
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_rule() {
        for bad in [
            ":?A",
            ":?A=Q",
            ":?A=SF",
            "bogus=complete",
            "accept=explode",
            ":?A=",
        ] {
            let err = ReplyCodeActions::parse(bad).expect_err(bad);
            assert!(err.to_string().starts_with("invalid reply code actions"), "{err}");
        }
    }

    #[test]
    fn actions_display_in_native_spelling() {
        assert_eq!(
            Action::retry_then(FinalAction::Fail).to_string(),
            "retry-then-fail"
        );
        assert_eq!(Action::COMPLETE.to_string(), "complete");
        let native = ReplyCodeActions::parse("AA=complete,other=retry-then-suspend").expect("ok");
        assert_eq!(native.rules()[1].action.to_string(), "retry-then-suspend");
    }
}
