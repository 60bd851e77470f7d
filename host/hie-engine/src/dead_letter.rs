//! The production's dead-letter queue: messages that could not be processed or
//! delivered, kept in memory with the reason, to be listed and requeued.
//! (The durable store replaces the memory behind the same API.)

use std::collections::VecDeque;

use hie_core::{Envelope, Failure, MessageId, now_ms};
use parking_lot::Mutex;

/// Most letters kept; the oldest go first when more arrive.
pub const DEAD_LETTER_LIMIT: usize = 100_000;

/// A dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as it was when it failed.
    pub message: Envelope,
    /// The item it was meant for.
    pub item: String,
    /// Why it is here.
    pub reason: Failure,
    /// When it arrived, ms since the epoch.
    pub at_ms: u64,
}

/// The in-memory dead-letter queue.
#[derive(Debug, Default)]
pub struct DeadLetterQueue {
    letters: Mutex<VecDeque<DeadLetter>>,
}

impl DeadLetterQueue {
    /// Keep `message` meant for `item` with `reason`.
    pub fn put(&self, item: &str, message: Envelope, reason: Failure) {
        tracing::warn!(
            item,
            message_id = %message.id,
            session_id = %message.session_id,
            code = %reason.code,
            reason = %reason.text,
            "message dead-lettered"
        );
        let mut letters = self.letters.lock();
        if letters.len() >= DEAD_LETTER_LIMIT {
            letters.pop_front();
        }
        letters.push_back(DeadLetter {
            message,
            item: item.to_string(),
            reason,
            at_ms: now_ms(),
        });
    }

    /// Every letter, oldest first.
    pub fn list(&self) -> Vec<DeadLetter> {
        self.letters.lock().iter().cloned().collect()
    }

    /// How many letters there are.
    pub fn len(&self) -> usize {
        self.letters.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.letters.lock().is_empty()
    }

    /// Take the letter of message `id` out.
    pub fn take(&self, id: MessageId) -> Option<DeadLetter> {
        let mut letters = self.letters.lock();
        let pos = letters.iter().position(|l| l.message.id == id)?;
        letters.remove(pos)
    }
}
