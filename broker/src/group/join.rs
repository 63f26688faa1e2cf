//! JoinGroup for one group (Kafka's `handleJoinGroup` and the `do*JoinGroup`
//! paths): new, pending, current and static members.

use std::mem;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::member::Member;
use super::state::{Group, Phase, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::types::{
    Completion, JoinOutcome, JoinRequest, JoinResponse, Protocol, Response, SyncResponse,
};

impl Group {
    /// JoinGroup. When the answer is produced within this same call (the
    /// last member to rejoin completes the rebalance) it comes back as
    /// `Done`, never as a completion for the caller's own member id.
    pub fn join(&mut self, now: i64, req: JoinRequest) -> (JoinOutcome, Vec<Completion>) {
        let outcome = match self.do_join(now, req) {
            JoinOutcome::Pending { member_id } => self.take_own_join(member_id),
            done => done,
        };
        (outcome, mem::take(&mut self.outbox))
    }

    fn do_join(&mut self, now: i64, req: JoinRequest) -> JoinOutcome {
        if let Err(e) = self.config.check_session_timeout(req.session_timeout_ms) {
            return JoinOutcome::Done(JoinResponse::error(req.member_id, e));
        }
        let outcome = if !self.accepts_joining_member(&req.member_id) {
            self.remove(&req.member_id);
            JoinOutcome::Done(JoinResponse::error("", ResponseError::GroupMaxSizeReached))
        } else if req.member_id.is_empty() {
            self.join_new_member(now, req)
        } else {
            self.join_current_member(now, req)
        };
        if self.phase == Phase::PreparingRebalance {
            self.try_complete_join(now);
        }
        outcome
    }

    fn take_own_join(&mut self, member_id: String) -> JoinOutcome {
        let own = self
            .outbox
            .iter()
            .position(|c| c.member_id == member_id && matches!(c.response, Response::Join(_)));
        match own.map(|i| self.outbox.remove(i).response) {
            Some(Response::Join(resp)) => JoinOutcome::Done(resp),
            _ => JoinOutcome::Pending { member_id },
        }
    }

    /// Kafka's `acceptJoiningMember`: `max_size` counts parked joiners while
    /// preparing (so the last to rejoin are the ones turned away), members otherwise.
    fn accepts_joining_member(&self, member_id: &str) -> bool {
        let max = self.config.max_size;
        match self.phase {
            Phase::Empty => true,
            Phase::PreparingRebalance => {
                self.members.get(member_id).is_some_and(|m| m.awaiting_join)
                    || self.members.values().filter(|m| m.awaiting_join).count() < max
            }
            Phase::CompletingRebalance | Phase::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max
            }
        }
    }

    /// Kafka's `supportsProtocols`: an Empty group takes any non-empty
    /// protocol type and list; otherwise the type must match and one of the
    /// protocols must be supported by every member.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.phase == Phase::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.values().all(|m| m.supports(&p.name)))
    }

    fn join_new_member(&mut self, now: i64, req: JoinRequest) -> JoinOutcome {
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return JoinOutcome::Done(JoinResponse::error(
                "",
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let new_id = format!("{prefix}-{}", Uuid::new_v4());
        match req.group_instance_id.clone() {
            Some(instance_id) => match self.static_members.get(&instance_id).cloned() {
                Some(old_id) => self.update_static_member_and_rebalance(now, &old_id, new_id, req),
                None => self.add_member_and_rebalance(now, new_id, req),
            },
            None if req.require_known_member_id => {
                self.pending_members
                    .insert(new_id.clone(), now + i64::from(req.session_timeout_ms));
                JoinOutcome::Done(JoinResponse::error(new_id, ResponseError::MemberIdRequired))
            }
            None => self.add_member_and_rebalance(now, new_id, req),
        }
    }

    fn join_current_member(&mut self, now: i64, req: JoinRequest) -> JoinOutcome {
        let member_id = req.member_id.clone();
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return JoinOutcome::Done(JoinResponse::error(
                member_id,
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        if self.pending_members.contains_key(&member_id) {
            if req.group_instance_id.is_some() {
                // Static members never get pending ids; Kafka throws here.
                return JoinOutcome::Done(JoinResponse::error(
                    member_id,
                    ResponseError::UnknownServerError,
                ));
            }
            return self.add_member_and_rebalance(now, member_id, req);
        }
        if let Err(e) = self.validate_current_member(&member_id, req.group_instance_id.as_deref()) {
            return JoinOutcome::Done(JoinResponse::error(member_id, e));
        }
        let unchanged = self
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&req.protocols));
        match self.phase {
            Phase::PreparingRebalance => self.update_member_and_rebalance(now, req),
            // Same metadata: the member probably lost the JoinGroup response,
            // so resend the current generation.
            Phase::CompletingRebalance if unchanged => {
                let is_leader = self.is_leader(&member_id);
                JoinOutcome::Done(self.current_join_response(&member_id, is_leader))
            }
            Phase::CompletingRebalance => self.update_member_and_rebalance(now, req),
            // A leader's join forces a rebalance: that is how it reacts to
            // changes the member metadata does not show (e.g. new partitions).
            Phase::Stable if self.is_leader(&member_id) || !unchanged => {
                self.update_member_and_rebalance(now, req)
            }
            Phase::Stable => JoinOutcome::Done(self.current_join_response(&member_id, false)),
            Phase::Empty => JoinOutcome::Done(JoinResponse::error(
                member_id,
                ResponseError::UnknownMemberId,
            )),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        now: i64,
        member_id: String,
        req: JoinRequest,
    ) -> JoinOutcome {
        if self.phase == Phase::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        if let Some(instance_id) = &req.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        self.pending_members.shift_remove(&member_id);
        self.members.insert(
            member_id.clone(),
            Member {
                member_id: member_id.clone(),
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: true,
                awaiting_sync: false,
                is_new: true,
                // A parked joiner cannot heartbeat and its socket is muted, so
                // give up on it only after Kafka's long new-member timeout.
                heartbeat_deadline: Some(now + NEW_MEMBER_JOIN_TIMEOUT_MS),
            },
        );
        self.maybe_prepare_rebalance(now);
        JoinOutcome::Pending { member_id }
    }

    /// Kafka's `updateMember`: new protocols and timeouts, and park the join.
    fn update_member(&mut self, member_id: &str, req: JoinRequest) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.protocols = req.protocols;
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
            member.session_timeout_ms = req.session_timeout_ms;
            member.awaiting_join = true;
        }
    }

    fn update_member_and_rebalance(&mut self, now: i64, req: JoinRequest) -> JoinOutcome {
        let member_id = req.member_id.clone();
        self.update_member(&member_id, req);
        self.maybe_prepare_rebalance(now);
        JoinOutcome::Pending { member_id }
    }

    /// A static member rejoined with an unknown member id (e.g. after a
    /// restart): it takes over the old member's place under a new id, and
    /// the old id is fenced. A Stable group keeps its assignment unless the
    /// group's protocol would change (Kafka's `updateStaticMemberAndRebalance`).
    fn update_static_member_and_rebalance(
        &mut self,
        now: i64,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
    ) -> JoinOutcome {
        let previous_leader = self.leader_id.clone();
        let supports_skip = req.supports_skip_assignment;
        self.replace_static_member(old_id, &new_id);
        self.schedule_heartbeat(now, &new_id);
        self.update_member(&new_id, req);
        match self.phase {
            Phase::Stable if self.select_protocol() == self.protocol_name => {
                let response = if supports_skip {
                    // v9+: the leader learns it leads but must not reassign.
                    let is_leader = self.is_leader(&new_id);
                    JoinResponse {
                        skip_assignment: is_leader,
                        ..self.current_join_response(&new_id, is_leader)
                    }
                } else {
                    // Older clients: report the old leader id, so that a
                    // rejoining leader does not run an assignment that a
                    // Stable group would never hand out.
                    JoinResponse {
                        leader: previous_leader.unwrap_or_default(),
                        ..self.current_join_response(&new_id, false)
                    }
                };
                self.invoke_join(&new_id, response);
                // The old member id is fenced: a restored group must know the new one.
                self.store_pending = true;
            }
            Phase::Stable => self.maybe_prepare_rebalance(now),
            // The leader may already be assigning for the old member id.
            Phase::CompletingRebalance => self.prepare_rebalance(now),
            // An Empty group has no static member to replace.
            Phase::PreparingRebalance | Phase::Empty => {}
        }
        JoinOutcome::Pending { member_id: new_id }
    }

    /// Kafka's `replaceStaticMember`: move the member to its new id and
    /// answer anything parked under the old id with FENCED_INSTANCE_ID.
    /// Unlike Kafka the pending-sync entry moves too, so that the new id's
    /// SyncGroup clears it instead of an expiry forcing a rebalance.
    fn replace_static_member(&mut self, old_id: &str, new_id: &str) {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            return;
        };
        if member.awaiting_join {
            member.awaiting_join = false;
            self.push(
                old_id,
                Response::Join(JoinResponse::error(old_id, ResponseError::FencedInstanceId)),
            );
        }
        if member.awaiting_sync {
            member.awaiting_sync = false;
            self.push(
                old_id,
                Response::Sync(SyncResponse::error(ResponseError::FencedInstanceId)),
            );
        }
        member.member_id = new_id.to_owned();
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), new_id.to_owned());
        }
        self.members.insert(new_id.to_owned(), member);
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.to_owned());
        }
        if self.pending_sync_members.remove(old_id) {
            self.pending_sync_members.insert(new_id.to_owned());
        }
    }
}
