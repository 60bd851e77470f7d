//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::path::Path;

use hie_core::Envelope;
use hie_store::{Indexed, SqliteStore, StoreConfig};

/// An HL7-looking message with control id `ctrl` and patient `pid`, and its index values.
pub fn adt(ctrl: &str, pid: &str) -> (Envelope, Indexed) {
    let body = format!(
        "MSH|^~\\&|LAB|HOSP|HIE|HIE|20260101120000||ADT^A01|{ctrl}|P|2.5\rPID|1||{pid}^^^HOSP||DOE^JOHN\r"
    );
    let msg = Envelope::hl7("mllp-in", body.into_bytes());
    let idx = Indexed {
        control_id: Some(ctrl.to_owned()),
        message_type: Some("ADT^A01".to_owned()),
        sending_app: Some("LAB".to_owned()),
        sending_facility: Some("HOSP".to_owned()),
        patient_id: Some(pid.to_owned()),
    };
    (msg, idx)
}

/// A message whose body is `size` bytes.
pub fn sized(ctrl: &str, size: usize) -> (Envelope, Indexed) {
    let (mut msg, idx) = adt(ctrl, "P1");
    msg.body = vec![b'x'; size].into();
    (msg, idx)
}

/// Open a store in `dir` with default settings.
pub fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, StoreConfig::default()).expect("open store")
}
