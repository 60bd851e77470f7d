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
