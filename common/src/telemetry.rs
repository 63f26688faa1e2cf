//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `default` as the filter when
/// `RUST_LOG` is unset (servers say `info`, CLIs `warn`). Logs go to stderr so
/// that stdout stays free for the readiness line and for CLI output.
pub fn init(default: &str) {
    // The ZooKeeper client crate narrates every connection at INFO; its
    // warnings are what an operator needs (our own session lines say the
    // rest). Kept at WARN unless RUST_LOG names the crate itself.
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let spec = if spec.contains("zookeeper_client") {
        spec
    } else {
        format!("{spec},zookeeper_client=warn")
    };
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new(default));
    // A second call (tests) keeps the first subscriber.
    // Colour only for a person at a terminal: files and `docker logs`
    // should not fill with escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
