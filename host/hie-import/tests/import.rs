//! Imports of the sample inputs in `tests/inputs/` (a UDL production with its rule
//! class, a custom class and system default settings; an export package with
//! CDATA XData, a lookup table, a custom HL7 schema and default settings): what
//! the production file says, what the report says with which lines, and the
//! refusal of input that is not IRIS.

use std::path::{Path, PathBuf};

use hie_config::{AckMode, AdapterConfig, ItemKind, PluginRef, SegmentTerminator};

fn inputs(dir: &str) -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/inputs")
        .join(dir)
}

fn import(dir: &str) -> hie_import::Import {
    hie_import::import(&[inputs(dir)], &hie_import::Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn checked(i: &hie_import::Import) -> hie_config::Production {
    hie_config::check_str(
        Path::new("/out/production.toml"),
        i.production_toml.as_ref().unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The report line of `setting` in the section of `item`.
fn report_line<'a>(report: &'a str, item: &str, setting: &str) -> &'a str {
    let start = report
        .find(&format!("### `{item}`"))
        .unwrap_or_else(|| panic!("no section for {item}"));
    let section = &report[start..];
    let end = section[4..]
        .find("\n### ")
        .map(|e| e + 4)
        .unwrap_or(section.len());
    section[..end]
        .lines()
        .find(|l| l.starts_with(&format!("- `{setting}`")))
        .unwrap_or_else(|| panic!("no line for {setting} of {item} in:\n{}", &section[..end]))
}

#[test]
fn udl_production_maps_items_settings_rules_and_defaults() {
    let i = import("udl");
    let p = checked(&i);
    assert_eq!(p.name, "Demo.HL7.Production");
    assert_eq!(p.drain_timeout, std::time::Duration::from_secs(30));

    let file_in = p.item("HL7 Datei Eingang").unwrap();
    let Some(AdapterConfig::FileIn(f)) = &file_in.adapter else {
        panic!()
    };
    assert_eq!(f.file_spec, vec!["*.hl7".to_string(), "*.txt".to_string()]);
    assert_eq!(f.dir, PathBuf::from("/out/in"));
    assert_eq!(f.archive_dir, PathBuf::from("/out/archive"));
    assert_eq!(f.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(file_in.targets, vec!["Router".to_string()]);

    let tcp_in = p.item("HL7 TCP In").unwrap();
    let Some(AdapterConfig::MllpIn(m)) = &tcp_in.adapter else {
        panic!()
    };
    assert_eq!(
        (m.host.as_str(), m.port, m.ack_mode),
        ("0.0.0.0", 35575, AckMode::Application)
    );
    // "Nowhere" is not an item: dropped and reported
    assert_eq!(tcp_in.targets, vec!["Router".to_string()]);
    assert!(
        i.report.contains("targets [\"Nowhere\"] **not carried over**"),
        "{}",
        i.report
    );

    let router = p.item("Router").unwrap();
    assert_eq!(
        router.plugin.as_ref().unwrap().reference,
        PluginRef::Standard("hl7-router".into())
    );
    // PoolSize 0 = the actor pool: ActorPoolSize (2) workers
    assert_eq!(router.pool_size, 2);
    let rules: serde_json::Value = serde_json::from_str(&router.settings["iris-rules"]).unwrap();
    assert_eq!(rules["sets"][0]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(i.rule_files.len(), 1);
    assert_eq!(p.log.items["Router"], "debug");
    // the file service's MessageSchemaCategory goes to the router it sends to
    assert_eq!(router.settings["schema-category.HL7 Datei Eingang"], "2.5");
    assert!(!router.settings.contains_key("schema-category.HL7 TCP In"));

    let adt_out = p.item("ADT Out").unwrap();
    let Some(AdapterConfig::FileOut(o)) = &adt_out.adapter else {
        panic!()
    };
    assert_eq!(o.filename, "ADT_%f_%Q%!+(_a)");
    assert!(o.append, "Overwrite=0 appends");
    assert_eq!(o.segment_terminator, Some(SegmentTerminator::CrLf));
    // FilePath from the system defaults: the production-specific class entry wins
    // over the item entry for any production (key order production, item, class)
    assert_eq!(o.dir, PathBuf::from("/out/out/other"));
    let line = report_line(&i.report, "ADT Out", "FilePath");
    assert!(
        line.contains("system default setting") && line.contains("Ens.Config.DefaultSettings.esd:6"),
        "{line}"
    );

    // a default for a setting with no HIE equivalent is named in each item it matches
    let line = report_line(&i.report, "ADT Out", "AlertGracePeriod");
    assert!(
        line.contains("system default setting") && line.contains("not carried over"),
        "{line}"
    );
    let lab = p.item("Lab TCP Out").unwrap();
    let Some(AdapterConfig::MllpOut(m)) = &lab.adapter else {
        panic!()
    };
    assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 35576));
    assert_eq!(
        m.reply_actions.as_deref(),
        Some(":?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C")
    );
    // RetryInterval 2 s until FailureTimeout 10 s: 6 attempts
    assert_eq!(lab.retry.max_attempts, 6);
    assert_eq!(lab.retry.backoff, std::time::Duration::from_secs(2));
    assert_eq!(lab.retry.max_backoff, std::time::Duration::from_secs(2));
    let line = report_line(&i.report, "Lab TCP Out", "StayConnected");
    assert!(
        line.contains("Demo.HL7.Production.cls:40") && line.contains("not carried over"),
        "{line}"
    );

    let custom = p.item("Custom Enricher").unwrap();
    assert!(!custom.enabled);
    assert_eq!(custom.kind, ItemKind::Process);
    assert_eq!(i.skeletons.len(), 1);
    assert_eq!(i.skeletons[0].crate_name, "mypkg-myprocess");
    assert_eq!(i.skeletons[0].kind, "process");
    assert!(
        i.report
            .contains("**Disabled:** custom class MyPkg.MyProcess (defined at"),
        "{}",
        i.report
    );
    let line = report_line(&i.report, "Custom Enricher", "Enabled");
    assert!(
        line.contains("`enabled = false`: disabled by the import"),
        "{line}"
    );
    let line = report_line(&i.report, "Custom Enricher", "Mode");
    assert!(line.contains("Demo.HL7.Production.cls:44"), "{line}");

    // every setting written in the production has a line in the report
    for (item, setting, line) in [
        ("HL7 Datei Eingang", "AlertOnError", 19),
        ("HL7 Datei Eingang", "MessageSchemaCategory", 18),
        ("Router", "Validation", 28),
        ("Router", "BusinessRuleName", 27),
    ] {
        let l = report_line(&i.report, item, setting);
        assert!(l.contains(&format!("Demo.HL7.Production.cls:{line})")), "{l}");
    }

    // system defaults: each entry says whether and why it applied
    for (line, says) in [
        (
            ":5:",
            "a more specific entry or the production definition gives the value",
        ),
        (":6:", "applied"),
        (":7:", "the production definition sets it ("),
        (":8:", "PoolSize cannot be a system default"),
        (":9:", "not this production"),
        (":10:", "the items it matches have no HIE equivalent"),
    ] {
        let l = i
            .report
            .lines()
            .find(|l| l.contains(&format!("Ens.Config.DefaultSettings.esd{line}")))
            .unwrap_or_else(|| panic!("no line {line}"));
        assert!(l.contains(says), "{l}");
    }
    assert!(
        i.report.contains("## Setting precedence") && i.report.contains("Defining System Default Settings"),
        "the report states the precedence rule and its source"
    );
}

#[test]
fn export_package_maps_cdata_lookups_schemas_and_non_hl7_classes() {
    let i = import("export");
    let p = checked(&i);
    assert_eq!(p.name, "Demo.Export.Production");
    assert_eq!(p.lookups["Stationen"]["ST2"], "Chirurgie");
    // FilePath of the file service from the system defaults of this production
    let Some(AdapterConfig::FileIn(f)) = &p.item("Eingang Süd").unwrap().adapter else {
        panic!()
    };
    assert_eq!(f.dir, PathBuf::from("/out/in"));
    let Some(AdapterConfig::FileOut(o)) = &p.item("Ausgang").unwrap().adapter else {
        panic!()
    };
    assert!(!o.append, "Overwrite=1 replaces");
    assert_eq!(o.segment_terminator, Some(SegmentTerminator::Cr));
    assert_eq!(o.filename, "%Y%m%d_%f");
    let sql = p.item("SQL Lookup").unwrap();
    assert!(!sql.enabled);
    assert!(i.skeletons.is_empty(), "built-in IRIS classes get no skeleton");
    // lines inside the CDATA are lines of the export file
    let l = report_line(&i.report, "Ausgang", "Separators");
    assert!(l.contains("Demo.Export.xml:23)"), "{l}");
    let l = report_line(&i.report, "SQL Lookup", "DSN");
    assert!(l.contains("Demo.Export.xml:26)"), "{l}");
    assert!(i.report.contains("`MyHL7` ("), "{}", i.report);
    assert!(i.report.contains("base version \"2.5\""), "{}", i.report);
    let router = p.item("Verteiler").unwrap();
    let rules: serde_json::Value = serde_json::from_str(&router.settings["iris-rules"]).unwrap();
    assert!(
        rules["lookups"]["Stationen"].is_object(),
        "lookup tables go into the rules: {rules}"
    );
    assert_eq!(router.settings["schema-category.Eingang Süd"], "MyHL7");
}

#[test]
fn written_output_has_the_files_and_keeps_existing_skeletons() {
    let i = import("udl");
    let out = tempfile::tempdir().unwrap();
    let made = std::cell::RefCell::new(Vec::new());
    let scaffold = |name: &str, dir: &Path, kind: &str| -> Result<PathBuf, String> {
        made.borrow_mut().push((name.to_string(), kind.to_string()));
        let p = dir.join(name);
        std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
        Ok(p)
    };
    hie_import::write(&i, out.path(), &scaffold).unwrap();
    for f in [
        "production.toml",
        "IMPORT-REPORT.md",
        "rules/Demo.HL7.RoutingRule.json",
        "plugins-src/mypkg-myprocess",
    ] {
        assert!(out.path().join(f).exists(), "{f}");
    }
    assert_eq!(
        *made.borrow(),
        vec![("mypkg-myprocess".to_string(), "process".to_string())]
    );
    // a second import into the same directory leaves the ported skeleton alone
    hie_import::write(&i, out.path(), &scaffold).unwrap();
    assert_eq!(made.borrow().len(), 1);
    hie_config::load(out.path()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn input_that_is_not_iris_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.xml");
    std::fs::write(&html, "<html><body>hi</body></html>").unwrap();
    let e = hie_import::import(&[html], &hie_import::Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not an IRIS production, rule or export") && !e.contains('\n'),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = hie_import::import(&[empty.path().to_path_buf()], &hie_import::Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no IRIS production, rule or export found"), "{e}");
    let e = hie_import::import(&[dir.path().join("missing.cls")], &hie_import::Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file or directory"), "{e}");
}

#[test]
fn several_productions_need_a_choice() {
    let both = [inputs("udl"), inputs("export")];
    let e = hie_import::import(&both, &hie_import::Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--production") && e.contains("Demo.Export.Production"),
        "{e}"
    );
    let chosen = hie_import::import(
        &both,
        &hie_import::Options {
            production: Some("Demo.Export.Production".into()),
        },
    )
    .unwrap();
    assert_eq!(chosen.production.as_deref(), Some("Demo.Export.Production"));
}

#[test]
fn a_second_service_on_the_same_port_is_imported_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Twin.Production.xml");
    std::fs::write(
        &file,
        r#"<Production Name="Twin.Production">
  <Item Name="ADT In" ClassName="EnsLib.HL7.Service.TCPService" Enabled="true">
    <Setting Target="Adapter" Name="Port">6661</Setting>
  </Item>
  <Item Name="ADT In (backup)" ClassName="EnsLib.HL7.Service.TCPService" Enabled="false">
    <Setting Target="Adapter" Name="Port">6661</Setting>
  </Item>
</Production>
"#,
    )
    .unwrap();
    let i = hie_import::import(&[file], &hie_import::Options::default()).unwrap();
    let p = checked(&i);
    let Some(AdapterConfig::MllpIn(m)) = &p.item("ADT In").unwrap().adapter else {
        panic!()
    };
    assert_eq!(m.port, 6661);
    let backup = p.item("ADT In (backup)").unwrap();
    assert!(!backup.enabled);
    let Some(AdapterConfig::MllpIn(m)) = &backup.adapter else {
        panic!()
    };
    assert_eq!(m.port, 0);
    assert!(
        i.report.contains("port 6661 is also the port of item `ADT In`"),
        "{}",
        i.report
    );
}

/// No setting is silently dropped: every `<Setting>` line of the sample productions
/// appears in the report with its name, file and line.
#[test]
fn every_setting_of_the_samples_has_a_report_line() {
    for (dir, file) in [("udl", "Demo.HL7.Production.cls"), ("export", "Demo.Export.xml")] {
        let i = import(dir);
        let text = std::fs::read_to_string(inputs(dir).join(file)).unwrap();
        let mut checked = 0;
        for (n, line) in text.lines().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("<Setting ") else {
                continue;
            };
            let name = rest
                .split("Name=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap();
            let at = format!("{file}:{})", n + 1);
            assert!(
                i.report
                    .lines()
                    .any(|l| l.contains(&format!("`{name}`")) && l.contains(&at)),
                "{dir}: setting {name} on line {} has no report line",
                n + 1
            );
            checked += 1;
        }
        assert!(checked > 5, "{dir}: only {checked} settings seen");
    }
}

#[test]
fn a_file_service_taking_every_file_of_a_system_directory_is_imported_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let xml = r#"<Production Name="Sweep" LogGeneralTraceEvents="false">
  <Item Name="Everything in tmp" ClassName="EnsLib.HL7.Service.FileService" PoolSize="1" Enabled="true">
    <Setting Target="Adapter" Name="FilePath">/tmp/</Setting>
  </Item>
  <Item Name="Only hl7 in tmp" ClassName="EnsLib.HL7.Service.FileService" PoolSize="1" Enabled="true">
    <Setting Target="Adapter" Name="FilePath">/tmp/</Setting>
    <Setting Target="Adapter" Name="FileSpec">*.hl7</Setting>
  </Item>
  <Item Name="Own directory" ClassName="EnsLib.HL7.Service.FileService" PoolSize="1" Enabled="true">
    <Setting Target="Adapter" Name="FilePath">/data/hl7-in/</Setting>
  </Item>
</Production>
"#;
    let file = dir.path().join("Sweep.xml");
    std::fs::write(&file, xml).unwrap();
    let i = hie_import::import(&[file], &hie_import::Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let p = checked(&i);
    assert!(!p.item("Everything in tmp").unwrap().enabled);
    assert!(p.item("Only hl7 in tmp").unwrap().enabled);
    assert!(p.item("Own directory").unwrap().enabled);
    let start = i.report.find("### `Everything in tmp`").unwrap();
    assert!(
        i.report[start..].contains("is a system directory and FileSpec takes every file"),
        "{}",
        i.report
    );
}
