//! Runtime plumbing shared by the coordinator and the broker: logging set-up,
//! shutdown signals, the one-line readiness contract the test harness reads,
//! and the pieces both command lines share (error exit, `--output`, key suggestions).

pub mod exit;
pub mod output;
pub mod shutdown;
pub mod suggest;
pub mod telemetry;

use std::io::Write;
use std::net::SocketAddr;

/// Prints the single stdout line that tells a supervisor (tests, benches,
/// scripts) that `addr` accepts connections: `listening addr=<ip:port>`.
pub fn announce_listening(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server; the line is advisory.
    let _ = writeln!(out, "listening addr={addr}");
    let _ = out.flush();
}
