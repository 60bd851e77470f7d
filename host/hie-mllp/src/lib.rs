//! MLLP: framing codec, inbound listener, outbound client with ACK wait.
#![forbid(unsafe_code)]
