//! Error texts of the client: ZooKeeper errors in zkCli's own words
//! (`Node does not exist: /a`), and a refused or unreachable server named at
//! once from a plain TCP connect rather than after the session timeout.

use std::time::Duration;

use zookeeper_client as zk;

/// How long the reachability probe waits for a TCP connect.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// ZooKeeper's default client port, for connect-string hosts without one.
const DEFAULT_PORT: u16 = 2181;

/// zkCli's message for `error` on `path` (`CliWrapperException.getMessage`
/// in ZooKeeper 3.6+); errors zkCli has no sentence for name the path too.
pub(crate) fn zk_message(error: &zk::Error, path: &str) -> String {
    match error {
        zk::Error::NoNode => format!("Node does not exist: {path}"),
        zk::Error::NodeExists => format!("Node already exists: {path}"),
        zk::Error::NotEmpty => format!("Node not empty: {path}"),
        zk::Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        zk::Error::NotReadOnly => format!("Not a read-only call: {path}"),
        zk::Error::InvalidAcl => format!("Acl is not valid : {path}"),
        zk::Error::NoAuth => format!("Insufficient permission : {path}"),
        zk::Error::BadArguments(_) => format!("Arguments are not valid : {path}"),
        zk::Error::BadVersion => format!("version No is not valid : {path}"),
        zk::Error::QuotaExceeded => format!("Quota has exceeded : {path}"),
        other => format!("{other} for {path}"),
    }
}

/// Attaches the path to a ZooKeeper error, in zkCli's words.
pub(crate) trait AtPath<T> {
    fn at(self, path: &str) -> anyhow::Result<T>;
}

impl<T> AtPath<T> for Result<T, zk::Error> {
    fn at(self, path: &str) -> anyhow::Result<T> {
        // The message replaces the error rather than wrapping it, so the
        // cause is printed once.
        self.map_err(|e| anyhow::anyhow!(zk_message(&e, path)))
    }
}

/// The `host:port` entries of a connect string (`h1:2181,h2/chroot`).
pub(crate) fn hosts(connect: &str) -> Vec<String> {
    let hosts = connect.split('/').next().unwrap_or_default();
    hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let has_port = match h.rsplit_once(':') {
                // `[::1]:2181` or `host:2181`; a bare IPv6 address has no port.
                Some((host, port)) => {
                    port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
                }
                None => false,
            };
            if has_port {
                h.to_owned()
            } else if h.contains(':') {
                format!("[{h}]:{DEFAULT_PORT}")
            } else {
                format!("{h}:{DEFAULT_PORT}")
            }
        })
        .collect()
}

/// Opens (and drops) a TCP connection to the first host that accepts one.
/// The ZooKeeper client would retry a refused connect until its timeout and
/// then only say `timeout`; this says why, at once.
pub(crate) async fn probe(connect: &str) -> anyhow::Result<()> {
    let mut last = anyhow::anyhow!("no server in {connect:?}");
    for addr in hosts(connect) {
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = anyhow::anyhow!("cannot connect to {addr}: {e}"),
            Err(_) => {
                last = anyhow::anyhow!(
                    "cannot connect to {addr}: no answer within {}s",
                    PROBE_TIMEOUT.as_secs()
                )
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_zkcli() {
        assert_eq!(
            zk_message(&zk::Error::NoNode, "/nope"),
            "Node does not exist: /nope"
        );
        assert_eq!(
            zk_message(&zk::Error::NodeExists, "/a"),
            "Node already exists: /a"
        );
        assert_eq!(zk_message(&zk::Error::NotEmpty, "/a"), "Node not empty: /a");
        assert_eq!(
            zk_message(&zk::Error::BadVersion, "/a"),
            "version No is not valid : /a"
        );
        assert_eq!(
            zk_message(&zk::Error::NoAuth, "/a"),
            "Insufficient permission : /a"
        );
        assert_eq!(
            zk_message(&zk::Error::SessionExpired, "/a"),
            "session expired for /a"
        );
    }

    #[test]
    fn hosts_get_the_default_port() {
        assert_eq!(
            hosts("a:1,b, [::1]:3,::1/chroot/x"),
            ["a:1", "b:2181", "[::1]:3", "[::1]:2181"]
        );
        assert!(hosts("").is_empty());
    }
}
