//! Helpers shared by the benchmarks: child processes and `/proc` readings ([`procs`]),
//! the real `hie run` with its sinks ([`engine`]), the load ([`load`]), the Python
//! comparison peer ([`peer`]) and the e2e report ([`report`]).

pub mod engine;
pub mod load;
pub mod peer;
pub mod procs;
pub mod report;
