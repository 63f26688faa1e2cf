//! A group's durable part (Kafka's `GroupMetadataValue`): what the
//! coordinating broker persists once a generation has its assignment or the
//! group empties, and how a broker that takes the group over (after a
//! restart or a coordinator move) restores it so that its members carry on
//! without a rebalance. Encoding and storage are the caller's business.

use std::collections::HashSet;

use bytes::Bytes;

use super::member::Member;
use super::state::{Group, Phase};
use super::types::{GroupConfig, Protocol};

/// One member as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Every protocol the member joined with (the chosen one's metadata is
    /// its subscription), so that a later identical rejoin is recognised.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
}

/// A Stable group (members, leader, protocol, assignments) or an Empty one
/// (no members; the generation and protocol type stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// In join order, which decides leader succession.
    pub members: Vec<MemberSnapshot>,
}

impl GroupSnapshot {
    /// Whether the members can be restored: a protocol, a leader among
    /// them, and no id twice. Data read from storage is checked, not trusted.
    fn members_consistent(&self) -> bool {
        let mut ids = HashSet::new();
        let mut instances = HashSet::new();
        let unique = self.members.iter().all(|m| {
            ids.insert(m.member_id.as_str())
                && m.group_instance_id
                    .as_deref()
                    .is_none_or(|i| instances.insert(i))
        });
        unique
            && self.protocol_name.is_some()
            && self.leader_id.as_deref().is_some_and(|l| ids.contains(l))
    }
}

impl Group {
    /// The persistable state, or `None` while a rebalance is under way (the
    /// last persisted generation stays the one to restore).
    pub fn snapshot(&self) -> Option<GroupSnapshot> {
        let members = match self.phase {
            Phase::Stable => self
                .members
                .values()
                .map(|m| MemberSnapshot {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            Phase::Empty => Vec::new(),
            Phase::PreparingRebalance | Phase::CompletingRebalance => return None,
        };
        Some(GroupSnapshot {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            members,
        })
    }

    /// A group taken over from `snapshot` at `now` (Kafka's `loadGroup`):
    /// Stable with its members, each session restarting now as Kafka does on
    /// load, so their heartbeats go on with the same generation and ids and
    /// members that are really gone expire after one session timeout. A
    /// snapshot without members, or with members that cannot form a
    /// generation (no protocol, no leader, duplicate ids), gives an Empty
    /// group that keeps the generation: its members get UNKNOWN_MEMBER_ID
    /// and rejoin, as with no snapshot at all.
    pub fn restore(
        id: impl Into<String>,
        config: GroupConfig,
        snapshot: GroupSnapshot,
        now: i64,
    ) -> Self {
        let mut group = Group::new(id, config);
        group.generation_id = snapshot.generation_id;
        group.protocol_type = snapshot.protocol_type.clone();
        if snapshot.members.is_empty() || !snapshot.members_consistent() {
            return group;
        }
        group.phase = Phase::Stable;
        group.protocol_name = snapshot.protocol_name;
        group.leader_id = snapshot.leader_id;
        for m in snapshot.members {
            if let Some(instance_id) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance_id.clone(), m.member_id.clone());
            }
            let deadline = now + i64::from(m.session_timeout_ms);
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols,
                    assignment: m.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    is_new: false,
                    heartbeat_deadline: Some(deadline),
                },
            );
        }
        group
    }

    /// Take the pending store request: set where Kafka calls `storeGroup`
    /// (the leader's assignment, a generation that leaves the group Empty,
    /// a static member replaced in a Stable group). `None` also when the
    /// group has moved on to a rebalance meanwhile.
    pub fn take_store(&mut self) -> Option<GroupSnapshot> {
        if std::mem::take(&mut self.store_pending) {
            self.snapshot()
        } else {
            None
        }
    }
}
