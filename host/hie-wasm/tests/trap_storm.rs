//! 10,000 consecutive traps on one plugin leave the process's resident memory
//! within 50 MB of where it started. Alone in its own test binary because RSS is
//! per process. Run with `RUST_BACKTRACE=0` (as CI does) so traps stay cheap.

mod common;

use std::sync::Arc;

use common::{RecordingHost, command, context, host, load};
use hie_core::{Plugin, PluginError};

const TRAPS: u64 = 10_000;
const MB: u64 = 1_000_000;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

#[test]
fn ten_thousand_traps_do_not_grow_memory() {
    let host = host();
    let component = load(&host, "wasm-guest");
    let mut plugin = component
        .instantiate(context(&Arc::new(RecordingHost::default())))
        .unwrap();
    // warm up: first traps allocate the pool slots, tracing and trap machinery
    for _ in 0..100 {
        assert!(matches!(
            plugin.call(command("panic")),
            Err(PluginError::Trap { .. })
        ));
    }
    let before = rss_bytes();
    for _ in 0..TRAPS {
        assert!(matches!(
            plugin.call(command("panic")),
            Err(PluginError::Trap { .. })
        ));
    }
    let after = rss_bytes();
    plugin.call(command("echo")).expect("still works after the storm");
    assert_eq!(plugin.replacements(), TRAPS + 100);
    eprintln!("rss before {} MB, after {} MB", before / MB, after / MB);
    assert!(
        after < before + 50 * MB,
        "rss grew from {before} to {after} bytes over {TRAPS} traps"
    );
}
