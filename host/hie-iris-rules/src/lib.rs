//! InterSystems IRIS routing rules for HIE.
//!
//! - Compile side (feature `compile`, on by default): [`compile`] turns a
//!   `<ruleDefinition>` (as stored in a rule class's `XData RuleDefinition`)
//!   into a [`RuleSet`], resolving `HL7.{…}` property names to positions with
//!   the HL7 definition in `hie-hl7def`. What cannot carry over disables its
//!   rule, with the reason, in [`Compiled::disabled`]; nothing is dropped silently.
//! - Run side (no compile dependencies; builds for `wasm32-wasip2`): a
//!   [`RuleSet`] is serde JSON, and [`RuleSet::evaluate`] runs it against a
//!   message with IRIS semantics.
//!
//! ```
//! # #[cfg(feature = "compile")] {
//! use hie_iris_rules::{CompileContext, Document, compile};
//!
//! let xml = r#"<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine">
//!   <ruleSet name="" effectiveBegin="" effectiveEnd="">
//!     <rule name="admissions">
//!       <constraint name="docName" value="ADT_A01,ADT_A04"></constraint>
//!       <when condition="HL7.{PV1:PatientClass}=&quot;I&quot;">
//!         <send transform="" target="Inpatients"></send>
//!         <return></return>
//!       </when>
//!     </rule>
//!   </ruleSet>
//! </ruleDefinition>"#;
//! let compiled = compile(xml, &CompileContext::default()).unwrap();
//! let msg = hie_hl7::Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1\rPV1|1|I\r").unwrap();
//! let outcome = compiled.rule_set.evaluate(&Document::new(&msg), "ADT-in");
//! assert_eq!(outcome.targets(), ["Inpatients"]);
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "compile")]
mod compile;
mod eval;
mod functions;
mod model;
pub mod pattern;
pub mod value;

#[cfg(feature = "compile")]
pub use compile::{CompileContext, CompileError, Compiled, Disabled, Warning, compile};
pub use eval::{Document, Outcome, Sent, now_utc};
pub use model::*;
