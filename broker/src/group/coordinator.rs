//! All groups of this coordinator: routes each request to its group,
//! creating or rejecting unknown groups as Kafka's `GroupCoordinator` does,
//! plus ListGroups and DeleteGroups, and groups loaded from or unloaded to
//! another coordinator.

use std::collections::HashMap;

use kafka_protocol::ResponseError;

use super::snapshot::GroupSnapshot;
use super::state::Group;
use super::types::{
    Completion, GroupConfig, GroupOverview, GroupState, GroupSummary, JoinOutcome, JoinRequest,
    JoinResponse, LeaveMember, LeaveResult, Response, SyncOutcome, SyncRequest, SyncResponse,
};

/// The coordinator's groups, by group id.
#[derive(Debug, Default)]
pub struct GroupCoordinatorState {
    config: GroupConfig,
    groups: HashMap<String, Group>,
}

impl GroupCoordinatorState {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
        }
    }

    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// JoinGroup. A join with an empty member id creates the group; a known
    /// member id for an unknown group gets UNKNOWN_MEMBER_ID.
    pub fn join(
        &mut self,
        now: i64,
        group_id: &str,
        req: JoinRequest,
    ) -> (JoinOutcome, Vec<Completion>) {
        if group_id.is_empty() {
            return done_join(JoinResponse::error(
                req.member_id,
                ResponseError::InvalidGroupId,
            ));
        }
        // Checked before the lookup so that a bad request creates no group.
        if let Err(e) = self.config.check_session_timeout(req.session_timeout_ms) {
            return done_join(JoinResponse::error(req.member_id, e));
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(group_id) {
            return done_join(JoinResponse::error(
                req.member_id,
                ResponseError::UnknownMemberId,
            ));
        }
        let config = self.config;
        self.groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id, config))
            .join(now, req)
    }

    pub fn sync(
        &mut self,
        now: i64,
        group_id: &str,
        req: SyncRequest,
    ) -> (SyncOutcome, Vec<Completion>) {
        if group_id.is_empty() {
            return (
                SyncOutcome::Done(SyncResponse::error(ResponseError::InvalidGroupId)),
                Vec::new(),
            );
        }
        match self.groups.get_mut(group_id) {
            Some(group) => group.sync(now, req),
            None => (
                SyncOutcome::Done(SyncResponse::error(ResponseError::UnknownMemberId)),
                Vec::new(),
            ),
        }
    }

    pub fn heartbeat(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?
            .heartbeat(now, member_id, group_instance_id, generation_id)
    }

    /// LeaveGroup: `Err` is the top-level error, otherwise per-member results.
    pub fn leave(
        &mut self,
        now: i64,
        group_id: &str,
        leaving: &[LeaveMember],
    ) -> Result<(Vec<LeaveResult>, Vec<Completion>), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        match self.groups.get_mut(group_id) {
            Some(group) => Ok(group.leave(now, leaving)),
            None => Ok((
                leaving
                    .iter()
                    .map(|lm| LeaveResult {
                        member_id: lm.member_id.clone(),
                        group_instance_id: lm.group_instance_id.clone(),
                        error_code: ResponseError::UnknownMemberId.code(),
                    })
                    .collect(),
                Vec::new(),
            )),
        }
    }

    /// Whether an OffsetCommit may store its offsets (`handleCommitOffsets`).
    /// A simple commit (generation < 0) to an unknown group creates it
    /// Empty, as Kafka does, so that it shows up in ListGroups.
    pub fn validate_offset_commit(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        match self.groups.get_mut(group_id) {
            Some(group) => {
                group.validate_offset_commit(now, member_id, group_instance_id, generation_id)
            }
            None if generation_id < 0 => {
                let group = Group::new(group_id, self.config);
                self.groups.insert(group_id.to_owned(), group);
                Ok(())
            }
            // A member of a generation this coordinator never saw.
            None => Err(ResponseError::IllegalGeneration),
        }
    }

    /// DescribeGroups: an unknown group is reported Dead with no members.
    pub fn describe(&self, group_id: &str) -> GroupSummary {
        match self.groups.get(group_id) {
            Some(group) => group.describe(),
            None => GroupSummary {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// ListGroups, by group id; `states` filters by state name exactly as
    /// sent (an empty filter lists every group).
    pub fn list<S: AsRef<str>>(&self, states: &[S]) -> Vec<GroupOverview> {
        let mut groups: Vec<GroupOverview> = self
            .groups
            .values()
            .filter(|g| {
                states.is_empty() || states.iter().any(|s| s.as_ref() == g.state().as_str())
            })
            .map(Group::overview)
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    /// DeleteGroups for one group: only an Empty group can go. On `Ok` the
    /// caller also drops the group's committed offsets.
    pub fn delete(&mut self, group_id: &str) -> Result<(), ResponseError> {
        match self.groups.get(group_id).map(Group::state) {
            None => Err(ResponseError::GroupIdNotFound),
            Some(GroupState::Empty) => {
                self.groups.remove(group_id);
                Ok(())
            }
            Some(_) => Err(ResponseError::NonEmptyGroup),
        }
    }

    /// Takes over a group from its persisted snapshot (see
    /// [`Group::restore`]); a group already known here is kept as it is.
    pub fn restore(&mut self, now: i64, group_id: &str, snapshot: GroupSnapshot) {
        let config = self.config;
        self.groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::restore(group_id, config, snapshot, now));
    }

    /// Forgets a group another broker now coordinates (Kafka's
    /// `onGroupUnloaded`): parked requests are told NOT_COORDINATOR, so the
    /// members find the new coordinator.
    pub fn unload(&mut self, group_id: &str) -> Vec<Completion> {
        let Some(group) = self.groups.remove(group_id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for member in group.members.values() {
            let mut answer = |response| {
                out.push(Completion {
                    group_id: group_id.to_owned(),
                    member_id: member.member_id.clone(),
                    response,
                })
            };
            if member.awaiting_join {
                answer(Response::Join(JoinResponse::error(
                    member.member_id.clone(),
                    ResponseError::NotCoordinator,
                )));
            }
            if member.awaiting_sync {
                answer(Response::Sync(SyncResponse::error(
                    ResponseError::NotCoordinator,
                )));
            }
        }
        out
    }

    /// What `group_id` asks to persist after the last call (see
    /// [`Group::take_store`]).
    pub fn take_store(&mut self, group_id: &str) -> Option<GroupSnapshot> {
        self.groups.get_mut(group_id)?.take_store()
    }

    /// Every group's pending store, after [`Self::tick`].
    pub fn take_all_stores(&mut self) -> Vec<(String, GroupSnapshot)> {
        self.groups
            .iter_mut()
            .filter_map(|(id, g)| Some((id.clone(), g.take_store()?)))
            .collect()
    }

    /// The earliest timer of any group.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().filter_map(Group::next_deadline).min()
    }

    /// Fire every timer due at `now` in every group.
    pub fn tick(&mut self, now: i64) -> Vec<Completion> {
        self.groups.values_mut().flat_map(|g| g.tick(now)).collect()
    }
}

fn done_join(response: JoinResponse) -> (JoinOutcome, Vec<Completion>) {
    (JoinOutcome::Done(response), Vec::new())
}
