//! `hie import iris` on the IRIS samples in `tests/iris/` (see its README): the
//! imported `production.toml`, `IMPORT-REPORT.md` and file list of each container
//! compared with `tests/iris/expected/`, exit codes, and two imported productions
//! run end to end under the real `hie run` (file service → router → file
//! operations; TCP service → router → TCP operations over MLLP).
//!
//! Expected files are reviewed by hand. After a deliberate change to the importer,
//! `HIE_UPDATE_EXPECTED=1 cargo test --workspace --test iris_import` rewrites them;
//! review the diff before committing it.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

/// `tests/iris/`.
fn samples() -> PathBuf {
    hie_tests::repo_root().join("tests").join("iris")
}

/// Run `hie ARGS` in `dir`, to the end.
fn hie_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(hie_bin())
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .output()
        .expect("hie starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `hie import iris INPUTS --out OUT` run in `tests/iris/` (so the inputs are named
/// relatively in what it writes); panics with its output unless it exits 0.
fn import(inputs: &[&str], out: &Path) -> Output {
    let mut args = vec!["import", "iris"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let output = hie_in(&samples(), &args);
    assert!(
        output.status.success(),
        "hie {} exited with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Every file under `dir`, as sorted relative paths with `/`.
fn file_list(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Compare `actual` with `tests/iris/expected/NAME`, or write it there when
/// `HIE_UPDATE_EXPECTED=1`.
fn expect_file(name: &str, actual: &str) {
    let path = samples().join("expected").join(name);
    if std::env::var_os("HIE_UPDATE_EXPECTED").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); review this output and run with HIE_UPDATE_EXPECTED=1 to record it:\n{actual}",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        let (e, a) = (
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
        // where in the line (the compiled rules are one long line): 80 characters around it
        let at = e
            .chars()
            .zip(a.chars())
            .position(|(x, y)| x != y)
            .unwrap_or(e.chars().count().min(a.chars().count()));
        let window = |l: &str| l.chars().skip(at.saturating_sub(40)).take(80).collect::<String>();
        panic!(
            "{} differs from the import, first at line {}, character {}:\n  expected: …{}…\n  actual:   …{}…\n\
             (HIE_UPDATE_EXPECTED=1 rewrites it after a deliberate change)\n--- actual ---\n{actual}",
            path.display(),
            first + 1,
            at + 1,
            window(e),
            window(a),
        );
    }
}

/// Import `inputs` and compare production.toml, IMPORT-REPORT.md and the list of
/// written files with `expected/CONTAINER/`.
fn snapshot(container: &str, inputs: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    import(inputs, out.path());
    let root = out.path().to_str().unwrap();
    let read = |name: &str| {
        let path = out.path().join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("hie import wrote no {} ({e})", path.display()))
            .replace(root, "<OUT>")
    };
    expect_file(&format!("{container}/production.toml"), &read("production.toml"));
    expect_file(
        &format!("{container}/IMPORT-REPORT.md"),
        &read("IMPORT-REPORT.md"),
    );
    expect_file(
        &format!("{container}/files.txt"),
        &(file_list(out.path()).join("\n") + "\n"),
    );
}

#[test]
fn raw_production_and_rule_xml_import_as_recorded() {
    snapshot(
        "xml",
        &[
            "xml/HIE.Samples.FileRouting.xml",
            "xml/HIE.Samples.FileRoutingRules.xml",
        ],
    );
}

#[test]
fn udl_class_files_import_as_recorded() {
    snapshot(
        "udl",
        &["udl/HIE.Samples.MllpRouting.cls", "udl/HIE.Samples.MllpRules.cls"],
    );
}

#[test]
fn export_package_imports_as_recorded() {
    snapshot("export", &["export/HIE.Samples.Hub.xml"]);
}

#[test]
fn a_directory_imports_the_same_production_as_its_files() {
    let (files, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    import(
        &["udl/HIE.Samples.MllpRouting.cls", "udl/HIE.Samples.MllpRules.cls"],
        files.path(),
    );
    import(&["udl"], dir.path());
    // the same, but for the header comment naming the inputs as given
    let toml = |d: &Path| {
        let text = std::fs::read_to_string(d.join("production.toml")).unwrap();
        assert!(text.starts_with("# Imported from"), "{text}");
        text.lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(toml(files.path()), toml(dir.path()));
}

#[test]
fn valid_input_exits_zero_and_says_what_did_not_carry_over() {
    let out = tempfile::tempdir().unwrap();
    let output = import(&["export/HIE.Samples.Hub.xml"], out.path());
    // the custom rule function and the SQL operation cannot carry over: the
    // import says so on the terminal as well as in the report
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        said.to_lowercase().contains("warning"),
        "no warning printed:\n{said}"
    );
}

/// The value of attribute `name` in the start tag `tag` (`<Item Name="A" …>`).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[at..].split('"').next()
}

/// `(name, class, settings written on it)` of every `<Item>` of a production definition.
fn items(production: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for chunk in production.split("<Item ").skip(1) {
        let (tag, rest) = chunk.split_once('>').unwrap();
        let body = rest.split("</Item>").next().unwrap();
        let settings = body
            .split("<Setting ")
            .skip(1)
            .filter_map(|s| {
                attribute(&format!(" {}", s.split('>').next().unwrap()), "Name").map(str::to_owned)
            })
            .collect();
        out.push((
            attribute(&format!(" {tag}"), "Name").unwrap().to_owned(),
            attribute(&format!(" {tag}"), "ClassName").unwrap().to_owned(),
            settings,
        ));
    }
    out
}

/// The section of IMPORT-REPORT.md about the item `name`.
fn report_section<'a>(report: &'a str, name: &str) -> &'a str {
    let head = format!("\n### `{name}`");
    let start = report
        .find(&head)
        .unwrap_or_else(|| panic!("the report has no section for item {name}"));
    let rest = &report[start + head.len()..];
    let end = rest
        .find("\n## ")
        .into_iter()
        .chain(rest.find("\n### "))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Nothing is silently dropped: every setting written on an item in the samples,
/// and every System Default Setting that applies to an item, is named in that
/// item's section of the report (mapped, or not carried over with the reason).
#[test]
fn every_setting_of_every_sample_item_is_accounted_for_in_the_report() {
    let mut missing = Vec::new();
    for (production, inputs) in [
        (
            "xml/HIE.Samples.FileRouting.xml",
            vec![
                "xml/HIE.Samples.FileRouting.xml",
                "xml/HIE.Samples.FileRoutingRules.xml",
            ],
        ),
        ("udl/HIE.Samples.MllpRouting.cls", vec!["udl"]),
        ("export/HIE.Samples.Hub.xml", vec!["export/HIE.Samples.Hub.xml"]),
    ] {
        let out = tempfile::tempdir().unwrap();
        import(&inputs, out.path());
        let report = std::fs::read_to_string(out.path().join("IMPORT-REPORT.md")).unwrap();
        let source = std::fs::read_to_string(samples().join(production)).unwrap();
        let items = items(&source);
        for (name, _, settings) in &items {
            let section = report_section(&report, name);
            for s in settings {
                if !section.contains(&format!("`{s}`")) {
                    missing.push(format!("{production}: item {name}: setting {s}"));
                }
            }
        }
        // System Default Settings (the export): <item production= item= class= setting=>
        for entry in source.split("<item ").skip(1) {
            let tag = format!(" {}", entry.split('>').next().unwrap());
            let (Some(p), Some(i), Some(c), Some(s)) = (
                attribute(&tag, "production"),
                attribute(&tag, "item"),
                attribute(&tag, "class"),
                attribute(&tag, "setting"),
            ) else {
                continue;
            };
            if p != "*" && p != "HIE.Samples.Hub.Production" {
                continue;
            }
            for (name, class, _) in &items {
                if (i == "*" || i == name)
                    && (c == "*" || c == class)
                    && !report_section(&report, name).contains(&format!("`{s}`"))
                {
                    missing.push(format!("{production}: item {name}: system default {s}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not named in the item's section of IMPORT-REPORT.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn input_that_is_not_iris_exits_non_zero_with_one_line() {
    for file in [
        "not-iris/pom.xml",
        "not-iris/notes.txt",
        "not-iris/Plain.cls",
        "messages/adt_a01_inpatient.hl7",
    ] {
        let out = tempfile::tempdir().unwrap();
        let output = hie_in(
            &samples(),
            &["import", "iris", file, "--out", out.path().to_str().unwrap()],
        );
        let stderr = text(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!output.status.success(), "{file}: exit 0\nstderr:\n{stderr}");
        assert_eq!(lines.len(), 1, "{file}: not one line on stderr:\n{stderr}");
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(
            lines[0].contains(name),
            "{file}: the line does not name the file: {}",
            lines[0]
        );
        assert!(
            !out.path().join("production.toml").exists(),
            "{file}: a production was written"
        );
    }
    // a path that does not exist
    let out = tempfile::tempdir().unwrap();
    let output = hie_in(
        &samples(),
        &[
            "import",
            "iris",
            "xml/No.Such.Production.xml",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    assert_eq!(
        text(&output.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count(),
        1,
        "{}",
        text(&output.stderr)
    );
}

/// Copy a sample to `dest`, replacing each `(from, to)` in its text; panics if a
/// `from` is not there (so a changed sample cannot silently break the test setup).
fn copy_with(src: &Path, dest: &Path, replace: &[(&str, &str)]) {
    let mut s = std::fs::read_to_string(src).unwrap();
    for (from, to) in replace {
        assert!(s.contains(from), "{} has no {from:?}", src.display());
        s = s.replace(from, to);
    }
    std::fs::write(dest, s).unwrap();
}

/// `hie run DIR` with the hl7-router plugin on the plugin path; returns once its
/// control socket is open.
fn run(production: &Path, control: &Path) -> Proc {
    let plugins = plugin_dir(&["hl7-router"]);
    let mut proc = Proc::hie(
        "hie run",
        &[
            "run",
            production.to_str().unwrap(),
            "--log-format",
            "json",
            "--control",
            control.to_str().unwrap(),
        ],
        &[
            ("HIE_PLUGIN_PATH", plugins.to_str().unwrap()),
            ("RUST_LOG", "info"),
        ],
    );
    proc.wait_for_line("control socket open", Duration::from_secs(120));
    proc
}

/// The segments of an HL7 message, whatever terminates them (an IRIS file
/// operation writes CR LF by default).
fn segments(bytes: &[u8]) -> Vec<String> {
    text(bytes)
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Today's date as `%Y%m%d`, local and UTC (IRIS stamps local time; either is accepted).
fn dates() -> BTreeSet<String> {
    ["+%Y%m%d", "-u +%Y%m%d"]
        .iter()
        .map(|args| {
            let out = Command::new("date").args(args.split(' ')).output().unwrap();
            text(&out.stdout).trim().to_owned()
        })
        .collect()
}

#[test]
fn file_service_router_and_file_operations_deliver_each_message_under_its_file_name() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let base = format!("{}/", root.display());
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    copy_with(
        &samples().join("xml/HIE.Samples.FileRouting.xml"),
        &src.join("HIE.Samples.FileRouting.xml"),
        &[("/data/hl7/", &base)],
    );
    copy_with(
        &samples().join("xml/HIE.Samples.FileRoutingRules.xml"),
        &src.join("HIE.Samples.FileRoutingRules.xml"),
        &[],
    );
    let out_dirs = [
        "adt-inpatient",
        "adt-other",
        "orders-inpatient",
        "orders-other",
        "results",
        "legacy",
        "bad",
    ];
    for d in ["in", "archive", "work"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for d in out_dirs {
        std::fs::create_dir_all(root.join("out").join(d)).unwrap();
    }
    let prod = root.join("prod");
    import(&[src.to_str().unwrap()], &prod);
    let _engine = run(&prod, &root.join("control.sock"));

    let before = dates();
    let messages = [
        "adt_a01_inpatient.hl7",
        "adt_a08_emergency.hl7",
        "adt_a04_outpatient.hl7",
        "orm_o01_ward_inpatient.hl7",
        "orm_o01_ward_outpatient.hl7",
        "orm_o01_clinic_inpatient.hl7",
        "oru_r01_lab.hl7",
        "oru_r01_extlab.hl7",
        "siu_s12_unrouted.hl7",
    ];
    for m in messages {
        // written under another name, then renamed: the service never sees half a file
        let part = root.join("in").join(format!("{m}.part"));
        std::fs::copy(samples().join("messages").join(m), &part).unwrap();
        std::fs::rename(&part, root.join("in").join(m)).unwrap();
    }

    // (message, operation directory, file name); ADT Other's name carries the date
    let expected: Vec<(&str, &str, String)> = vec![
        (
            "adt_a01_inpatient.hl7",
            "adt-inpatient",
            "ADT_IP_adt_a01_inpatient.hl7".into(),
        ),
        (
            "adt_a08_emergency.hl7",
            "adt-inpatient",
            "ADT_IP_adt_a08_emergency.hl7".into(),
        ),
        (
            "adt_a04_outpatient.hl7",
            "adt-other",
            "adt_a04_outpatient.hl7_{date}.txt".into(),
        ),
        (
            "orm_o01_ward_inpatient.hl7",
            "orders-inpatient",
            "ORM_orm_o01_ward_inpatient.hl7".into(),
        ),
        (
            "orm_o01_ward_outpatient.hl7",
            "orders-other",
            "ORM_OTHER_orm_o01_ward_outpatient.hl7".into(),
        ),
        (
            "orm_o01_clinic_inpatient.hl7",
            "orders-other",
            "ORM_OTHER_orm_o01_clinic_inpatient.hl7".into(),
        ),
        ("oru_r01_lab.hl7", "results", "Befund_oru_r01_lab.hl7".into()),
    ];
    let listing = |d: &str| -> Vec<String> {
        std::fs::read_dir(root.join("out").join(d))
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // every input is taken (and archived) and every expected file written
    eventually(
        "the file service to take every input file",
        Duration::from_secs(60),
        || {
            let left = std::fs::read_dir(root.join("in")).unwrap().count();
            (left == 0).then_some(())
        },
    );
    eventually(
        "every routed message to be written",
        Duration::from_secs(60),
        || {
            let written: usize = out_dirs.iter().map(|d| listing(d).len()).sum();
            (written >= expected.len()).then_some(())
        },
    );
    // give a wrongly routed or duplicated message time to show up
    std::thread::sleep(Duration::from_millis(1500));
    let after = dates();
    let days: BTreeSet<String> = before.union(&after).cloned().collect();

    let mut unexplained: BTreeSet<(String, String)> = out_dirs
        .iter()
        .flat_map(|d| listing(d).into_iter().map(move |f| (d.to_string(), f)))
        .collect();
    for (message, dir, name) in &expected {
        let found = if name.contains("{date}") {
            days.iter()
                .map(|day| name.replace("{date}", day))
                .find(|n| unexplained.contains(&(dir.to_string(), n.clone())))
        } else {
            unexplained
                .contains(&(dir.to_string(), name.clone()))
                .then(|| name.clone())
        };
        let found = found.unwrap_or_else(|| {
            panic!(
                "{message} is not in out/{dir} as {name}; out/{dir} holds {:?}; everything written: {unexplained:?}",
                listing(dir)
            )
        });
        let body = std::fs::read(root.join("out").join(dir).join(&found)).unwrap();
        assert_eq!(
            segments(&body),
            segments(&std::fs::read(samples().join("messages").join(message)).unwrap()),
            "out/{dir}/{found} is not {message} segment for segment"
        );
        unexplained.remove(&(dir.to_string(), found));
    }
    // the external lab result (its rule has a DTL and was disabled) and the SIU
    // (no rule) went to no operation, and nothing was written twice
    assert!(
        unexplained.is_empty(),
        "written but not expected: {unexplained:?}"
    );
    let archived = std::fs::read_dir(root.join("archive")).unwrap().count();
    assert_eq!(archived, messages.len(), "every input file is archived");
}

/// The MLLP production from the UDL samples with its ports moved to `inbound`,
/// `pas` and `lab`, written into `dir`.
fn mllp_sources(dir: &Path, inbound: u16, pas: u16, lab: u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = |p: u16| format!(r#"<Setting Target="Adapter" Name="Port">{p}</Setting>"#);
    copy_with(
        &samples().join("udl/HIE.Samples.MllpRouting.cls"),
        &dir.join("HIE.Samples.MllpRouting.cls"),
        &[
            (&port(2575), &port(inbound)),
            (&port(6661), &port(pas)),
            (&port(6662), &port(lab)),
        ],
    );
    copy_with(
        &samples().join("udl/HIE.Samples.MllpRules.cls"),
        &dir.join("HIE.Samples.MllpRules.cls"),
        &[],
    );
}

/// Send the three MLLP samples to `inbound` and check where they arrive.
fn mllp_routes(inbound: u16, pas: &Sink, lab: &Sink, engine: &Proc) {
    let message = |name: &str| std::fs::read(samples().join("messages").join(name)).unwrap();
    let (adt, own, foreign) = (
        message("mllp_adt_a01.hl7"),
        message("mllp_oru_r01_own.hl7"),
        message("mllp_oru_r01_foreign.hl7"),
    );
    for m in [&adt, &own, &foreign] {
        // AckMode Immed: the ACK says the message was received, whatever the routing
        assert_eq!(ack_code(&mllp_call(inbound, m)).0, "AA", "{}", engine.dump());
    }
    let texts = |messages: Vec<Vec<u8>>| messages.iter().map(|m| text(m)).collect::<Vec<_>>();
    assert_eq!(
        texts(pas.wait_for(1)),
        texts(vec![adt]),
        "the PAS did not get the ADT"
    );
    assert_eq!(
        texts(lab.wait_for(1)),
        texts(vec![own]),
        "the lab did not get our patient's result"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(pas.messages().len(), 1, "the PAS got more than the ADT");
    assert_eq!(
        lab.messages().len(),
        1,
        "the result of a foreign patient reached the lab"
    );
}

#[test]
fn tcp_service_router_and_tcp_operations_route_over_mllp() {
    let (pas, lab) = (Sink::start("pas"), Sink::start("lab"));
    let inbound = free_port();
    let t = tempfile::tempdir().unwrap();
    mllp_sources(&t.path().join("src"), inbound, pas.port, lab.port);
    let prod = t.path().join("prod");
    import(&[t.path().join("src").to_str().unwrap()], &prod);
    let engine = run(&prod, &t.path().join("control.sock"));
    wait_for_port(inbound);
    mllp_routes(inbound, &pas, &lab, &engine);
}

/// The export package run as imported: the inbound port and the ICU operation's
/// address come only from its System Default Settings, the PAS file path from the
/// production (which beats the default), the routing from the custom category's Z
/// segment and from the lookup table.
#[test]
fn export_package_runs_with_its_default_settings_lookup_table_and_custom_schema() {
    let icu = Sink::start("icu");
    let inbound = free_port();
    let t = tempfile::tempdir().unwrap();
    let (src, pas_dir, test_dir) = (
        t.path().join("src"),
        t.path().join("pas"),
        t.path().join("test-pas"),
    );
    for d in [&src, &pas_dir, &test_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (inbound_s, icu_s) = (inbound.to_string(), icu.port.to_string());
    let (pas_s, test_s) = (
        format!("{}/", pas_dir.display()),
        format!("{}/", test_dir.display()),
    );
    copy_with(
        &samples().join("export/HIE.Samples.Hub.xml"),
        &src.join("HIE.Samples.Hub.xml"),
        &[
            (
                r#"setting="Port" value="2580""#,
                &format!(r#"setting="Port" value="{inbound_s}""#),
            ),
            (
                r#"setting="Port" value="2581""#,
                &format!(r#"setting="Port" value="{icu_s}""#),
            ),
            ("/data/prod/pas/", &pas_s),
            ("/data/test/pas/", &test_s),
        ],
    );
    let prod = t.path().join("prod");
    import(&[src.to_str().unwrap()], &prod);
    let engine = run(&prod, &t.path().join("control.sock"));
    wait_for_port(inbound);

    let adt = std::fs::read(samples().join("messages/hub_adt_a01_icu.hl7")).unwrap();
    // AckMode App: the ACK waits for the router
    assert_eq!(ack_code(&mllp_call(inbound, &adt)).0, "AA", "{}", engine.dump());
    // ZPI-2 = ICU (a segment of the custom category) → the ICU operation
    assert_eq!(
        icu.wait_for(1).iter().map(|m| text(m)).collect::<Vec<_>>(),
        vec![text(&adt)]
    );
    // MSH-4 = CLINIC-NORTH, which the lookup table maps to PAS → the PAS file, in the
    // production's directory (not the default's), named by its Filename spec with an
    // empty %f (the message did not come from a file)
    let written = eventually("the PAS file to be written", Duration::from_secs(20), || {
        let names: Vec<String> = std::fs::read_dir(&pas_dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        (!names.is_empty()).then_some(names)
    });
    assert_eq!(written.len(), 1, "{written:?}");
    let name = &written[0];
    let stamp = name
        .strip_prefix("ADT_")
        .and_then(|n| n.strip_suffix("_.hl7"))
        .unwrap_or("");
    assert!(
        stamp.len() == 15
            && stamp.as_bytes()[8] == b'_'
            && stamp.bytes().filter(u8::is_ascii_digit).count() == 14,
        "{name} is not ADT_%Y%m%d_%H%M%S_%f.hl7 with an empty %f"
    );
    assert!(
        dates().iter().any(|d| stamp.starts_with(d.as_str())),
        "{name} is not dated today"
    );
    assert_eq!(
        segments(&std::fs::read(pas_dir.join(name)).unwrap()),
        segments(&adt),
        "the PAS file is not the message"
    );
    assert_eq!(
        std::fs::read_dir(&test_dir).unwrap().count(),
        0,
        "the default's directory was used"
    );
}

#[test]
fn hie_run_takes_the_udl_classes_directly() {
    let (pas, lab) = (Sink::start("pas"), Sink::start("lab"));
    let inbound = free_port();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    mllp_sources(&src, inbound, pas.port, lab.port);
    let engine = run(&src, &t.path().join("control.sock"));
    wait_for_port(inbound);
    mllp_routes(inbound, &pas, &lab, &engine);
}
