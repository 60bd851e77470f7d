//! Compile and run: IRIS semantics end to end, on real HL7 messages.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::eval::Document;

const ADT_A01: &str = "MSH|^~\\&|PAS|HOSP|HIE|HOSP|20240101120000||ADT^A01^ADT_A01|c1|P|2.5\r\
EVN|A01|20240101120000\r\
PID|1||123^^^MRN^MR~456^^^NHS^NH||O\"BRIEN^JOHN||19700101|M\r\
PV1|1|I|W1^R1^B1\r";

const ADT_A08_OUTPATIENT: &str = "MSH|^~\\&|PAS|HOSP|HIE|HOSP|20240101120000||ADT^A08|c2|P|2.5\r\
EVN|A08|20240101120000\r\
PID|1||789^^^MRN^MR||DOE^JANE||19850505|F\r\
PV1|1|O|CLINIC\r";

const ORM_O01: &str = "MSH|^~\\&|EPR|HOSP|HIE|HOSP|20240101120000||ORM^O01|c4|P|2.5\r\
PID|1||123^^^MRN^MR||DOE^JOHN\r\
PV1|1|I|W1\r\
ORC|NW|1\r\
OBR|1|1||XR^Chest X-ray\r";

const ORU_R01: &str = "MSH|^~\\&|LAB|HOSP|HIE|HOSP|20240101120000||ORU^R01|c3|P|2.5\r\
PID|1||123^^^MRN^MR||DOE^JOHN\r\
PV1|1|I\r\
ORC|RE|1\r\
OBR|1|1||CBC^Blood count\r\
OBX|1|NM|WBC^White cells||7.1\r\
OBX|2|NM|HGB^Haemoglobin||13.2\r\
ZLB|local\r\
ORC|RE|2\r\
OBR|2|2||K^Potassium\r\
OBX|1|NM|K^Potassium||6.8|||HH\r";

fn ctx() -> CompileContext {
    CompileContext {
        file: PathBuf::from("rules/Demo.Router.cls"),
        line_offset: 10,
        ..CompileContext::default()
    }
}

fn definition(rules: &str) -> String {
    format!(
        "<ruleDefinition alias=\"\" context=\"EnsLib.HL7.MsgRouter.RoutingEngine\" production=\"Demo.Production\">\n\
         <ruleSet name=\"main\" effectiveBegin=\"\" effectiveEnd=\"\">\n{rules}\n</ruleSet>\n</ruleDefinition>"
    )
}

/// Why each disabled rule is disabled, by rule name.
fn reasons(c: &Compiled) -> BTreeMap<&str, &str> {
    c.disabled
        .iter()
        .map(|d| (d.rule.as_str(), d.reason.as_str()))
        .collect()
}

fn compiled(rules: &str) -> Compiled {
    compile(&definition(rules), &ctx()).unwrap()
}

fn run(c: &Compiled, msg: &str, source: &str) -> crate::eval::Outcome {
    let m = hie_hl7::Message::parse(msg.as_bytes()).unwrap();
    let doc = Document::new(&m);
    // through JSON, as the plugin gets it
    let set = RuleSet::from_json(&c.rule_set.to_json()).unwrap();
    set.evaluate(&doc, source)
}

fn targets(rules: &str, msg: &str) -> Vec<String> {
    let c = compiled(rules);
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    run(&c, msg, "PAS-in")
        .targets()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// One rule with one condition sending to `yes`, else `no`.
fn decide(condition: &str, msg: &str) -> &'static str {
    let rules = format!(
        "<rule name=\"t\"><when condition=\"{condition}\"><send transform=\"\" target=\"yes\"/></when>\
         <otherwise><send transform=\"\" target=\"no\"/></otherwise></rule>"
    );
    let c = compiled(&rules);
    assert!(c.disabled.is_empty(), "{condition}: {:?}", c.disabled);
    match run(&c, msg, "PAS-in").targets().as_slice() {
        ["yes"] => "yes",
        ["no"] => "no",
        other => panic!("{condition}: {other:?}"),
    }
}

fn holds(condition: &str, msg: &str) -> bool {
    decide(condition, msg) == "yes"
}

#[test]
fn the_first_true_when_fires_else_otherwise() {
    let rules = r#"<rule name="by class">
        <when condition="HL7.{PV1:2}=&quot;I&quot;"><send transform="" target="inpatients"/></when>
        <when condition="1"><send transform="" target="everyone"/></when>
        <otherwise><send transform="" target="nobody"/></otherwise>
      </rule>"#;
    assert_eq!(targets(rules, ADT_A01), ["inpatients"]);
    assert_eq!(targets(rules, ADT_A08_OUTPATIENT), ["everyone"]);
    let rules = r#"<rule><when condition="0"><send transform="" target="a"/></when>
        <otherwise><send transform="" target="b"/></otherwise></rule>"#;
    assert_eq!(targets(rules, ADT_A01), ["b"]);
}

#[test]
fn every_matching_rule_runs_until_a_return() {
    let rules = r#"
      <rule name="audit"><when condition="1"><send transform="" target="audit"/></when></rule>
      <rule name="adt"><constraint name="docName" value="ADT_A01"/>
        <when condition="1"><send transform="" target="pas"/><return/></when></rule>
      <rule name="after"><when condition="1"><send transform="" target="late"/></when></rule>"#;
    assert_eq!(targets(rules, ADT_A01), ["audit", "pas"]);
    assert_eq!(targets(rules, ADT_A08_OUTPATIENT), ["audit", "late"]);
    let c = compiled(rules);
    let out = run(&c, ADT_A01, "x");
    assert!(out.returned);
    assert_eq!(out.fired, ["audit", "adt"]);
    assert_eq!(out.sends[1].rule, "adt");
}

#[test]
fn a_disabled_rule_does_not_run_and_is_reported() {
    let rules = r#"<rule name="old" disabled="true"><when condition="1"><send transform="" target="old"/></when></rule>
      <rule name="new" disabled="false"><when condition="1"><send transform="" target="new"/></when></rule>"#;
    let c = compiled(rules);
    assert_eq!(run(&c, ADT_A01, "x").targets(), ["new"]);
    assert_eq!(c.disabled.len(), 1);
    assert_eq!(c.disabled[0].rule, "old");
    assert_eq!(c.disabled[0].line, 13, "line 3 of the XML plus the offset 10");
    assert!(c.disabled[0].reason.contains("disabled=\"true\""));
    assert_eq!(c.disabled[0].file, PathBuf::from("rules/Demo.Router.cls"));
}

#[test]
fn targets_and_transforms_are_comma_lists() {
    let rules = r#"<rule><when condition="1"><send transform="" target="a, ,b,,c"/></when></rule>"#;
    assert_eq!(targets(rules, ADT_A01), ["a", "b", "c"]);
    let rules = r#"<rule name="mapped"><when condition="1">
        <send transform="Demo.DTL.One, Demo.DTL.Two" target="EMR"/></when></rule>
      <rule name="plain"><when condition="1"><send transform="" target="Archive"/></when></rule>"#;
    let c = compiled(rules);
    assert_eq!(c.transforms, ["Demo.DTL.One", "Demo.DTL.Two"]);
    assert_eq!(c.targets.iter().collect::<Vec<_>>(), ["Archive", "EMR"]);
    assert_eq!(c.disabled.len(), 1);
    assert_eq!(c.disabled[0].rule, "mapped");
    assert!(
        c.disabled[0]
            .reason
            .contains("DTL transforms Demo.DTL.One, Demo.DTL.Two, which do not carry over"),
        "{}",
        c.disabled[0].reason
    );
    // the transform list stays in the JSON, in order
    let Action::Send { transforms, .. } = &c.rule_set.sets[0].rules[0].whens[0].actions[0] else {
        panic!()
    };
    assert_eq!(transforms, &["Demo.DTL.One", "Demo.DTL.Two"]);
    assert_eq!(run(&c, ADT_A01, "x").targets(), ["Archive"]);
}

#[test]
fn constraints_source_doc_name_doc_type_category() {
    let rule = |constraint: &str| {
        format!("<rule>{constraint}<when condition=\"1\"><send transform=\"\" target=\"hit\"/></when></rule>")
    };
    let hit = |constraint: &str, msg: &str, source: &str| {
        let c = compiled(&rule(constraint));
        !run(&c, msg, source).sends.is_empty()
    };
    let source = r#"<constraint name="source" value="Lab-in,PAS-in"/>"#;
    assert!(hit(source, ADT_A01, "PAS-in"));
    assert!(!hit(source, ADT_A01, "Other"));
    let name = r#"<constraint name="docName" value="ADT_A04,ADT_A08"/>"#;
    assert!(hit(name, ADT_A08_OUTPATIENT, "x"));
    assert!(!hit(name, ADT_A01, "x"));
    // ADT^A08 has structure ADT_A01 in 2.5
    let doc_type = r#"<constraint name="docType" value="2.5:ADT_A01"/>"#;
    assert!(hit(doc_type, ADT_A08_OUTPATIENT, "x"));
    assert!(hit(doc_type, ADT_A01, "x"));
    assert!(!hit(doc_type, ORU_R01, "x"));
    assert!(hit(
        r#"<constraint name="docType" value="ORU_R01"/>"#,
        ORU_R01,
        "x"
    ));
    assert!(!hit(
        r#"<constraint name="docType" value="2.4:ADT_A01"/>"#,
        ADT_A01,
        "x"
    ));
    assert!(hit(
        r#"<constraint name="docCategory" value="2.5"/>"#,
        ADT_A01,
        "x"
    ));
    assert!(!hit(
        r#"<constraint name="docCategory" value="2.3.1"/>"#,
        ADT_A01,
        "x"
    ));
    assert!(hit(
        r#"<constraint name="msgClass" value="EnsLib.HL7.Message"/>"#,
        ADT_A01,
        "x"
    ));
    // all constraints must hold
    let both = format!("{source}{name}");
    assert!(hit(&both, ADT_A08_OUTPATIENT, "PAS-in"));
    assert!(!hit(&both, ADT_A08_OUTPATIENT, "Other"));
}

#[test]
fn a_custom_category_stands_for_its_base_version() {
    let mut cx = ctx();
    cx.custom_categories.insert("HospADT".into(), "2.5".into());
    let xml = definition(
        r#"<rule><constraint name="docCategory" value="HospADT"/><constraint name="docName" value="ORM_O01"/>
           <when condition="HL7.{PIDgrp.PV1grp.PV1:PatientClass}=&quot;I&quot;"><send transform="" target="hit"/></when></rule>"#,
    );
    let c = compile(&xml, &cx).unwrap();
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(run(&c, ORM_O01, "x").targets(), ["hit"]);
    assert!(run(&c, ADT_A01, "x").targets().is_empty());
    // without the category map the import warns, with file and line
    let c = compile(&xml, &ctx()).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].message.contains("\"HospADT\""), "{}", c.warnings[0]);
    assert_eq!(c.warnings[0].line, 13);
}

#[test]
fn strings_with_quotes_and_xml_escapes() {
    // &quot; is a quote in XML; "" is a quote inside the condition's string
    assert!(holds("HL7.{PID:5.1}=&quot;O&quot;&quot;BRIEN&quot;", ADT_A01));
    assert!(holds(
        "HL7.{MSH:9.1}=&quot;ADT&quot; &amp;&amp; HL7.{MSH:9.2}=&quot;A01&quot;",
        ADT_A01
    ));
    assert!(holds("HL7.{PID:7}&gt;1 || 0", ADT_A01));
}

#[test]
fn precedence_and_or_not_and_documented_example() {
    // x<65&&A="F"||x>80 with x=38, A="F" is 1 (IRIS documentation)
    assert!(holds(
        "38&lt;65&amp;&amp;&quot;F&quot;=&quot;F&quot;||38&gt;80",
        ADT_A01
    ));
    assert!(!holds(
        "90&lt;65&amp;&amp;&quot;F&quot;=&quot;F&quot;||70&gt;80",
        ADT_A01
    ));
    assert!(holds("0&amp;&amp;0||1", ADT_A01), "&& before ||");
    assert!(!holds("0&amp;&amp;(0||1)", ADT_A01));
    assert!(holds("!(HL7.{PV1:2}=&quot;O&quot;)", ADT_A01));
    assert!(holds("!0&amp;&amp;1", ADT_A01));
    assert!(holds("((1=1) || (1=3)) &amp;&amp; (2=2)", ADT_A01));
}

#[test]
fn comparisons_follow_objectscript() {
    // < > are numeric: the birth date as a number
    assert!(holds("HL7.{PID:7}&gt;19691231", ADT_A01));
    assert!(!holds("HL7.{PID:7}&gt;19700101", ADT_A01));
    assert!(holds("HL7.{PID:7}&gt;=19700101", ADT_A01));
    assert!(
        holds("HL7.{PID:7}&lt;=&quot;19700101abc&quot;", ADT_A01),
        "numeric prefix"
    );
    // = is a string comparison: 1 and "01" differ, a literal 01 is the number 1
    assert!(holds("HL7.{PID:1}=1", ADT_A01));
    assert!(!holds("HL7.{PID:1}=&quot;01&quot;", ADT_A01));
    assert!(holds("HL7.{PID:1}=01", ADT_A01));
    assert!(holds("HL7.{PV1:2}!=&quot;O&quot;", ADT_A01));
    assert!(holds("HL7.{PV1:3}[&quot;R1&quot;", ADT_A01));
    assert!(holds("HL7.{PV1:3}'[&quot;R9&quot;", ADT_A01));
    assert!(holds("HL7.{PID:8}'=&quot;&quot;", ADT_A01));
    assert!(
        holds("HL7.{PID:99}=&quot;&quot;", ADT_A01),
        "an absent field is empty"
    );
    assert!(holds("1+2.5*2=6", ADT_A01) == holds("1+(2.5*2=6)", ADT_A01));
    assert!(holds("(1+2.5*2)=6", ADT_A01));
    // comparisons bind tighter than concatenation (the documented IRIS order)
    assert!(holds(
        "(HL7.{MSH:9.1}_&quot;^&quot;_HL7.{MSH:9.2})=&quot;ADT^A01&quot;",
        ADT_A01
    ));
    assert!(!holds(
        "HL7.{MSH:9.1}_&quot;^&quot;_HL7.{MSH:9.2}=&quot;ADT^A01&quot;",
        ADT_A01
    ));
    // < and > compare numbers: two words are both 0
    assert!(!holds("HL7.{PV1:2}&lt;&quot;J&quot;", ADT_A01));
}

#[test]
fn each_word_operator_infix_and_as_a_function() {
    let cases: &[(&str, bool)] = &[
        ("HL7.{MSH:9} Contains &quot;A01&quot;", true),
        ("HL7.{MSH:9} DoesNotContain &quot;A01&quot;", false),
        ("HL7.{MSH:9.1} StartsWith &quot;AD&quot;", true),
        ("HL7.{MSH:9.1} DoesNotStartWith &quot;AD&quot;", false),
        ("HL7.{MSH:9.2} In &quot;A01,A04&quot;", true),
        ("HL7.{MSH:9.2} in &quot;A04,A08&quot;", false),
        ("HL7.{MSH:9.2} NotIn &quot;A04,A08&quot;", true),
        ("HL7.{MSH:9} Like &quot;ADT^A0_%&quot;", true),
        ("HL7.{MSH:9} NotLike &quot;ORU%&quot;", true),
        ("HL7.{PID:7} Matches &quot;8N&quot;", true),
        ("HL7.{PID:7} DoesNotMatch &quot;8N&quot;", false),
        ("HL7.{MSH:9.2} RegexMatch &quot;A0[1-4]&quot;", true),
        (
            "HL7.{PID:3().5} IntersectsList &quot;&lt;NH&gt;&lt;XX&gt;&quot;",
            true,
        ),
        (
            "HL7.{PID:3().5} DoesNotIntersectList &quot;&lt;NH&gt;&lt;XX&gt;&quot;",
            false,
        ),
        ("Contains(HL7.{MSH:9},&quot;A01&quot;)", true),
        ("IN(HL7.{MSH:9.2},&quot;A01,A04&quot;)", true),
        ("StartsWith(HL7.{PID:5},&quot;O&quot;)", true),
        (
            "IntersectsList(HL7.{PID:3().4},&quot;NHS,XYZ&quot;,&quot;&gt;&lt;&quot;,&quot;,&quot;)",
            true,
        ),
        ("Length(HL7.{PID:3}) = 25", true),
        ("Length(HL7.{PID:3},&quot;~&quot;) = 2", true),
        ("ToLower(HL7.{MSH:3})=&quot;pas&quot;", true),
        ("ToUpper(&quot;pas&quot;)=HL7.{MSH:3}", true),
        ("SubString(HL7.{PID:7},1,4)=&quot;1970&quot;", true),
        ("Piece(HL7.{PV1:3},&quot;^&quot;,2)=&quot;R1&quot;", true),
        ("Max(HL7.{PID:1},5,2)=5", true),
        ("Round(2.567,1)=2.6", true),
        (
            "If(HL7.{PV1:2}=&quot;I&quot;,&quot;in&quot;,&quot;out&quot;)=&quot;in&quot;",
            true,
        ),
        ("Not(HL7.{PV1:2}=&quot;I&quot;)", false),
    ];
    for (condition, want) in cases {
        assert_eq!(holds(condition, ADT_A01), *want, "{condition}");
    }
}

#[test]
fn named_and_numeric_paths() {
    assert!(holds(
        "HL7.{MSH:MessageType.MessageCode}=&quot;ADT&quot;",
        ADT_A01
    ));
    assert!(holds(
        "HL7.{MSH:MessageType.TriggerEvent}=&quot;A01&quot;",
        ADT_A01
    ));
    assert!(holds(
        "Document.{PID:PatientName.GivenName}=&quot;JOHN&quot;",
        ADT_A01
    ));
    assert!(holds("HL7.{PID:PatientIdentifierList(2).IDNumber}=456", ADT_A01));
    assert!(holds("HL7.{PID:3(2).1}=456", ADT_A01));
    assert!(
        holds("HL7.{PID:3.1}=123", ADT_A01),
        "no repetition index: the first"
    );
    assert!(holds("HL7.{PID:3(*)}=2", ADT_A01));
    assert!(holds(
        "HL7.{PID:3().1}=&quot;&lt;123&gt;&lt;456&gt;&quot;",
        ADT_A01
    ));
    assert!(holds("HL7.{PV1:PatientClass}=&quot;I&quot;", ADT_A01));
    assert!(
        holds("HL7.{MSH:9}=&quot;ADT^A01^ADT_A01&quot;", ADT_A01),
        "a whole field"
    );
    assert!(holds(
        "HL7.{MSH:1}=&quot;|&quot; &amp;&amp; HL7.{MSH:2}=&quot;^~\\&amp;&quot;",
        ADT_A01
    ));
    assert!(holds(
        "HL7.Name=&quot;ADT_A08&quot; &amp;&amp; HL7.DocType=&quot;2.5:ADT_A01&quot;",
        ADT_A08_OUTPATIENT
    ));
    assert!(holds("Source=&quot;PAS-in&quot;", ADT_A01));
    assert!(holds("HL7.ParentId=&quot;&quot;", ADT_A01));
    assert!(holds(
        "HL7.{OBX(2):3.1}=&quot;HGB&quot; &amp;&amp; HL7.{OBX(*)}=3",
        ORU_R01
    ));
    // square brackets: the field in every such segment, wherever it is
    assert!(holds(
        "HL7.[OBX:3.1]=&quot;&lt;WBC&gt;&lt;HGB&gt;&lt;K&gt;&quot;",
        ORU_R01
    ));
    assert!(holds("HL7.[OBR:4.1]=&quot;&lt;CBC&gt;&lt;K&gt;&quot;", ORU_R01));
    assert!(
        holds("HL7.[PID:3.1]=123", ORU_R01),
        "one segment: the plain value"
    );
    assert!(holds(
        "HL7.[OBX:ObservationIdentifier.Identifier] IntersectsList &quot;&lt;K&gt;&quot;",
        ORU_R01
    ));
    // parentheses: all values of a path with ()
    assert!(holds(
        "HL7.(OBX():3.1)=&quot;&lt;WBC&gt;&lt;HGB&gt;&lt;K&gt;&quot;",
        ORU_R01
    ));
}

#[test]
fn a_name_at_the_same_position_in_every_version_reads_any_message() {
    // MSH-12 names no version HIE knows: PV1-2 is PatientClass in all of them
    let msg = ADT_A01.replace("|P|2.5\r", "|P|9.9\r");
    assert!(holds("HL7.{PV1:PatientClass}=&quot;I&quot;", &msg));
    // a name only some versions have needs one of them
    assert!(!holds(
        "HL7.{PID:PatientName.familylastname}[&quot;BRIEN&quot;",
        &msg
    ));
    let v231 = ADT_A01.replace("|P|2.5\r", "|P|2.3.1\r");
    assert!(holds(
        "HL7.{PID:PatientName.familylastname}[&quot;BRIEN&quot;",
        &v231
    ));
}

#[test]
fn older_versions_use_their_own_names() {
    let msg = "MSH|^~\\&|PAS|H|HIE|H|20240101||ADT^A01|c1|P|2.3.1\rPID|1||123||SMITH^ANN\rPV1|1|I\r";
    let rules = r#"<rule><constraint name="docCategory" value="2.3.1"/>
      <when condition="HL7.{PID:PatientName(1).familylastname}=&quot;SMITH&quot;"><send transform="" target="hit"/></when></rule>"#;
    assert_eq!(targets(rules, msg), ["hit"]);
    // a name the version does not have disables the rule, saying where and why
    let rules = r#"<rule name="typo"><constraint name="docCategory" value="2.5"/>
      <when condition="HL7.{PID:PatientNme}=&quot;x&quot;"><send transform="" target="hit"/></when></rule>"#;
    let c = compiled(rules);
    assert_eq!(c.disabled.len(), 1);
    let reason = &c.disabled[0].reason;
    assert!(reason.contains("condition on line 14"), "{reason}");
    assert!(
        reason.contains("HL7 2.5 segment PID has no field `PatientNme`"),
        "{reason}"
    );
}

#[test]
fn group_paths_with_repetition_indexes() {
    let oru = r#"<constraint name="docName" value="ORU_R01"/>"#;
    let rule = |cond: &str| {
        format!("<rule>{oru}<when condition=\"{cond}\"><send transform=\"\" target=\"hit\"/></when></rule>")
    };
    let hit = |cond: &str| targets(&rule(cond), ORU_R01) == ["hit"];
    assert!(hit("HL7.{PIDgrpgrp(1).PIDgrp.PID:3.1}=123"));
    assert!(hit(
        "HL7.{PIDgrpgrp(1).PIDgrp.PV1grp.PV1:PatientClass}=&quot;I&quot;"
    ));
    assert!(hit("HL7.{PIDgrpgrp(1).ORCgrp(2).OBR:4.1}=&quot;K&quot;"));
    assert!(hit("HL7.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX:5}=13.2"));
    assert!(hit(
        "HL7.{PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).OBX:ObservationValue}&gt;6"
    ));
    assert!(hit("HL7.{PIDgrpgrp(1).ORCgrp(*)}=2"));
    assert!(hit("HL7.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(*)}=2"));
    assert!(hit(
        "HL7.{PIDgrpgrp(1).ORCgrp().OBR:4.1}=&quot;&lt;CBC&gt;&lt;K&gt;&quot;"
    ));
    assert!(hit(
        "HL7.{PIDgrpgrp().ORCgrp().OBXgrp().OBX:3.1} IntersectsList &quot;&lt;K&gt;&lt;NA&gt;&quot;"
    ));
    assert!(
        hit("HL7.{PIDgrpgrp(1).ORCgrp(3).OBR:4.1}=&quot;&quot;"),
        "a missing group reads empty"
    );
    // the group path in a message of another structure reads empty
    let c = compiled(
        "<rule><when condition=\"HL7.{PIDgrpgrp(1).ORCgrp(1).OBR:4.1}=&quot;CBC&quot;\"><send transform=\"\" target=\"hit\"/></when></rule>",
    );
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    assert_eq!(run(&c, ORU_R01, "x").targets(), ["hit"]);
    assert!(run(&c, ADT_A01, "x").targets().is_empty());
    // a group the structure does not have
    let c = compiled(&rule("HL7.{PIDgrpgrp(1).NOPEgrp.OBR:4}=1"));
    assert!(
        c.disabled[0]
            .reason
            .contains("does not exist in any message structure"),
        "{:?}",
        c.disabled
    );
}

#[test]
fn foreach_runs_its_clauses_per_segment() {
    let rules = r#"<rule name="critical"><constraint name="docName" value="ORU_R01"/>
      <when condition="1">
        <foreach propertypath="HL7.{PIDgrpgrp().ORCgrp().OBXgrp().OBX}">
          <when condition="Segment.{ObservationIdentifier.Identifier}=&quot;K&quot; &amp;&amp; Segment.{5}&gt;6">
            <send transform="" target="critical"/>
          </when>
          <when condition="Segment.{3.1}=&quot;HGB&quot;"><send transform="" target="haematology"/></when>
          <otherwise><trace value="&quot;not routed: &quot;_Segment.{3.1}"/></otherwise>
        </foreach>
        <send transform="" target="lab"/>
      </when></rule>"#;
    let c = compiled(rules);
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    let out = run(&c, ORU_R01, "x");
    assert_eq!(out.targets(), ["haematology", "critical", "lab"]);
    assert_eq!(out.traces, ["not routed: WBC"]);
    // a return inside the foreach ends everything
    let rules = r#"<rule><when condition="1">
        <foreach propertypath="HL7.{OBX()}">
          <when condition="Segment.{OBX:8}=&quot;HH&quot;"><send transform="" target="critical"/><return/></when>
        </foreach>
        <send transform="" target="lab"/></when></rule>
      <rule><when condition="1"><send transform="" target="late"/></when></rule>"#;
    assert_eq!(targets(rules, ORU_R01), ["critical"]);
    assert_eq!(targets(rules, ADT_A01), ["lab", "late"]);
}

#[test]
fn unsupported_things_disable_their_rule_with_the_reason() {
    let rules = r#"<rule name="custom"><when condition="MyPkg.Functions.IsVip(HL7.{PID:3.1})"><send transform="" target="vip"/></when></rule>
      <rule name="assign"><when condition="1"><assign property="RuleUserData" value="1"/><send transform="" target="a"/></when></rule>
      <rule name="delegate"><when condition="1"><delegate ruleName="Other.Rules"/></when></rule>
      <rule name="context"><when condition="context.Count&gt;1"><send transform="" target="a"/></when></rule>
      <rule name="fine"><when condition="1"><send transform="" target="fine"/></when></rule>"#;
    let c = compiled(rules);
    let reasons = reasons(&c);
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons["custom"].contains("not an IRIS built-in function"),
        "{reasons:?}"
    );
    assert!(reasons["custom"].contains("line 13"), "{reasons:?}");
    assert!(
        reasons["assign"].contains("<assign property=\"RuleUserData\">"),
        "{reasons:?}"
    );
    assert!(reasons["delegate"].contains("<delegate>"), "{reasons:?}");
    assert!(
        reasons["context"].contains("`context.Count` is not a property"),
        "{reasons:?}"
    );
    assert_eq!(run(&c, ADT_A01, "x").targets(), ["fine"]);
    let line_of = |name: &str| c.disabled.iter().find(|d| d.rule == name).unwrap().line;
    assert_eq!((line_of("custom"), line_of("assign")), (13, 14));
}

#[test]
fn unnamed_rules_get_irish_names_and_nested_rules_run() {
    let rules = r#"<rule><when condition="1">
        <rule><constraint name="docName" value="ADT_A01"/><when condition="1"><send transform="" target="inner"/></when></rule>
        <send transform="" target="outer"/></when></rule>
      <rule><when condition="1"><delete/></when></rule>"#;
    let c = compiled(rules);
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    assert_eq!(c.rule_set.sets[0].rules[0].name, "rule#1");
    let out = run(&c, ADT_A01, "x");
    assert_eq!(out.targets(), ["inner", "outer"]);
    assert_eq!(out.sends[0].rule, "rule#1/rule#1");
    assert_eq!(out.deleted_by.as_deref(), Some("rule#2"));
    assert_eq!(run(&c, ADT_A08_OUTPATIENT, "x").targets(), ["outer"]);
    // a rule that only holds a nested rule fires when the nested one does
    let c = compiled(
        r#"<rule name="outer"><rule name="inner"><constraint name="docName" value="ORU_R01"/>
             <when condition="1"><return/></when></rule></rule>"#,
    );
    assert!(run(&c, ADT_A01, "x").fired.is_empty());
    assert_eq!(run(&c, ORU_R01, "x").fired, ["inner"]);
}

#[test]
fn lookup_tables_come_from_the_import() {
    let mut cx = ctx();
    cx.lookup_tables.insert(
        "RouteByFacility".into(),
        BTreeMap::from([("HOSP".to_owned(), "main".to_owned())]),
    );
    cx.lookup_tables.insert("Unused".into(), BTreeMap::new());
    let xml = definition(
        r#"<rule><when condition="Lookup(&quot;RouteByFacility&quot;,HL7.{MSH:4})=&quot;main&quot; &amp;&amp; Exists(&quot;RouteByFacility&quot;,&quot;HOSP&quot;)">
           <send transform="" target="hit"/></when></rule>
           <rule><when condition="Exists(&quot;Missing&quot;,HL7.{MSH:4})"><send transform="" target="never"/></when></rule>"#,
    );
    let c = compile(&xml, &cx).unwrap();
    assert_eq!(
        c.rule_set.lookups.keys().collect::<Vec<_>>(),
        ["RouteByFacility"],
        "only tables used"
    );
    assert_eq!(run(&c, ADT_A01, "x").targets(), ["hit"]);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0]
            .message
            .contains("\"Missing\" is not part of this import"),
        "{}",
        c.warnings[0]
    );
    assert_eq!(c.warnings[0].line, 15);
}

#[test]
fn rule_sets_by_effective_date() {
    let xml = r#"<ruleDefinition context="EnsLib.HL7.MsgRouter.RoutingEngine">
      <ruleSet name="2023" effectiveBegin="2023-01-01T00:00:00" effectiveEnd="2023-12-31T23:59:59">
        <rule><when condition="1"><send transform="" target="old"/></when></rule></ruleSet>
      <ruleSet name="current" effectiveBegin="2024-01-01T00:00:00" effectiveEnd="">
        <rule><when condition="1"><send transform="" target="new"/></when></rule></ruleSet>
    </ruleDefinition>"#;
    let c = compile(xml, &ctx()).unwrap();
    let m = hie_hl7::Message::parse(ADT_A01.as_bytes()).unwrap();
    let doc = Document::new(&m);
    assert_eq!(
        c.rule_set.evaluate_at(&doc, "x", "2023-06-01T00:00:00").targets(),
        ["old"]
    );
    assert_eq!(
        c.rule_set.evaluate_at(&doc, "x", "2025-06-01T00:00:00").targets(),
        ["new"]
    );
    let none = c.rule_set.evaluate_at(&doc, "x", "2022-06-01T00:00:00");
    assert!(none.targets().is_empty() && none.rule_set.is_none());
}

#[test]
fn input_that_is_not_a_rule_definition() {
    let e = compile("<Production Name=\"x\"></Production>", &ctx()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules/Demo.Router.cls:11: expected a <ruleDefinition> (an IRIS rule class's XData RuleDefinition), found <Production>"
    );
    let e = compile("<ruleDefinition>\n<ruleSet>\n</rule>", &ctx()).unwrap_err();
    assert!(e.message.contains("not well-formed XML"), "{e}");
    assert_eq!(e.line, 13);
}

#[test]
fn warnings_for_what_behaves_differently() {
    let c = compiled(
        r#"<rule><constraint name="msgClass" value="EnsLib.EDI.XML.Document"/><when condition="1"><send transform="" target="a"/></when></rule>
           <rule><when condition="1"><send transform="" target=""/></when></rule>"#,
    );
    let messages: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("never holds"));
    assert!(messages[1].contains("names no target"));
    assert!(run(&c, ADT_A01, "x").targets().is_empty());
}

#[test]
fn json_round_trip_and_format_check() {
    let c = compiled(
        r#"<rule><constraint name="docName" value="ORU_R01"/><when condition="HL7.{PIDgrpgrp(1).ORCgrp(1).OBR:4.1}=&quot;CBC&quot;"><send transform="" target="a"/></when></rule>"#,
    );
    let json = c.rule_set.to_json();
    assert_eq!(RuleSet::from_json(&json).unwrap(), c.rule_set);
    assert!(
        c.rule_set.structures.contains_key("2.5:ORU_R01"),
        "{:?}",
        c.rule_set.structures.keys()
    );
    let bad = json.replacen("\"format\":1", "\"format\":99", 1);
    assert!(RuleSet::from_json(&bad).unwrap_err().contains("format 99"));
    assert!(
        RuleSet::from_json("{")
            .unwrap_err()
            .starts_with("IRIS rules JSON does not parse")
    );
}

#[test]
fn actions_directly_in_a_rule_set_run_in_order() {
    let rules = r#"<send transform="" target="first"/>
      <rule><constraint name="docName" value="ADT_A01"/><when condition="1"><send transform="" target="adt"/></when></rule>
      <return/>
      <send transform="" target="never"/>"#;
    let c = compiled(rules);
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(run(&c, ADT_A01, "x").targets(), ["first", "adt"]);
    assert_eq!(run(&c, ORU_R01, "x").targets(), ["first"]);
    assert_eq!(c.rule_set.sets[0].rules[0].name, "action#1");
    let c = compiled(r#"<send transform="Demo.DTL" target="mapped"/>"#);
    assert_eq!(c.disabled[0].rule, "action#1");
    assert!(c.disabled[0].reason.contains("Demo.DTL"));
}

#[test]
fn a_rule_disabled_for_one_clause_says_all_its_clauses_are_lost() {
    let c = compiled(
        r#"<rule name="two"><when condition="HL7.{PV1:2}=&quot;I&quot;"><send transform="Demo.DTL" target="a"/></when>
           <when condition="1"><send transform="" target="b"/></when></rule>"#,
    );
    assert!(
        c.disabled[0]
            .reason
            .contains("line 13 runs the DTL transform Demo.DTL"),
        "{}",
        c.disabled[0].reason
    );
    assert!(
        c.disabled[0]
            .reason
            .ends_with("(the whole rule is disabled: all 2 of its <when>/<otherwise> clauses)")
    );
    assert!(run(&c, ADT_A01, "x").targets().is_empty());
}

#[test]
fn the_receiving_services_category_replaces_msh_12() {
    // IRIS takes the category from the service's MessageSchemaCategory, not MSH-12
    let mut cx = ctx();
    cx.custom_categories.insert("HospADT".into(), "2.5".into());
    let xml = definition(
        r#"<rule><constraint name="docCategory" value="HospADT"/>
           <when condition="HL7.DocType=&quot;HospADT:ADT_A01&quot; &amp;&amp; HL7.{PV1:PatientClass}=&quot;I&quot;"><send transform="" target="hit"/></when></rule>
           <rule><constraint name="docCategory" value="2.4"/><when condition="1"><send transform="" target="v24"/></when></rule>"#,
    );
    let c = compile(&xml, &cx).unwrap();
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    let set = RuleSet::from_json(&c.rule_set.to_json()).unwrap();
    assert_eq!(set.category_version("HospADT"), Some("2.5"));
    assert_eq!(set.category_version("hospadt"), Some("2.5"));
    assert_eq!(set.category_version("2.3.1"), Some("2.3.1"));
    assert_eq!(set.category_version("Unknown"), None);
    // the message says 2.3: by MSH-12 no rule matches
    let msg = ADT_A01.replace("|P|2.5\r", "|P|2.3\r");
    let m = hie_hl7::Message::parse(msg.as_bytes()).unwrap();
    assert!(set.evaluate(&Document::new(&m), "x").targets().is_empty());
    let doc = Document::new(&m).with_category("HospADT", set.category_version("HospADT"));
    assert_eq!(doc.doc_type(), "HospADT:ADT_A01");
    assert_eq!(set.evaluate(&doc, "x").targets(), ["hit"]);
    let doc = Document::new(&m).with_category("2.4", set.category_version("2.4"));
    assert_eq!(set.evaluate(&doc, "x").targets(), ["v24"]);
    // a service category 2.5 is not the custom category HospADT (even if based on 2.5)
    let doc = Document::new(&m).with_category("2.5", set.category_version("2.5"));
    assert!(set.evaluate(&doc, "x").targets().is_empty());
}

#[test]
fn a_bare_segment_path_into_a_group_is_warned() {
    let c = compiled(
        r#"<rule><constraint name="docName" value="ORU_R01"/><constraint name="docCategory" value="2.5"/>
           <when condition="HL7.{OBX:3.1}=&quot;WBC&quot; &amp;&amp; HL7.{PID:3.1}=123"><send transform="" target="a"/></when></rule>"#,
    );
    assert!(c.disabled.is_empty(), "{:?}", c.disabled);
    // PID too sits in a group in ORU_R01
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert_eq!((c.warnings[0].line, c.warnings[1].line), (14, 14));
    assert!(
        c.warnings[0]
            .message
            .contains("2.5:ORU_R01 has it at PIDgrpgrp.ORCgrp.OBXgrp.OBX"),
        "{}",
        c.warnings[0].message
    );
    assert!(
        c.warnings[1].message.contains("PIDgrpgrp.PIDgrp.PID"),
        "{}",
        c.warnings[1].message
    );
    // it still reads the first OBX
    assert_eq!(run(&c, ORU_R01, "x").targets(), ["a"]);
    // a segment at the top of the structure is no news
    let c = compiled(
        r#"<rule><constraint name="docName" value="ADT_A01"/><when condition="HL7.{PID:3.1}=123"><send transform="" target="a"/></when></rule>"#,
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn a_second_otherwise_disables_its_rule_in_a_rule_and_in_a_foreach() {
    let rules = r#"<rule name="plain"><when condition="0"><send transform="" target="a"/></when>
        <otherwise><send transform="" target="b"/></otherwise>
        <otherwise><send transform="" target="c"/></otherwise></rule>
      <rule name="segments"><when condition="1">
        <foreach propertypath="HL7.{OBX()}">
          <when condition="0"><send transform="" target="a"/></when>
          <otherwise><send transform="" target="b"/></otherwise>
          <otherwise><send transform="" target="c"/></otherwise>
        </foreach></when></rule>
      <rule name="fine"><when condition="1"><send transform="" target="fine"/></when></rule>"#;
    let c = compiled(rules);
    let reasons = reasons(&c);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    for rule in ["plain", "segments"] {
        assert!(
            reasons[rule].contains("a second <otherwise> (line"),
            "{reasons:?}"
        );
    }
    assert_eq!(run(&c, ORU_R01, "PAS-in").targets(), ["fine"]);
}
