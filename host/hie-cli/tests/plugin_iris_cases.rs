//! `hl7-router` in IRIS mode in the real host: the component built for
//! wasm32-wasip2 runs `plugins/standard/hl7-router/iris-cases` (an IRIS rule
//! definition compiled into its `iris-rules` setting) through `hie plugin test`.

use hie_tests::{build_plugin, repo_root};

mod common;
use common::{hie, path_str, text};

#[test]
fn hl7_router_passes_its_iris_cases_in_the_real_host() {
    let wasm = build_plugin("hl7-router");
    let dir = repo_root().join("plugins/standard/hl7-router/iris-cases");
    let out = hie(&["plugin", "test", path_str(&wasm), "--cases", path_str(&dir)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("test result: ok. 6 passed; 0 failed"), "{stdout}");
}
