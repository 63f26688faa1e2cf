//! SyncGroup, Heartbeat, LeaveGroup and the OffsetCommit membership check
//! for one group (the matching `GroupCoordinator` handlers).

use std::collections::HashMap;
use std::mem;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{Group, Phase};
use super::types::{
    Completion, LeaveMember, LeaveResult, Response, SyncOutcome, SyncRequest, SyncResponse,
};

impl Group {
    /// SyncGroup (Kafka's `doSyncGroup`).
    pub fn sync(&mut self, now: i64, req: SyncRequest) -> (SyncOutcome, Vec<Completion>) {
        let outcome = match self.do_sync(now, &req) {
            SyncOutcome::Pending => self.take_own_sync(&req.member_id),
            done => done,
        };
        (outcome, mem::take(&mut self.outbox))
    }

    /// Heartbeat (Kafka's `handleHeartbeat`): refreshes the session; tells
    /// members to rejoin while a rebalance is being prepared.
    pub fn heartbeat(
        &mut self,
        now: i64,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        self.validate_current_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        match self.phase {
            Phase::Empty => Err(ResponseError::UnknownMemberId),
            Phase::CompletingRebalance | Phase::Stable => {
                self.schedule_heartbeat(now, member_id);
                Ok(())
            }
            Phase::PreparingRebalance => {
                self.schedule_heartbeat(now, member_id);
                Err(ResponseError::RebalanceInProgress)
            }
        }
    }

    /// LeaveGroup v3+ batch (v0-v2 is a batch of one): per-member results.
    pub fn leave(
        &mut self,
        now: i64,
        leaving: &[LeaveMember],
    ) -> (Vec<LeaveResult>, Vec<Completion>) {
        let results = leaving
            .iter()
            .map(|lm| LeaveResult {
                member_id: lm.member_id.clone(),
                group_instance_id: lm.group_instance_id.clone(),
                error_code: match self.leave_one(now, lm) {
                    Ok(()) => 0,
                    Err(e) => e.code(),
                },
            })
            .collect();
        (results, mem::take(&mut self.outbox))
    }

    /// Whether an OffsetCommit may store offsets (Kafka's `validateOffsetCommit`
    /// and the state checks of `doCommitOffsets`). A commit counts as a heartbeat.
    pub fn validate_offset_commit(
        &mut self,
        now: i64,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if generation_id < 0 && self.phase == Phase::Empty {
            // The admin client, or a consumer without group management.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            self.validate_current_member(member_id, group_instance_id)?;
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if self.phase != Phase::Empty {
            // Only members may commit to a group that has members.
            return Err(ResponseError::UnknownMemberId);
        }
        match self.phase {
            Phase::Empty => Ok(()),
            // Commits stay allowed while preparing: the heartbeat response
            // is what tells the consumer to rejoin.
            Phase::Stable | Phase::PreparingRebalance => {
                self.schedule_heartbeat(now, member_id);
                Ok(())
            }
            // The member has the new generation but no assignment yet.
            Phase::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
        }
    }

    fn do_sync(&mut self, now: i64, req: &SyncRequest) -> SyncOutcome {
        if let Err(e) = self.validate_sync(req) {
            return SyncOutcome::Done(SyncResponse::error(e));
        }
        match self.phase {
            Phase::Empty => SyncOutcome::Done(SyncResponse::error(ResponseError::UnknownMemberId)),
            Phase::PreparingRebalance => {
                SyncOutcome::Done(SyncResponse::error(ResponseError::RebalanceInProgress))
            }
            Phase::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(&req.member_id) {
                    member.awaiting_sync = true;
                }
                self.remove_pending_sync_member(&req.member_id);
                if self.is_leader(&req.member_id) {
                    // Members the leader left out get an empty assignment.
                    let assignments: HashMap<&str, &Bytes> = req
                        .assignments
                        .iter()
                        .map(|(id, a)| (id.as_str(), a))
                        .collect();
                    for (id, member) in &mut self.members {
                        member.assignment = assignments
                            .get(id.as_str())
                            .map(|a| (*a).clone())
                            .unwrap_or_default();
                    }
                    self.propagate_assignment(now, None);
                    self.phase = Phase::Stable;
                    self.store_pending = true;
                }
                SyncOutcome::Pending
            }
            Phase::Stable => {
                self.remove_pending_sync_member(&req.member_id);
                let assignment = self
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                self.schedule_heartbeat(now, &req.member_id);
                SyncOutcome::Done(SyncResponse {
                    error_code: 0,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                })
            }
        }
    }

    fn validate_sync(&self, req: &SyncRequest) -> Result<(), ResponseError> {
        self.validate_current_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let mismatch = |asked: &Option<String>, ours: &Option<String>| {
            asked.as_ref().is_some_and(|a| ours.as_ref() != Some(a))
        };
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol_name, &self.protocol_name)
        {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    /// The caller's own answer, when its parked sync completed in the same call.
    fn take_own_sync(&mut self, member_id: &str) -> SyncOutcome {
        let own = self
            .outbox
            .iter()
            .position(|c| c.member_id == member_id && matches!(c.response, Response::Sync(_)));
        match own.map(|i| self.outbox.remove(i).response) {
            Some(Response::Sync(resp)) => SyncOutcome::Done(resp),
            _ => SyncOutcome::Pending,
        }
    }

    fn leave_one(&mut self, now: i64, lm: &LeaveMember) -> Result<(), ResponseError> {
        if lm.member_id.is_empty() {
            // Administrative removal by instance id.
            let current = lm
                .group_instance_id
                .as_ref()
                .and_then(|i| self.static_members.get(i))
                .cloned()
                .ok_or(ResponseError::UnknownMemberId)?;
            self.remove_member_and_update_group(now, &current);
        } else if self.pending_members.contains_key(&lm.member_id) {
            self.remove_pending_member_and_update_group(now, &lm.member_id);
        } else {
            self.validate_current_member(&lm.member_id, lm.group_instance_id.as_deref())?;
            self.remove_member_and_update_group(now, &lm.member_id);
        }
        Ok(())
    }

    fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_deadline = None;
        }
    }
}
