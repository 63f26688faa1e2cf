//! Connect strings (`host1:2181,host2/chroot`), as ZooKeeper clients take
//! them, and a reachability probe: the `zookeeper-client` crate retries a
//! refused connection silently until its session timeout, while a plain TCP
//! connect says at once why no server answers. Used by the `coord` CLI and
//! by the broker's coordinator session.

use std::time::Duration;

/// ZooKeeper's default client port, for hosts given without one.
const DEFAULT_PORT: u16 = 2181;

/// The `host:port` entries of a connect string, chroot dropped.
pub fn hosts(connect: &str) -> Vec<String> {
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

/// Opens (and drops) a TCP connection to the first host that accepts one
/// within `patience`; if none does, the socket error of the last tried
/// (`cannot connect to h:2181: Connection refused (os error 111)`).
pub async fn probe(connect: &str, patience: Duration) -> Result<(), String> {
    let mut last = format!("no server in {connect:?}");
    for addr in hosts(connect) {
        match tokio::time::timeout(patience, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = format!("cannot connect to {addr}: {e}"),
            Err(_) => {
                last = format!(
                    "cannot connect to {addr}: no answer within {} ms",
                    patience.as_millis()
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
    fn hosts_get_the_default_port() {
        assert_eq!(
            hosts("a:1,b, [::1]:3,::1/chroot/x"),
            ["a:1", "b:2181", "[::1]:3", "[::1]:2181"]
        );
        assert!(hosts("").is_empty());
    }

    #[tokio::test]
    async fn a_refused_port_is_named_with_its_cause() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = free.local_addr().expect("addr").port();
        drop(free);
        let err = probe(&format!("127.0.0.1:{port}"), Duration::from_secs(1))
            .await
            .expect_err("nothing listens");
        assert!(
            err.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
            "{err}"
        );
        assert!(err.to_lowercase().contains("refused"), "{err}");
    }
}
