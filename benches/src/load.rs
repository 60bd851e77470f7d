//! The load: ADT^A01 messages of a given size, sent by `hie send`'s engine
//! (`hie_mllp::tools::send`, pipelined connections) or by a paced sender.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hie_mllp::client::ClientConfig;
use hie_mllp::tools::{Outgoing, SendOptions, SendProgress, SendReport, generate_adt_a01};

/// `count` ADT^A01 messages (unique control ids `{prefix}{n}`) of exactly `size` bytes
/// each when `size` is larger than the bare message: the rest is an `NTE` segment
/// of printable text. Smaller sizes give the bare message (about 250 bytes).
pub fn adt_of_size(count: usize, prefix: &str, size: usize) -> Vec<Outgoing> {
    generate_adt_a01(count, prefix)
        .into_iter()
        .map(|m| {
            let base = m.payload.len();
            // "NTE|1||" + text + "\r"
            let overhead = 8;
            if size < base + overhead + 1 {
                return m;
            }
            let mut body = Vec::with_capacity(size);
            body.extend_from_slice(&m.payload);
            body.extend_from_slice(b"NTE|1||");
            let text = size - base - overhead;
            body.extend((0..text).map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"[i % 37]));
            body.push(b'\r');
            debug_assert_eq!(body.len(), size);
            Outgoing {
                payload: body.into(),
                control_id: m.control_id,
            }
        })
        .collect()
}

/// Send `messages` to `127.0.0.1:port` with `hie send`'s engine over `connections`
/// connections, `window` frames in flight on each; the report (ACK codes, latency).
pub fn send(port: u16, messages: Vec<Outgoing>, connections: usize, window: usize) -> SendReport {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime for the sender");
    let mut client = ClientConfig::new(format!("127.0.0.1:{port}"));
    client.ack_timeout = Duration::from_secs(60);
    let opts = SendOptions {
        client,
        connections,
        window,
    };
    runtime.block_on(hie_mllp::tools::send(
        messages,
        &opts,
        Arc::new(SendProgress::default()),
    ))
}

/// One MLLP request/reply on an open stream.
///
/// # Panics
///
/// If the connection fails or closes before a whole reply.
pub fn call(stream: &mut TcpStream, payload: &[u8], buf: &mut Vec<u8>) {
    let mut frame = Vec::with_capacity(payload.len() + 3);
    frame.push(0x0b);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    stream.write_all(&frame).expect("write a frame");
    buf.clear();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(&[0x1c, 0x0d]) {
        let n = stream.read(&mut chunk).expect("read a reply");
        assert!(n > 0, "the connection closed before a whole reply");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What a paced run did.
pub struct Paced {
    /// ACK latency in µs, measured from each message's scheduled send time.
    pub latency_us: Histogram<u64>,
    /// Messages sent (and answered).
    pub sent: u64,
    /// Replies whose MSA-1 was not `AA`.
    pub not_aa: u64,
}

/// Paced sending at `rate` msg/s over `connections` (one frame in flight on each)
/// for `duration`: message `i` of connection `c` is `make(c, i)`.
///
/// Latency counts from the time a message was due, so queueing behind a slow reply
/// counts too (no coordinated omission).
pub fn paced(
    port: u16,
    rate: u64,
    connections: u64,
    duration: Duration,
    make: fn(u64, u64) -> Vec<u8>,
) -> Paced {
    let per_conn_interval = Duration::from_nanos(1_000_000_000 * connections / rate.max(1));
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let mut buf = Vec::new();
                let start = Instant::now();
                let mut next = start;
                let mut i = 0u64;
                let mut not_aa = 0u64;
                while start.elapsed() < duration {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                    }
                    let msg = make(c, i);
                    let sent_at = next.max(now);
                    call(&mut s, &msg, &mut buf);
                    h.record(sent_at.elapsed().as_micros() as u64)
                        .expect("latency within the histogram's range");
                    if !buf.windows(7).any(|w| w == b"MSA|AA|") {
                        not_aa += 1;
                    }
                    next += per_conn_interval;
                    i += 1;
                }
                (h, i, not_aa)
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3).expect("histogram");
    let mut sent = 0;
    let mut not_aa = 0;
    for h in handles {
        let (hist, n, bad) = h.join().expect("a paced sender thread panicked");
        total.add(hist).expect("histograms merge");
        sent += n;
        not_aa += bad;
    }
    Paced {
        latency_us: total,
        sent,
        not_aa,
    }
}
