//! The one place the importer compiles IRIS routing rules (`hie-iris-rules`).

use crate::source::{Embedded, Found};

/// A compiled rule class, ready for `hl7-router`'s `iris-rules` setting.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// The RuleSet as JSON.
    pub json: String,
    /// Rules that run.
    pub rules: usize,
    /// Rules disabled with a reason.
    pub disabled: usize,
    /// Every target a `<send>` names.
    pub targets: Vec<String>,
    /// Report lines: warnings, disabled rules, transforms.
    pub lines: Vec<String>,
}

/// Compile the rule class `rule` with the custom categories and lookup tables `found`.
pub fn compile(rule: &Embedded, found: &Found) -> Result<CompiledRules, String> {
    let ctx = hie_iris_rules::CompileContext {
        file: rule.file.clone(),
        line_offset: rule.line_offset,
        custom_categories: found
            .categories
            .iter()
            .map(|(name, (base, _))| (name.clone(), base.clone()))
            .collect(),
        lookup_tables: found.lookups.clone(),
    };
    let compiled = hie_iris_rules::compile(&rule.xml, &ctx).map_err(|e| e.to_string())?;
    let json =
        serde_json::to_string(&compiled.rule_set).map_err(|e| format!("cannot encode the rules: {e}"))?;
    let total: usize = compiled.rule_set.sets.iter().map(|s| s.rules.len()).sum();
    let mut lines = Vec::new();
    for w in &compiled.warnings {
        lines.push(format!("{w}"));
    }
    for d in &compiled.disabled {
        lines.push(format!("{d}"));
    }
    for t in &compiled.transforms {
        lines.push(format!(
            "{}: rule class {}: DTL transform {t} does not carry over (its rules are disabled)",
            rule.file.display(),
            rule.class
        ));
    }
    Ok(CompiledRules {
        json,
        rules: total.saturating_sub(compiled.disabled.len()),
        disabled: compiled.disabled.len(),
        targets: compiled.targets.into_iter().collect(),
        lines,
    })
}
