//! HIE engine (being built).
