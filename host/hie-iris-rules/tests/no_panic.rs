//! Values read from messages reach the patterns and functions: whatever they
//! hold, evaluation must not panic (a panic aborts the plugin instance).

use hie_iris_rules::pattern::{Pattern, like};
use hie_iris_rules::{CompileContext, Document, compile};
use proptest::prelude::*;

proptest! {
    #[test]
    fn patterns_never_panic(pattern in ".{0,24}", value in ".{0,24}") {
        if let Ok(p) = Pattern::parse(&pattern) {
            let _ = p.matches(&value);
        }
        let _ = like(&value, &pattern);
    }

    #[test]
    fn every_function_takes_any_field_value(a in ".{0,12}", b in "[-0-9.*,^|<>%_\"a-zA-Z]{0,8}", c in "[-0-9.*a-z]{0,4}") {
        // the field values come from the message; the rule passes them to every function
        let msg = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rZZA|{}|{}|{}\r",
            a.replace(['\r', '\n', '|', '^', '~', '\\', '&'], ""),
            b.replace(['\r', '\n', '|', '^', '~', '\\', '&'], ""),
            c.replace(['\r', '\n', '|', '^', '~', '\\', '&'], ""));
        let Ok(m) = hie_hl7::Message::parse(msg.as_bytes()) else { return Ok(()) };
        let doc = Document::new(&m);
        let calls = [
            "Contains(@1,@2)", "DoesNotContain(@1,@2)", "StartsWith(@1,@2)", "DoesNotStartWith(@1,@2)",
            "In(@1,@2)", "NotIn(@1,@2)", "IntersectsList(@1,@2)", "DoesNotIntersectList(@1,@2,@3,@3)",
            "Like(@1,@2)", "NotLike(@1,@2)", "Matches(@1,@2)", "DoesNotMatch(@1,@2)", "RegexMatch(@1,@2)",
            "Lookup(@1,@2,@3,@3)", "Exists(@1,@2)", "Length(@1,@2)", "ToUpper(@1)", "ToLower(@1)",
            "Min(@1,@2,@3)", "Max(@1,@2,@3)", "Round(@1,@3)", "SubString(@1,@2,@3)", "Piece(@1,@2,@3,@3)",
            "ReplaceStr(@1,@2,@3)", "Translate(@1,@2,@3)", "Pad(@1,@3,@2)", "If(@1,@2,@3)", "Not(@1)",
            "@1/@2", "@1*@2+@3", "@1<@2", "-@1", "@1_@2&@3",
        ];
        let conditions: Vec<String> = calls
            .iter()
            .map(|call| call.replace("@1", "HL7.{ZZA:1}").replace("@2", "HL7.{ZZA:2}").replace("@3", "HL7.{ZZA:3}"))
            .collect();
        let rules: String = conditions
            .iter()
            .map(|cond| format!("<rule><when condition=\"{}\"><send transform=\"\" target=\"t\"/></when></rule>",
                cond.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")))
            .collect();
        let xml = format!("<ruleDefinition><ruleSet>{rules}</ruleSet></ruleDefinition>");
        let compiled = compile(&xml, &CompileContext::default()).unwrap();
        prop_assert!(compiled.disabled.is_empty(), "{:?}", compiled.disabled);
        let _ = compiled.rule_set.evaluate(&doc, "x");
    }
}
