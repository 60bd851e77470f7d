//! IPC cost of `multi_process` execution: one plugin call sent to a worker and
//! its outcome back, over a real Unix socketpair, with the engine side
//! (`Connection`) and the worker side (`serve_worker`) the engine uses. The
//! worker side runs on a thread of this process with a native pass-through
//! instance, so the figure is the IPC alone (frames, rmp-serde, socket, thread
//! hand-offs), not the plugin.
//!
//! Criterion prints its usual report; then one JSON line per figure:
//! - `ipc/deliver_round_trip_1kb`: deliver a 1 KB HL7 message, get its `pass`
//!   outcome back (1 KB each way). Goal: median ≤ 20 µs.
//! - `ipc/frame_encode_decode_1kb`: the same deliver frame encoded and decoded,
//!   no socket (the serialisation share of the round trip).
//! - `ipc/socketpair_ping_pong_1kb`: the floor under any design: 1 KB written
//!   to a socketpair, echoed back by another thread, nothing else. Each round
//!   trip wakes two sleeping threads; on a 2-vCPU VM an idle vCPU's wake-up costs
//!   ~20 µs, so this alone can exceed the 20 µs goal there. The deliver round trip
//!   has four wake-ups (engine reader and caller, worker reader and thread).

use std::hint::black_box;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hie_config::{HookConfig, ItemConfig};
use hie_core::{Envelope, HostApi, NoHost, PluginError};
use hie_engine::process::protocol::{self, Frame};
use hie_engine::process::{Connection, WorkerOptions, serve_worker};
use hie_engine::{ItemInstance, MessageHook, OutboundAdapter, PassThrough, PluginFactory};

const ROUND_TRIP_GOAL: Duration = Duration::from_micros(20);
const BODY_BYTES: usize = 1024;

const PRODUCTION: &str = r#"
[production]
name = "ipc-bench"

[[items]]
name = "work"
kind = "process"
# the worker side makes native pass-through instances; the name only satisfies the config
plugin = "passthrough"
execution = { mode = "multi_process", processes = 1, threads = 1 }
"#;

/// Native pass-through instances: the bench measures the IPC, not a plugin.
struct Native;

impl PluginFactory for Native {
    fn item_instance(
        &self,
        _item: &ItemConfig,
        _host: Arc<dyn HostApi>,
        _adapter: Option<Box<dyn OutboundAdapter>>,
    ) -> Result<Box<dyn ItemInstance>, PluginError> {
        Ok(Box::new(PassThrough))
    }

    fn hook_instance(
        &self,
        hook: &HookConfig,
        _host: Arc<dyn HostApi>,
    ) -> Result<Box<dyn MessageHook>, PluginError> {
        Err(PluginError::Instantiate(format!(
            "no hook {} in this bench",
            hook.name
        )))
    }
}

fn message() -> Envelope {
    let mut body = b"MSH|^~\\&|SND|FAC|RCV|FAC|20260101000000||ADT^A01|MSG0001|P|2.5\rPID|1||".to_vec();
    body.resize(BODY_BYTES, b'x');
    Envelope::hl7("in", body)
}

fn median_per_iter(samples: usize, batch: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..batch {
                f();
            }
            started.elapsed() / batch
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report(figure: &str, median: Duration, goal: Option<Duration>) {
    let goal = goal.map_or(String::new(), |g| {
        format!(",\"goal_ns\":{},\"meets_goal\":{}", g.as_nanos(), median <= g)
    });
    println!(
        "{{\"bench\":\"ipc/{figure}\",\"median_ns\":{}{goal}}}",
        median.as_nanos()
    );
}

fn main() {
    let file = Path::new("/bench/production.toml");
    let production = hie_config::check_str(file, PRODUCTION).expect("bench production");
    let item = production.item("work").expect("item").clone();
    let (engine_end, worker_end) = UnixStream::pair().expect("socketpair");
    std::thread::spawn(move || {
        let options = WorkerOptions {
            worker: "work-0".into(),
            threads: 1,
            file: file.to_path_buf(),
        };
        serve_worker(worker_end, &item, Arc::new(Native), options)
    });
    let hello = Frame::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        build: protocol::build_id(),
        item: "work".into(),
        worker: "work-0".into(),
        plugin: None,
        adapter: false,
    };
    let (conn, reader) =
        Connection::handshake(engine_end, "work-0", &hello, Duration::from_secs(10)).expect("handshake");
    let reading = Arc::clone(&conn);
    std::thread::spawn(move || reading.read_loop(reader));
    let msg = message();
    let call = || {
        let outcome = conn
            .call(
                |call| Frame::Deliver {
                    call,
                    plugin: None,
                    msg: msg.clone(),
                },
                "work",
                &NoHost,
                None,
            )
            .expect("worker alive")
            .expect("outcome");
        black_box(outcome);
    };

    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    criterion.bench_function("ipc/deliver_round_trip_1kb", |b| b.iter(call));
    let frame = Frame::Deliver {
        call: 1,
        plugin: None,
        msg: msg.clone(),
    };
    criterion.bench_function("ipc/frame_encode_decode_1kb", |b| {
        b.iter(|| {
            let bytes = protocol::encode(&frame);
            let mut buf = Vec::new();
            black_box(protocol::read_frame(&mut &bytes[..], &mut buf).expect("frame"));
        })
    });
    criterion.final_summary();

    report(
        "deliver_round_trip_1kb",
        median_per_iter(200, 500, call),
        Some(ROUND_TRIP_GOAL),
    );
    let encode_decode = median_per_iter(200, 2_000, || {
        let bytes = protocol::encode(&frame);
        let mut buf = Vec::new();
        black_box(protocol::read_frame(&mut &bytes[..], &mut buf).expect("frame"));
    });
    report("frame_encode_decode_1kb", encode_decode, None);
    report("socketpair_ping_pong_1kb", ping_pong_floor(), None);
}

/// Median round trip of 1 KB over a bare socketpair to an echoing thread.
fn ping_pong_floor() -> Duration {
    use std::io::{Read, Write};
    let (mut ours, mut theirs) = UnixStream::pair().expect("socketpair");
    std::thread::spawn(move || {
        let mut buf = [0u8; BODY_BYTES];
        while theirs.read_exact(&mut buf).is_ok() {
            if theirs.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; BODY_BYTES];
    median_per_iter(200, 500, || {
        ours.write_all(&buf).expect("write");
        ours.read_exact(&mut buf).expect("read");
    })
}
