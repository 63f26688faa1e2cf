//! Runtime plumbing shared by the coordinator and the broker: logging set-up,
//! shutdown signals, serving a listener (connection limits, accept, drain)
//! and the length-prefixed framing both protocols use,
//! the one-line readiness contract the test harness reads, and the pieces
//! both command lines share (error exit, `--output`, key suggestions).

pub mod exit;
pub mod framing;
pub mod net;
pub mod output;
mod ready;
pub mod shutdown;
pub mod suggest;
pub mod telemetry;
pub mod time;

pub use ready::announce_listening;
