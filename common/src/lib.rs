//! Runtime plumbing shared by the coordinator and the broker: logging set-up,
//! shutdown signals, serving a listener (connection limits, accept, drain),
//! the one-line readiness contract the test harness reads, and the pieces
//! both command lines share (error exit, `--output`, key suggestions).

pub mod exit;
pub mod net;
pub mod output;
mod ready;
pub mod shutdown;
pub mod suggest;
pub mod telemetry;
pub mod time;

pub use ready::announce_listening;
