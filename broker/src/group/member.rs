//! One group member (Kafka's `MemberMetadata`): its protocols, assignment,
//! parked requests and session deadline.

use bytes::Bytes;

use super::types::Protocol;

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) member_id: String,
    pub(super) group_instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    /// In the member's order of preference.
    pub(super) protocols: Vec<Protocol>,
    /// Set by the leader's SyncGroup; empty until then.
    pub(super) assignment: Bytes,
    /// A JoinGroup from this member is parked.
    pub(super) awaiting_join: bool,
    /// A SyncGroup from this member is parked.
    pub(super) awaiting_sync: bool,
    /// Joined but not yet answered: such members expire even while parked,
    /// since a client that gave up would otherwise linger for ever.
    pub(super) is_new: bool,
    /// When the session expires unless refreshed. None while no expiry is
    /// scheduled (Kafka's heartbeat purgatory entry was completed).
    pub(super) heartbeat_deadline: Option<i64>,
}

impl Member {
    pub(super) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// The metadata for `protocol`; empty if the member does not support it.
    pub(super) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Same protocols, in the same order, with the same metadata.
    pub(super) fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    pub(super) fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Whether an expiring session deadline must be ignored: a parked member
    /// cannot heartbeat (librdkafka and Java both stop while a join or sync
    /// is outstanding), except a new member that never got an answer.
    pub(super) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join || self.awaiting_sync)
    }
}
