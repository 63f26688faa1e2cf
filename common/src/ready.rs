//! The readiness contract: one stdout line per listening socket,
//! `<RFC 3339 time> listening addr=<ip:port> service=<name> [listener=<name>]`,
//! printed once the socket serves. Supervisors (tests, benches, scripts) wait for it; people
//! read it next to the log lines, so it carries the same kind of timestamp.

use std::io::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::time::rfc3339;

/// Prints the line saying that `service` (`kafka`, `zookeeper`) accepts
/// connections on `addr`, the address actually bound (a wildcard stays a
/// wildcard: that is what listens), through the named `listener` if the
/// service has several.
pub fn announce_listening(service: &str, listener: Option<&str>, addr: SocketAddr) {
    let mut line = format!(
        "{} listening addr={addr} service={service}",
        rfc3339(SystemTime::now())
    );
    if let Some(name) = listener {
        line.push_str(" listener=");
        line.push_str(name);
    }
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server; the line is advisory.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
