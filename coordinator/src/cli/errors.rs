//! Error texts of the client: ZooKeeper errors in zkCli's own words
//! (`Node does not exist: /a`).

use zookeeper_client as zk;

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
}
