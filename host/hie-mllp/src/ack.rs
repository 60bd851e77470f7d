//! ACK and NAK bytes the listener sends on its own (temporary until hie-hl7's `ack` lands).

/// An AR NAK for a frame that could not be parsed, with `reason` in MSA-3.
pub fn nak_unparseable(reason: &str) -> Vec<u8> {
    let text: String = reason
        .chars()
        .map(|c| if "|^~\\&\r\n".contains(c) { ' ' } else { c })
        .collect();
    format!("MSH|^~\\&|HIE||||||ACK|NAK|P|2.5\rMSA|AR||{text}\r").into_bytes()
}
