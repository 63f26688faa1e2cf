//! Runtime plumbing shared by the coordinator and the broker: logging set-up,
//! shutdown signals and the one-line readiness contract the test harness reads.

mod ready;
pub mod shutdown;
pub mod telemetry;

pub use ready::announce_listening;
