//! A plain loop over the two hot paths of `benches/benches/wasm.rs`, for profilers
//! (`perf record`, `valgrind --tool=callgrind`) that want one path and a known
//! count rather than criterion's adaptive runs:
//!
//! ```sh
//! cargo build --release -p hie-wasm --example profile_calls
//! valgrind --tool=callgrind --toggle-collect='profile_calls::run' \
//!     target/release/examples/profile_calls round-trip 20000
//! ```
//!
//! `round-trip N`: N warm `on-message` calls with the bench's 1 KB echo message.
//! `fresh N`: N new instances (store + instantiate + `on-init`) dropped at once.
//! Prints the mean wall time per operation (meaningful only on an idle machine).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use hie_core::{Envelope, NoHost, Plugin};
use hie_wasm::{HostConfig, ItemContext, WasmHost};

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "round-trip".into());
    let n: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let guest = hie_tests::build_plugin("wasm-guest");
    let host = WasmHost::new(HostConfig {
        cache_dir: None,
        max_instances: 100,
        ..HostConfig::default()
    })
    .expect("host");
    let component = host.load(&guest).expect("load");
    let context = || {
        let mut ctx = ItemContext::new("bench", Arc::new(NoHost));
        ctx.settings.insert("mode".into(), "bench".into());
        ctx
    };
    let mut body = b"echo:".to_vec();
    body.resize(1024, b'x');
    let mut msg = Envelope::hl7("mllp-in", body);
    msg.properties.insert("remote".into(), "10.0.0.1:5000".into());
    msg.properties.insert("control-id".into(), "MSG0001".into());
    let mut plugin = component.instantiate(context()).expect("instantiate");
    let op: Box<dyn FnMut()> = match what.as_str() {
        "round-trip" => Box::new(move || {
            black_box(plugin.call(msg.clone()).expect("echo"));
        }),
        "fresh" => Box::new(move || drop(black_box(component.instantiate(context()).expect("instantiate")))),
        other => panic!("unknown mode {other:?}: round-trip or fresh"),
    };
    let started = Instant::now();
    run(op, n);
    println!(
        "{what}: {n} in {:?}, {:.0} ns each",
        started.elapsed(),
        started.elapsed().as_nanos() as f64 / f64::from(n.max(1))
    );
}

/// The measured loop (callgrind's `--toggle-collect` target).
#[inline(never)]
fn run(mut op: Box<dyn FnMut()>, n: u32) {
    for _ in 0..n {
        op();
    }
}
