//! One module per subcommand; each exposes its clap arguments and a `run`.
pub mod ctl;
pub mod import;
pub mod listen;
pub mod messages;
pub mod plugin;
pub mod run;
pub mod send;
pub mod validate;
pub mod worker;
