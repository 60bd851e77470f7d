// This file is compiled twice: as the `naming` module of the
// crate (where it is tested) and by build.rs through `include!`, which bakes
// the names into the generated tables. Keep it free of crate-internal imports.

/// The IRIS property name for an HL7 description: the description with every
/// character that is not an ASCII letter or digit dropped, case kept
/// ("Patient Name" -> "PatientName", "family + last name" -> "familylastname",
/// "Set ID - PID" -> "SetIDPID", "Mother's Maiden Name" -> "MothersMaidenName").
pub fn iris_name(desc: &str) -> String {
    desc.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// The IRIS name of a group: the IRIS name of its first element followed by
/// `grp` (`PID ...` -> `PIDgrp`, a group that starts with the `PIDgrp` group ->
/// `PIDgrpgrp`, a group that starts with the `OBRunion` choice -> `OBRuniongrp`).
pub fn group_iris_name(first_element_iris_name: &str) -> String {
    format!("{first_element_iris_name}grp")
}

/// The IRIS name of a choice of segments (`<OBR|RQD|RQ1|...>`): its first
/// alternative followed by `union` (`OBRunion`).
pub fn choice_iris_name(first_alternative: &str) -> String {
    format!("{first_alternative}union")
}

/// The IRIS names of the elements of one group (or of the message's top level)
/// given each element's own name: when a name occurs again among siblings the
/// later ones get a number, starting at 2 (`ROL`, ..., `ROL2`; `TQ1grp`,
/// `TQ1grp2`). Assumed, not verified against IRIS: see README.md.
pub fn sibling_names(names: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let earlier = names[..i].iter().filter(|n| *n == name).count();
        out.push(if earlier == 0 {
            name.clone()
        } else {
            format!("{name}{}", earlier + 1)
        });
    }
    out
}

/// Whether `wanted` names the field or component described by `iris_name` and
/// `datatype`, beyond the exact (case-insensitive) match: IRIS builds names
/// from descriptions that sometimes carry a note the source package left out,
/// the data type in parentheses (2.3.1/2.4 "facility (HD)" -> `facilityHD`,
/// "ID number (ST)" -> `IDnumberST`) or an example ("prefix (e.g., DR)" ->
/// `prefixegDR`). Those names are accepted too.
pub fn matches_with_note(wanted: &str, iris_name: &str, datatype: &str) -> bool {
    let (w, n) = (wanted.as_bytes(), iris_name.as_bytes());
    if n.is_empty() || w.len() <= n.len() || !w[..n.len()].eq_ignore_ascii_case(n) {
        return false;
    }
    let rest = &w[n.len()..];
    rest.eq_ignore_ascii_case(datatype.as_bytes())
        || (rest.len() > 2 && rest[..2].eq_ignore_ascii_case(b"eg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn siblings_are_numbered_from_the_second_occurrence() {
        assert_eq!(
            sibling_names(&strings(&["MSH", "ROL", "PV1", "ROL", "ROL", "PR1grp"])),
            strings(&["MSH", "ROL", "PV1", "ROL2", "ROL3", "PR1grp"])
        );
        assert_eq!(sibling_names(&[]), Vec::<String>::new());
    }

    #[test]
    fn group_and_choice_names() {
        assert_eq!(group_iris_name("PID"), "PIDgrp");
        assert_eq!(group_iris_name("PIDgrp"), "PIDgrpgrp");
        assert_eq!(choice_iris_name("OBR"), "OBRunion");
        assert_eq!(group_iris_name(&choice_iris_name("OBR")), "OBRuniongrp");
    }

    #[test]
    fn notes_after_the_name() {
        assert!(matches_with_note("facilityHD", "Facility", "HD"));
        assert!(matches_with_note("prefixegDR", "Prefix", "ST"));
        assert!(!matches_with_note("Facility", "Facility", "HD"));
        assert!(!matches_with_note("facilityST", "Facility", "HD"));
        assert!(!matches_with_note("Facilityeg", "Facility", "HD"));
        assert!(!matches_with_note("Fac", "Facility", "HD"));
        assert!(!matches_with_note("xHD", "", "HD"));
    }
}
