//! One consumer group (Kafka's `GroupMetadata`): its members, state and
//! timers, DescribeGroups, and the membership helpers the request paths
//! share. JoinGroup is in `join.rs`, the other requests in `requests.rs`,
//! rebalances and timers in `rebalance.rs`.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;

use super::member::Member;
use super::rebalance::JoinTimer;
use super::types::{
    Completion, GroupConfig, GroupOverview, GroupState, GroupSummary, JoinMember, JoinResponse,
    MemberSummary, Response, SyncResponse,
};

/// How long a new member's JoinGroup may stay parked before the member is
/// dropped (Kafka's `NewMemberJoinTimeoutMs`).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Kafka's four live states; a `Group` is never Dead (deleting it removes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl From<Phase> for GroupState {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Empty => Self::Empty,
            Phase::PreparingRebalance => Self::PreparingRebalance,
            Phase::CompletingRebalance => Self::CompletingRebalance,
            Phase::Stable => Self::Stable,
        }
    }
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    pub(super) id: String,
    pub(super) config: GroupConfig,
    pub(super) phase: Phase,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    /// In join order, so that leader succession and responses are deterministic.
    pub(super) members: IndexMap<String, Member>,
    /// group.instance.id -> its current member id.
    pub(super) static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, and when they lapse if the
    /// member does not join with them.
    pub(super) pending_members: IndexMap<String, i64>,
    /// Members of this generation that have not sent SyncGroup yet.
    pub(super) pending_sync_members: HashSet<String>,
    /// A member joined during the initial delay, which extends it.
    pub(super) new_member_added: bool,
    pub(super) join_timer: Option<JoinTimer>,
    /// When members still in `pending_sync_members` are removed.
    pub(super) sync_deadline: Option<i64>,
    /// Answers to parked requests produced by the current call.
    pub(super) outbox: Vec<Completion>,
    /// The current call reached a state to persist (see `take_store`).
    pub(super) store_pending: bool,
}

impl Group {
    pub fn new(id: impl Into<String>, config: GroupConfig) -> Self {
        Self {
            id: id.into(),
            config,
            phase: Phase::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: IndexMap::new(),
            pending_sync_members: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_deadline: None,
            outbox: Vec::new(),
            store_pending: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> GroupState {
        self.phase.into()
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// Member ids in join order.
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The member id currently registered for a static `group.instance.id`.
    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    /// DescribeGroups: metadata and assignments only once Stable, as Kafka.
    pub fn describe(&self) -> GroupSummary {
        let stable_protocol = match self.phase {
            Phase::Stable => self.protocol_name.as_deref(),
            _ => None,
        };
        GroupSummary {
            state: self.state(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: stable_protocol.unwrap_or_default().to_owned(),
            members: self
                .members
                .values()
                .map(|m| MemberSummary {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: stable_protocol.map(|p| m.metadata(p)).unwrap_or_default(),
                    assignment: match stable_protocol {
                        Some(_) => m.assignment.clone(),
                        None => Bytes::new(),
                    },
                })
                .collect(),
        }
    }

    /// ListGroups.
    pub fn overview(&self) -> GroupOverview {
        GroupOverview {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            state: self.state(),
        }
    }

    /// Kafka's `validateCurrentMember`: a static member's instance id must
    /// map to this member id (else FENCED_INSTANCE_ID), and the member must exist.
    pub(super) fn validate_current_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance_id) = group_instance_id {
            match self.static_members.get(instance_id) {
                Some(current) if current != member_id => {
                    return Err(ResponseError::FencedInstanceId)
                }
                Some(_) => {}
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// The largest rebalance timeout of any member bounds the join and sync phases.
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn schedule_heartbeat(&mut self, now: i64, member_id: &str) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline = Some(now + i64::from(member.session_timeout_ms));
        }
    }

    pub(super) fn push(&mut self, member_id: &str, response: Response) {
        self.outbox.push(Completion {
            group_id: self.id.clone(),
            member_id: member_id.to_owned(),
            response,
        });
    }

    /// Answer the member's parked JoinGroup, if any (`maybeInvokeJoinCallback`).
    pub(super) fn invoke_join(&mut self, member_id: &str, response: JoinResponse) {
        if let Some(member) = self.members.get_mut(member_id).filter(|m| m.awaiting_join) {
            member.awaiting_join = false;
            self.push(member_id, Response::Join(response));
        }
    }

    /// Answer the member's parked SyncGroup, if any (`maybeInvokeSyncCallback`).
    pub(super) fn invoke_sync(&mut self, member_id: &str, response: SyncResponse) -> bool {
        match self.members.get_mut(member_id).filter(|m| m.awaiting_sync) {
            Some(member) => {
                member.awaiting_sync = false;
                self.push(member_id, Response::Sync(response));
                true
            }
            None => false,
        }
    }

    /// Kafka's `GroupMetadata.remove`. Unlike Kafka, a parked SyncGroup of
    /// the removed member is answered (UNKNOWN_MEMBER_ID) rather than
    /// dropped, so that the caller never keeps a waiter nobody will complete.
    pub(super) fn remove(&mut self, member_id: &str) {
        if let Some(member) = self.members.shift_remove(member_id) {
            if member.awaiting_join {
                self.push(
                    member_id,
                    Response::Join(JoinResponse::error("", ResponseError::UnknownMemberId)),
                );
            }
            if member.awaiting_sync {
                self.push(
                    member_id,
                    Response::Sync(SyncResponse::error(ResponseError::UnknownMemberId)),
                );
            }
            if let Some(instance_id) = &member.group_instance_id {
                self.static_members.remove(instance_id);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_members.shift_remove(member_id);
        self.pending_sync_members.remove(member_id);
    }

    /// Kafka's `removeMemberAndUpdateGroup`: a leave or an expired session.
    pub(super) fn remove_member_and_update_group(&mut self, now: i64, member_id: &str) {
        self.remove(member_id);
        match self.phase {
            Phase::Empty => {}
            Phase::Stable | Phase::CompletingRebalance => self.maybe_prepare_rebalance(now),
            Phase::PreparingRebalance => self.try_complete_join(now),
        }
    }

    pub(super) fn remove_pending_member_and_update_group(&mut self, now: i64, member_id: &str) {
        self.remove(member_id);
        if self.phase == Phase::PreparingRebalance {
            self.try_complete_join(now);
        }
    }

    /// The JoinGroup answer for the current generation.
    pub(super) fn current_join_response(
        &self,
        member_id: &str,
        with_members: bool,
    ) -> JoinResponse {
        JoinResponse {
            error_code: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.join_members()
            } else {
                Vec::new()
            },
        }
    }

    /// The member list the leader assigns from.
    pub(super) fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }
}
