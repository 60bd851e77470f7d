//! The production's dead letters: messages that could not be processed or
//! delivered, with the reason, to be listed, requeued or discarded. With a store
//! they are rows in it (dead-lettered state at the item) and survive restarts;
//! with `[store] backend = "none"` they are kept in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use hie_core::{Envelope, Failure, MessageId, now_ms};
use hie_store::{MessageStore, Status, TraceKey};
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::EngineError;
use crate::persist::{Persist, failure_from};

/// Most letters kept in memory (without a store); the oldest go first when more arrive.
pub const DEAD_LETTER_LIMIT: usize = 100_000;

/// A dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The dead letters, in the store or in memory.
#[derive(Default)]
pub struct DeadLetterQueue {
    store: Option<Arc<Persist>>,
    letters: Mutex<VecDeque<DeadLetter>>,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("stored", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl DeadLetterQueue {
    /// Dead letters kept in `store`.
    pub(crate) fn with_store(store: Option<Arc<Persist>>) -> Self {
        DeadLetterQueue {
            store,
            letters: Mutex::default(),
        }
    }

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
        if let Some(store) = &self.store {
            store.dead_letter(&message, item, &reason);
            return;
        }
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

    /// Every letter, oldest first (at most `limit`; of `item` only if given). Reads the
    /// store, so from async code call it on a blocking thread.
    pub fn list_some(&self, item: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, EngineError> {
        let Some(persist) = &self.store else {
            return Ok(self
                .letters
                .lock()
                .iter()
                .filter(|l| item.is_none_or(|i| l.item == i))
                .take(limit)
                .cloned()
                .collect());
        };
        let store = persist.store();
        // letters are written without waiting: make those put so far readable
        store.flush()?;
        let mut out = Vec::new();
        for letter in store.dead_letters(item, limit)? {
            let Some(stored) = store.get(letter.summary.id)? else {
                continue; // purged since it was listed
            };
            let mut message = stored.envelope;
            message.attempt = letter.attempt;
            out.push(DeadLetter {
                message,
                item: letter.item,
                reason: failure_from(letter.error.as_deref()),
                at_ms: letter.at_ms,
            });
        }
        Ok(out)
    }

    /// Every letter, oldest first (the first [`DEAD_LETTER_LIMIT`]).
    pub fn list(&self) -> Vec<DeadLetter> {
        self.list_some(None, DEAD_LETTER_LIMIT).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list dead letters");
            Vec::new()
        })
    }

    /// How many letters there are.
    pub fn len(&self) -> usize {
        match &self.store {
            Some(_) => self.list().len(),
            None => self.letters.lock().len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the letter of message `id` out: from the store it is queued again at its
    /// item (attempt + 1) in the same step, so the caller only has to hand it to the
    /// item's in-memory queue.
    pub fn take(&self, id: MessageId) -> Result<Option<DeadLetter>, EngineError> {
        let Some(persist) = &self.store else {
            let mut letters = self.letters.lock();
            return Ok(letters
                .iter()
                .position(|l| l.message.id == id)
                .and_then(|pos| letters.remove(pos)));
        };
        let Some(letter) = self.stored_letter(persist, id)? else {
            return Ok(None);
        };
        persist.store().requeue_dead_letter(id, &letter.item)?;
        Ok(Some(letter))
    }

    /// Discard the letter of message `id` for good; whether there was one.
    pub fn discard(&self, id: MessageId) -> Result<bool, EngineError> {
        let Some(persist) = &self.store else {
            let mut letters = self.letters.lock();
            let before = letters.len();
            letters.retain(|l| l.message.id != id);
            return Ok(letters.len() < before);
        };
        let Some(letter) = self.stored_letter(persist, id)? else {
            return Ok(false);
        };
        persist.store().discard_dead_letter(id, &letter.item)?;
        Ok(true)
    }

    fn stored_letter(&self, persist: &Persist, id: MessageId) -> Result<Option<DeadLetter>, EngineError> {
        persist.store().flush()?;
        let Some(stored) = persist.store().get(id)? else {
            return Ok(None);
        };
        let Some(state) = stored.states.iter().find(|s| s.status == Status::DeadLettered) else {
            return Ok(None);
        };
        let trace = persist.store().trace(TraceKey::Message(id))?;
        let error = trace
            .iter()
            .rev()
            .find(|e| e.item == state.item && e.status == Status::DeadLettered)
            .and_then(|e| e.error.as_deref());
        let reason = failure_from(error);
        let mut message = stored.envelope;
        message.attempt = state.attempt + 1;
        Ok(Some(DeadLetter {
            message,
            item: state.item.clone(),
            reason,
            at_ms: state.updated_at_ms,
        }))
    }
}
