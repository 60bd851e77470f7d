//! The frames an engine and its `hie worker` processes exchange over their
//! socketpair: a 4-byte big-endian length, then one [`Frame`] in rmp-serde.
//!
//! Every frame that belongs to a plugin call carries the call id the engine
//! chose, so the threads of one worker multiplex one socket. The first frames
//! are a handshake ([`Frame::Hello`] from the engine, [`Frame::Ready`] or
//! [`Frame::Refuse`] from the worker): both sides compare [`PROTOCOL_VERSION`]
//! and the build id, so an engine and a worker of different builds refuse each
//! other with a clear error instead of misreading frames.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use hie_core::{Envelope, Failure, Outcome, PluginError};
use serde::{Deserialize, Serialize};

/// Version of the frame layout; bump on any change to [`Frame`].
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame accepted; a bigger length prefix means the peer writes garbage.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Identity of this build of `hie`: the crate version, the protocol version and
/// the executable file (inode, size, modification time), so a binary replaced on
/// disk while the engine runs is not taken for the engine's own.
pub fn build_id() -> String {
    let exe = std::fs::metadata("/proc/self/exe")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            format!("{}-{}-{}", m.ino(), m.size(), m.mtime())
        })
        .unwrap_or_else(|_| "unknown-exe".into());
    format!("{}/p{}/{}", env!("CARGO_PKG_VERSION"), PROTOCOL_VERSION, exe)
}

/// One host import called by a plugin inside a worker, answered by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostRequest {
    /// `lookup(table, key)`.
    Lookup {
        /// Table.
        table: String,
        /// Key.
        key: String,
    },
    /// `send(target, msg)`.
    Send {
        /// Target item.
        target: String,
        /// Message.
        msg: Envelope,
    },
    /// `send-request-sync(target, msg, timeout-ms)`.
    SendRequestSync {
        /// Target item.
        target: String,
        /// Message.
        msg: Envelope,
        /// Most time to wait.
        timeout_ms: u32,
    },
    /// `send-request-async(target, msg)`.
    SendRequestAsync {
        /// Target item.
        target: String,
        /// Message.
        msg: Envelope,
    },
    /// `adapter.call(bytes)` of an operation: the engine owns the connection.
    Adapter {
        /// Request bytes.
        #[serde(with = "serde_bytes")]
        request: Vec<u8>,
    },
}

/// The engine's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostResponse {
    /// Answer of `lookup`.
    Lookup(Option<String>),
    /// Answer of `send`.
    Sent(Result<(), Failure>),
    /// Answer of `send-request-sync`.
    Reply(Result<Envelope, Failure>),
    /// Answer of `send-request-async`: the correlation id.
    Correlation(Result<String, Failure>),
    /// Answer of `adapter.call`.
    Adapter(Result<Bytes, Failure>),
}

/// One frame on the engine–worker socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// Engine → worker, first frame: who the worker is and what it runs.
    Hello {
        /// [`PROTOCOL_VERSION`] of the engine.
        protocol: u32,
        /// [`build_id`] of the engine.
        build: String,
        /// The item.
        item: String,
        /// Worker id, e.g. `router-1`.
        worker: String,
        /// The plugin component the worker instantiates (the engine's resolved path).
        plugin: Option<PathBuf>,
        /// Whether the item has an outbound adapter (calls come back as [`HostRequest::Adapter`]).
        adapter: bool,
    },
    /// Worker → engine: instances are ready; calls may come.
    Ready {
        /// [`PROTOCOL_VERSION`] of the worker.
        protocol: u32,
        /// [`build_id`] of the worker.
        build: String,
        /// Its threads (one plugin instance each).
        threads: usize,
    },
    /// Either way: the peer cannot work with us; the text says why and what to do.
    Refuse {
        /// Why.
        reason: String,
    },
    /// Engine → worker: run `on-message`.
    Deliver {
        /// Call id.
        call: u64,
        /// The plugin version to run it on (hot reload, canary): its component
        /// file; `None` is the plugin the worker was started with.
        plugin: Option<PathBuf>,
        /// The message.
        msg: Envelope,
    },
    /// Engine → worker: run `on-reply` for an earlier `send-request-async`.
    Reply {
        /// Call id.
        call: u64,
        /// The plugin version, as in [`Frame::Deliver`].
        plugin: Option<PathBuf>,
        /// The request's correlation id.
        correlation_id: String,
        /// The reply or why there is none.
        result: Result<Envelope, Failure>,
    },
    /// Worker → engine: how a call ended.
    Outcome {
        /// Call id.
        call: u64,
        /// The plugin's outcome or error.
        result: Result<Outcome, PluginError>,
    },
    /// Worker → engine: a host import made during call `call`; the thread waits.
    Host {
        /// Call id.
        call: u64,
        /// The import.
        request: HostRequest,
    },
    /// Engine → worker: the answer to a [`Frame::Host`].
    HostReply {
        /// Call id.
        call: u64,
        /// The answer.
        response: HostResponse,
    },
    /// Worker → engine, no answer: a plugin counter, during call `call`.
    /// (Plugin log lines need no frame: the worker's own log, which carries
    /// them, lands in the engine's log.)
    Counter {
        /// Call id.
        call: u64,
        /// Item.
        item: String,
        /// Counter name.
        name: String,
        /// Increment.
        value: u64,
    },
    /// Worker → engine, no answer: a plugin histogram value, during call `call`.
    Histogram {
        /// Call id.
        call: u64,
        /// Item.
        item: String,
        /// Histogram name.
        name: String,
        /// Value.
        value: f64,
    },
    /// Engine → worker: are you alive?
    Heartbeat {
        /// Sequence number, echoed.
        seq: u64,
    },
    /// Worker → engine: yes.
    HeartbeatAck {
        /// The heartbeat's sequence number.
        seq: u64,
    },
    /// Engine → worker: finish the calls in hand, run `on-stop`, exit 0.
    Shutdown,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the socket.
    #[error("connection closed")]
    Closed,
    /// Reading failed.
    #[error("socket read failed: {0}")]
    Io(#[from] io::Error),
    /// The peer wrote something that is not a frame.
    #[error("garbage on the socket: {0}")]
    Garbage(String),
}

/// Encode `frame` with its length prefix.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write(&mut buf, frame).expect("frames always encode");
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

/// Write one frame.
pub fn write_frame(w: &mut impl Write, frame: &Frame) -> io::Result<()> {
    w.write_all(&encode(frame))
}

/// Read one frame; `buf` is reused between calls.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::Garbage(format!(
            "frame length {len} is over the limit of {MAX_FRAME} bytes"
        )));
    }
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Closed,
        _ => FrameError::Io(e),
    })?;
    rmp_serde::from_slice(buf).map_err(|e| FrameError::Garbage(format!("undecodable frame: {e}")))
}

/// Check the peer's protocol and build against ours; `Err` is the refusal text.
pub fn check_peer(peer: &str, protocol: u32, build: &str) -> Result<(), String> {
    if protocol != PROTOCOL_VERSION {
        return Err(format!(
            "{peer} speaks worker protocol {protocol}, this hie speaks {PROTOCOL_VERSION}: \
             engine and workers must be the same build; restart the production after upgrading hie"
        ));
    }
    let own = build_id();
    if build != own {
        return Err(format!(
            "{peer} is build {build}, this hie is build {own}: engine and workers must be the same \
             build; the hie binary was probably replaced while the production ran, restart it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msg = Envelope::hl7("in", Bytes::from_static(b"MSH|^~\\&|A\rPID|1\r"));
        let frames = [
            Frame::Deliver {
                call: 7,
                plugin: Some(PathBuf::from("/plugins/v2.wasm")),
                msg: msg.clone(),
            },
            Frame::Deliver {
                call: 10,
                plugin: None,
                msg: msg.clone(),
            },
            Frame::Outcome {
                call: 7,
                result: Ok(Outcome::Pass(msg.clone())),
            },
            Frame::Outcome {
                call: 8,
                result: Err(PluginError::Trap {
                    message: "boom".into(),
                }),
            },
            Frame::Host {
                call: 9,
                request: HostRequest::Adapter {
                    request: vec![1, 2, 3],
                },
            },
            Frame::HostReply {
                call: 9,
                response: HostResponse::Adapter(Ok(Bytes::from_static(b"ack"))),
            },
            Frame::Shutdown,
        ];
        let mut wire = Vec::new();
        for f in &frames {
            write_frame(&mut wire, f).unwrap();
        }
        let mut r = &wire[..];
        let mut buf = Vec::new();
        for f in &frames {
            assert_eq!(&read_frame(&mut r, &mut buf).unwrap(), f);
        }
        assert!(matches!(read_frame(&mut r, &mut buf), Err(FrameError::Closed)));
    }

    #[test]
    fn garbage_is_reported_not_misread() {
        let mut buf = Vec::new();
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut &huge[..], &mut buf),
            Err(FrameError::Garbage(t)) if t.contains("over the limit")
        ));
        let junk = [0, 0, 0, 3, 0xc1, 0xc1, 0xc1];
        assert!(matches!(
            read_frame(&mut &junk[..], &mut buf),
            Err(FrameError::Garbage(_))
        ));
    }

    #[test]
    fn other_builds_are_refused() {
        assert!(check_peer("worker", PROTOCOL_VERSION, &build_id()).is_ok());
        let e = check_peer("worker", PROTOCOL_VERSION + 1, &build_id()).unwrap_err();
        assert!(e.contains("same build"), "{e}");
        let e = check_peer("worker", PROTOCOL_VERSION, "0.0.0/p1/other").unwrap_err();
        assert!(e.contains("0.0.0/p1/other") && e.contains("restart"), "{e}");
    }
}
