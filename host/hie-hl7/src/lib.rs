//! HL7 v2 ER7 messages: parse, field paths, escapes, character sets, batches, ACKs.
#![forbid(unsafe_code)]
