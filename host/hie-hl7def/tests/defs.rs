//! Expectations taken from the HL7 standard and from IRIS paths seen in
//! InterSystems documentation and public IRIS code (see README.md).

use hie_hl7def::{self as def, Element, Usage};

#[test]
fn versions_normalize_with_documented_fallbacks() {
    assert_eq!(def::normalize_version("2.5.1"), Some("2.5.1"));
    assert_eq!(def::normalize_version("2.3.1"), Some("2.3.1"));
    assert_eq!(def::normalize_version(" 2.4 "), Some("2.4"));
    assert_eq!(def::normalize_version("2.8"), Some("2.7.1"));
    assert_eq!(def::normalize_version("2.8.2"), Some("2.7.1"));
    assert_eq!(def::normalize_version("2.9"), Some("2.7.1"));
    assert_eq!(def::normalize_version("2.6.1"), Some("2.6"));
    assert_eq!(def::normalize_version("2.5.2"), Some("2.5"));
    assert_eq!(def::normalize_version("3.0"), None);
    assert_eq!(def::normalize_version("2.x"), None);
    assert_eq!(def::normalize_version("2.5."), None);
    assert_eq!(def::normalize_version(""), None);
    assert_eq!(def::normalize_version("2.10"), None);
    let names: Vec<&str> = def::versions().iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [
            "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1"
        ]
    );
}

#[test]
fn structures_come_from_table_0354_per_version() {
    assert_eq!(def::structure_for("2.5", "ADT", "A08"), Some("ADT_A01"));
    assert_eq!(def::structure_for("2.5.1", "adt", "a04"), Some("ADT_A01"));
    assert_eq!(def::structure_for("2.3.1", "ADT", "A08"), Some("ADT_A01"));
    assert_eq!(def::structure_for("2.4", "ADT", "A28"), Some("ADT_A05"));
    assert_eq!(def::structure_for("2.5", "ADT", "A40"), Some("ADT_A39"));
    assert_eq!(def::structure_for("2.5", "ORU", "R01"), Some("ORU_R01"));
    assert_eq!(def::structure_for("2.3", "ORM", "O01"), Some("ORM_O01"));
    assert_eq!(def::structure_for("2.5", "SIU", "S14"), Some("SIU_S12"));
    assert_eq!(def::structure_for("2.5", "ACK", "A01"), Some("ACK"));
    assert_eq!(def::structure_for("2.8", "ADT", "A08"), Some("ADT_A01"));
    // TYPE_EVENT itself when the version has such a message: 2.1 ORU_R01.
    assert_eq!(def::structure_for("2.1", "ORU", "R01"), Some("ORU_R01"));
    // Structures that do not exist in the version are never returned.
    assert_eq!(def::structure_for("2.1", "ADT", "A60"), None);
    assert_eq!(def::structure_for("2.5", "ADT", "Z99"), None);
    assert_eq!(def::structure_for("2.5", "ORU", "O01"), None);
    assert_eq!(def::structure_for("2.5", "", "A01"), None);
    assert_eq!(def::structure_for("9.9", "ADT", "A01"), None);
    // Another message type's structure only when it is the only one listed.
    assert_eq!(def::structure_for("2.5", "QSX", "J02"), Some("QCN_J01"));
    assert_eq!(def::structure_for("2.4", "LSR", "U13"), Some("LSU_U12"));
}

#[test]
fn older_versions_use_their_own_structures() {
    // InterSystems: "in HL7 Version 2.3.1, the ADT_A05 message ... has the
    // structure type ADT_A01"; HL7 2.3.1 table 0354 lists A21-A33 under ADT_A02
    // and A15 under ADT_A09. 2.4 introduced ADT_A05, ADT_A15 and ADT_A21.
    assert_eq!(def::structure_for("2.3.1", "ADT", "A05"), Some("ADT_A01"));
    assert_eq!(def::structure_for("2.3.1", "ADT", "A31"), Some("ADT_A01"));
    assert_eq!(def::structure_for("2.3.1", "ADT", "A21"), Some("ADT_A02"));
    assert_eq!(def::structure_for("2.3.1", "ADT", "A33"), Some("ADT_A02"));
    assert_eq!(def::structure_for("2.3.1", "ADT", "A15"), Some("ADT_A09"));
    assert_eq!(def::structure_for("2.3", "ADT", "A05"), Some("ADT_A01"));
    assert!(def::message("2.3.1", "ADT_A05").is_none());
    // The same messages in 2.4, as the IRIS 2.4 schema maps them.
    assert_eq!(def::structure_for("2.4", "ADT", "A05"), Some("ADT_A05"));
    assert_eq!(def::structure_for("2.4", "ADT", "A28"), Some("ADT_A05"));
    assert_eq!(def::structure_for("2.4", "ADT", "A22"), Some("ADT_A21"));
    assert_eq!(def::structure_for("2.4", "ADT", "A15"), Some("ADT_A15"));
    assert_eq!(def::structure_for("2.4", "MFK", "M05"), Some("MFK_M01"));
}

#[test]
fn every_structure_table_0354_returns_exists() {
    for v in def::versions() {
        for (t, e) in [
            ("ADT", "A01"),
            ("ADT", "A08"),
            ("ORM", "O01"),
            ("ORU", "R01"),
            ("MDM", "T02"),
            ("SIU", "S12"),
        ] {
            if let Some(s) = def::structure_for(v.name, t, e) {
                assert!(
                    def::message(v.name, s).is_some(),
                    "{} {t}^{e} -> {s} missing",
                    v.name
                );
            }
        }
    }
}

fn path_names(elements: &'static [Element], path: &[&str]) -> Option<&'static Element> {
    let (first, rest) = path.split_first()?;
    let e = elements
        .iter()
        .find(|e| e.iris_name().eq_ignore_ascii_case(first))?;
    if rest.is_empty() {
        Some(e)
    } else {
        path_names(e.children(), rest)
    }
}

#[test]
fn oru_r01_25_groups_have_iris_names() {
    let m = def::message("2.5", "ORU_R01").unwrap();
    let top: Vec<&str> = m.elements.iter().map(|e| e.iris_name()).collect();
    assert_eq!(top, ["MSH", "SFT", "PIDgrpgrp", "DSC"]);
    let Element::Group(g) = path_names(m.elements, &["PIDgrpgrp"]).unwrap() else {
        panic!("not a group")
    };
    assert_eq!(g.hl7_name, "PATIENT_RESULT");
    assert!(g.repeating && !g.optional);
    let obx = path_names(m.elements, &["PIDgrpgrp", "ORCgrp", "OBXgrp", "OBX"]).unwrap();
    assert!(matches!(obx, Element::Segment(s) if s.name == "OBX" && !s.optional && !s.repeating));
    let Element::Group(obxgrp) = path_names(m.elements, &["PIDgrpgrp", "ORCgrp", "OBXgrp"]).unwrap() else {
        panic!()
    };
    assert_eq!(obxgrp.hl7_name, "OBSERVATION");
    assert!(obxgrp.optional && obxgrp.repeating);
    let Element::Group(pv1grp) = path_names(m.elements, &["PIDgrpgrp", "PIDgrp", "PV1grp"]).unwrap() else {
        panic!()
    };
    assert_eq!(pv1grp.hl7_name, "VISIT");
    assert!(pv1grp.optional && !pv1grp.repeating);
    assert!(path_names(m.elements, &["PIDgrpgrp", "ORCgrp", "TQ1grp", "TQ2"]).is_some());
    assert!(path_names(m.elements, &["PIDgrpgrp", "ORCgrp", "SPMgrp", "OBX"]).is_some());
    assert!(path_names(m.elements, &["pidgrpgrp", "orcgrp"]).is_some());
    assert!(path_names(m.elements, &["PIDgrp"]).is_none());
    assert!(m.element("PIDgrpgrp").is_some());
    assert!(m.element("ORCgrp").is_none());
    let steps = m.path(&["PIDgrpgrp", "ORCgrp", "OBXgrp", "OBX"]).unwrap();
    let flags: Vec<(&str, bool, bool)> = steps
        .iter()
        .map(|e| (e.iris_name(), e.optional(), e.repeating()))
        .collect();
    assert_eq!(
        flags,
        [
            ("PIDgrpgrp", false, true),
            ("ORCgrp", false, true),
            ("OBXgrp", true, true),
            ("OBX", false, false)
        ]
    );
    assert!(m.path(&["PIDgrpgrp", "OBXgrp"]).is_none());
    assert_eq!(m.path(&[]).unwrap().len(), 0);
}

#[test]
fn orm_o01_23_choice_is_named_like_iris() {
    // InterSystems documentation: ORCgrp(1).OBRuniongrp.OBXgrp(3).NTE(1) in 2.3:ORM_O01,
    // and ORCgrp(1).OBRuniongrp.OBRunion.OBR in public IRIS code.
    let m = def::message("2.3", "ORM_O01").unwrap();
    assert!(path_names(m.elements, &["ORCgrp", "OBRuniongrp", "OBXgrp", "NTE"]).is_some());
    let Element::Choice(c) = path_names(m.elements, &["ORCgrp", "OBRuniongrp", "OBRunion"]).unwrap() else {
        panic!()
    };
    assert_eq!(c.alternatives, ["OBR", "RQD", "RQ1", "RXO", "ODS", "ODT"]);
    assert!(!c.repeating && !c.optional);
    assert!(path_names(m.elements, &["PIDgrp", "PID"]).is_some());
    let Element::Group(order) = path_names(m.elements, &["ORCgrp"]).unwrap() else {
        panic!()
    };
    assert!(order.repeating);
}

#[test]
fn adt_a01_25_group_names() {
    let m = def::message("2.5", "ADT_A01").unwrap();
    let Element::Group(pr1) = m.element("PR1grp").unwrap() else {
        panic!()
    };
    assert_eq!(pr1.hl7_name, "PROCEDURE");
    let Element::Group(in1) = m.element("IN1grp").unwrap() else {
        panic!()
    };
    assert_eq!(in1.hl7_name, "INSURANCE");
    assert!(in1.element("IN2").unwrap().optional());
}

#[test]
fn field_names_follow_iris() {
    assert_eq!(def::field_index("2.5", "PV1", "PatientClass"), Some(2));
    assert_eq!(def::field_index("2.5", "PV1", "patientclass"), Some(2));
    assert_eq!(def::field_index("2.5", "MSH", "MessageType"), Some(9));
    assert_eq!(def::field_index("2.5", "MSH", "SendingFacility"), Some(4));
    assert_eq!(def::field_index("2.5", "PID", "PatientIdentifierList"), Some(3));
    assert_eq!(def::field_index("2.5", "PID", "PatientName"), Some(5));
    assert_eq!(def::field_index("2.5", "PID", "SetIDPID"), Some(1));
    assert_eq!(def::field_index("2.5", "OBX", "ObservationValue"), Some(5));
    assert_eq!(def::field_index("2.5", "PV1", "PatientType"), Some(18));
    assert_eq!(def::field_index("2.5", "NTE", "SourceofComment"), Some(2));
    assert_eq!(def::field_index("2.3.1", "PID", "PatientName"), Some(5));
    assert_eq!(def::field_index("2.3.1", "PID", "MothersMaidenName"), Some(6));
    assert_eq!(def::field_index("2.5", "PID", "NoSuchField"), None);
    assert_eq!(def::field_index("2.5", "ZZZ", "PatientName"), None);
    let msh9 = def::segment("2.5", "MSH").unwrap().field(9).unwrap();
    assert_eq!(msh9.datatype, "MSG");
    assert_eq!(msh9.usage, Usage::Required);
    assert!(!msh9.repeating());
    assert!(def::segment("2.5", "PID").unwrap().field(3).unwrap().repeating());
    assert!(def::segment("2.5", "PID").unwrap().field(0).is_none());
}

#[test]
fn component_names_follow_iris() {
    assert_eq!(def::component_index("2.5", "MSG", "MessageCode"), Some(1));
    assert_eq!(def::component_index("2.5", "MSG", "TriggerEvent"), Some(2));
    assert_eq!(def::component_index("2.5", "MSG", "MessageStructure"), Some(3));
    assert_eq!(def::component_index("2.3.1", "MSG", "messagetype"), Some(1));
    assert_eq!(def::component_index("2.3.1", "XPN", "familylastname"), Some(1));
    assert_eq!(def::component_index("2.5", "XPN", "FamilyName"), Some(1));
    assert_eq!(def::component_index("2.5", "XPN", "GivenName"), Some(2));
    assert_eq!(def::component_index("2.5", "FN", "Surname"), Some(1));
    assert_eq!(def::component_index("2.5", "CX", "IDNumber"), Some(1));
    assert_eq!(def::component_index("2.5", "EI", "EntityIdentifier"), Some(1));
    assert_eq!(def::component_index("2.5", "CE", "Identifier"), Some(1));
    assert_eq!(def::component_index("2.5", "CE", "Text"), Some(2));
    assert_eq!(def::component_index("2.5", "HD", "NamespaceID"), Some(1));
    assert_eq!(def::component_index("2.5", "XPN", "nosuch"), None);
    assert_eq!(def::component_index("2.5", "NOPE", "FamilyName"), None);
    assert_eq!(
        def::datatype("2.5", "XPN")
            .unwrap()
            .component(1)
            .unwrap()
            .datatype,
        "FN"
    );
}

#[test]
fn iris_name_drops_everything_but_letters_and_digits() {
    assert_eq!(def::iris_name("Patient Name"), "PatientName");
    assert_eq!(def::iris_name("family + last name"), "familylastname");
    assert_eq!(def::iris_name("Family+last Name"), "FamilylastName");
    assert_eq!(def::iris_name("Set ID - PID"), "SetIDPID");
    assert_eq!(def::iris_name("Mother's Maiden Name"), "MothersMaidenName");
    assert_eq!(def::iris_name("Patient ID (Internal ID)"), "PatientIDInternalID");
    assert_eq!(def::iris_name("Date/Time of Message"), "DateTimeofMessage");
    assert_eq!(def::iris_name(" - "), "");
}

#[test]
fn unknown_names_are_none() {
    assert!(def::message("2.5", "XYZ_Z01").is_none());
    assert!(def::message("7.0", "ADT_A01").is_none());
    assert!(def::segment("2.5", "PI").is_none());
    assert!(def::datatype("2.5", "").is_none());
    assert!(def::message("2.5", "adt_a01").is_some());
    assert!(def::segment("2.5", "pid").is_some());
}

#[test]
fn repeated_sibling_names_are_numbered() {
    // ADT_A01 2.5 has ROL after PD1 and again after PV2 at the top level.
    let m = def::message("2.5", "ADT_A01").unwrap();
    let rol: Vec<&str> = m
        .elements
        .iter()
        .map(|e| e.iris_name())
        .filter(|n| n.starts_with("ROL"))
        .collect();
    assert_eq!(rol, ["ROL", "ROL2"]);
    let Element::Segment(rol2) = m.element("rol2").unwrap() else {
        panic!()
    };
    assert_eq!(rol2.name, "ROL");
    // The ROL inside PR1grp is the first of its own siblings.
    let Element::Group(pr1) = m.element("PR1grp").unwrap() else {
        panic!()
    };
    assert!(pr1.element("ROL").is_some() && pr1.element("ROL2").is_none());
    // ADT_A17 2.5 carries two patients: PID, PD1, PV1 ... then PID2, PD12, PV12 ...
    let a17 = def::message("2.5", "ADT_A17").unwrap();
    let names: Vec<&str> = a17.elements.iter().map(|e| e.iris_name()).collect();
    assert_eq!(
        names,
        [
            "MSH", "SFT", "EVN", "PID", "PD1", "PV1", "PV2", "DB1", "OBX", "PID2", "PD12", "PV12", "PV22",
            "DB12", "OBX2"
        ]
    );
    // Groups too: RDE_O11 2.5 has TIMING and TIMING_ENCODED, both starting with TQ1.
    let rde = def::message("2.5", "RDE_O11").unwrap();
    let Element::Group(order) = rde.element("ORCgrp").unwrap() else {
        panic!()
    };
    let groups: Vec<(&str, &str)> = order
        .elements
        .iter()
        .filter_map(|e| match e {
            Element::Group(g) if g.iris_name.starts_with("TQ1") => Some((g.hl7_name, g.iris_name)),
            _ => None,
        })
        .collect();
    assert_eq!(groups, [("TIMING", "TQ1grp"), ("TIMING_ENCODED", "TQ1grp2")]);
}

#[test]
fn oru_r01_23_paths_from_public_iris_code() {
    // source.{PIDgrpgrp(1).PIDgrp.PID:PatientName.prefix} on 2.3:ORU_R01 (public IRIS DTL).
    let m = def::message("2.3", "ORU_R01").unwrap();
    assert!(path_names(m.elements, &["PIDgrpgrp", "PIDgrp", "PID"]).is_some());
    assert!(path_names(m.elements, &["PIDgrpgrp", "ORCgrp", "OBXgrp", "OBX"]).is_some());
    assert_eq!(def::field_index("2.3", "PID", "PatientName"), Some(5));
    assert_eq!(def::component_index("2.3", "XPN", "prefix"), Some(5));
    assert_eq!(def::field_index("2.3", "PID", "Sex"), Some(8));
}

#[test]
fn pid_2_and_3_in_23_keep_their_standard_names() {
    // InterSystems documentation, 2.3:ORM_O01: PIDgrp.PID:PatientIDInternalID(1).identifiertypecode
    assert_eq!(def::field_index("2.3", "PID", "PatientIDExternalID"), Some(2));
    assert_eq!(def::field_index("2.3", "PID", "PatientIDInternalID"), Some(3));
    assert_eq!(def::field_index("2.2", "PID", "PatientIDInternalID"), Some(3));
    assert_eq!(def::component_index("2.3", "CX", "identifiertypecode"), Some(5));
    assert_eq!(def::field_index("2.3", "PID", "PatientID"), None);
}

#[test]
fn hl7apy_names_are_accepted_where_the_descriptions_differ() {
    // The Ensemble 2.4 export names ORC-8 "Parent" and NDL-1 "name" where
    // hl7-dictionary has "Parent Order" and "OP Name"; hl7apy has IRIS's names.
    assert_eq!(def::field_index("2.4", "ORC", "Parent"), Some(8));
    assert_eq!(def::field_index("2.4", "ORC", "ParentOrder"), Some(8));
    assert_eq!(def::component_index("2.4", "NDL", "name"), Some(1));
    let orc8 = def::segment("2.4", "ORC").unwrap().field(8).unwrap();
    assert_eq!((orc8.iris_name, orc8.iris_alias), ("ParentOrder", "PARENT"));
    // A name from the description is tried on every field before any second
    // name, so a second name never takes another field's own name.
    let pid = def::segment("2.5", "PID").unwrap();
    for (i, f) in pid.fields.iter().enumerate() {
        assert_eq!(pid.field_index(f.iris_name), Some(i + 1), "{}", f.iris_name);
    }
}

#[test]
fn names_with_notes_iris_keeps_are_accepted() {
    // 2.3.1/2.4 IRIS descriptions carry the data type or an example in
    // parentheses ("facility (HD)", "ID number (ST)", "prefix (e.g., DR)").
    assert_eq!(def::component_index("2.4", "PL", "facilityHD"), Some(4));
    assert_eq!(def::component_index("2.4", "PL", "pointofcareIS"), Some(1));
    assert_eq!(def::component_index("2.4", "XCN", "IDnumberST"), Some(1));
    assert_eq!(def::component_index("2.4", "XPN", "prefixegDR"), Some(5));
    assert_eq!(def::component_index("2.5", "XPN", "SuffixegJRorIII"), Some(4));
    assert_eq!(def::component_index("2.5", "XPN", "DegreeegMD"), Some(6));
    // An exact name always wins over a name with a note; unrelated tails do not match.
    assert_eq!(def::component_index("2.4", "PL", "facility"), Some(4));
    assert_eq!(def::component_index("2.4", "PL", "facilityXX"), None);
    assert_eq!(def::component_index("2.4", "PL", "facilityeg"), None);
    assert_eq!(def::field_index("2.5", "PID", "PatientNameXPN"), Some(5));
}

#[test]
fn one_element_groups_fold_like_iris_brackets() {
    // IRIS 2.4 ORL_O22 is MSH~MSA~[~ERR~]~[~{~NTE~}~]~[~[~PID~{~...~}~]~]: the
    // outer brackets (HL7 RESPONSE) hold one group, so IRIS has one optional PIDgrp.
    let m = def::message("2.4", "ORL_O22").unwrap();
    let top: Vec<&str> = m.elements.iter().map(|e| e.iris_name()).collect();
    assert_eq!(top, ["MSH", "MSA", "ERR", "NTE", "PIDgrp"]);
    let Element::Group(pid) = m.element("PIDgrp").unwrap() else {
        panic!()
    };
    assert_eq!(pid.hl7_name, "PATIENT");
    assert!(pid.optional && !pid.repeating);
    // 2.3 MFK_M01: the group MF holds only MFA, which becomes a repeating MFA.
    let mfk = def::message("2.3", "MFK_M01").unwrap();
    let Element::Segment(mfa) = mfk.element("MFA").unwrap() else {
        panic!()
    };
    assert!(mfa.repeating);
}
