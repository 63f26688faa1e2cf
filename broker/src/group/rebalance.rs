//! Rebalances and timers for one group: the join phase (Kafka's
//! `DelayedJoin`/`InitialDelayedJoin` and `onCompleteJoin`), protocol
//! selection, assignment propagation, and the session, pending-member and
//! pending-sync expiries (Kafka's heartbeat and sync purgatories).

use std::mem;

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;

use super::state::{Group, Phase};
use super::types::{Completion, SyncResponse};

/// The deadline of the join phase (Kafka's DelayedJoin / InitialDelayedJoin).
#[derive(Debug, Clone, Copy)]
pub(super) struct JoinTimer {
    pub(super) deadline: i64,
    /// Set for an Empty group's first rebalance: it waits out the whole
    /// delay even when everyone has joined, and extends while members arrive.
    pub(super) initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct InitialDelay {
    pub(super) delay_ms: i64,
    /// What is left of the rebalance timeout after this delay.
    pub(super) remaining_ms: i64,
}

/// A timer that is due, found by `next_due`.
#[derive(Debug)]
enum Due {
    Join,
    Sync,
    Heartbeat(String),
    PendingMember(String),
}

impl Group {
    /// The earliest timer; the caller calls [`Group::tick`] once it has passed.
    pub fn next_deadline(&self) -> Option<i64> {
        self.next_due().map(|(deadline, _)| deadline)
    }

    /// Fire every timer due at `now`, earliest first, each at its deadline.
    pub fn tick(&mut self, now: i64) -> Vec<Completion> {
        while let Some((deadline, due)) = self.next_due() {
            if deadline > now {
                break;
            }
            self.fire(deadline, due);
        }
        mem::take(&mut self.outbox)
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, now: i64) {
        if matches!(
            self.phase,
            Phase::Empty | Phase::Stable | Phase::CompletingRebalance
        ) {
            self.prepare_rebalance(now);
        }
    }

    /// Start a join phase; members parked in SyncGroup are told to rejoin.
    pub(super) fn prepare_rebalance(&mut self, now: i64) {
        if self.phase == Phase::CompletingRebalance {
            self.reset_and_propagate_assignment_error(now, ResponseError::RebalanceInProgress);
        }
        self.pending_sync_members.clear();
        self.sync_deadline = None;
        let timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.phase == Phase::Empty {
            let delay = i64::from(self.config.initial_rebalance_delay_ms);
            JoinTimer {
                deadline: now + delay,
                initial: Some(InitialDelay {
                    delay_ms: delay,
                    remaining_ms: (timeout - delay).max(0),
                }),
            }
        } else {
            JoinTimer {
                deadline: now + timeout,
                initial: None,
            }
        });
        self.phase = Phase::PreparingRebalance;
        self.try_complete_join(now);
    }

    /// Complete the join phase early once every member has rejoined
    /// (never during the initial delay, which always runs its course).
    pub(super) fn try_complete_join(&mut self, now: i64) {
        let normal = self.join_timer.is_some_and(|t| t.initial.is_none());
        if normal
            && self.members.values().all(|m| m.awaiting_join)
            && self.pending_members.is_empty()
        {
            self.complete_join(now);
        }
    }

    /// Kafka's `onCompleteJoin`: drop dynamic members that did not rejoin,
    /// start the next generation and answer every parked JoinGroup.
    fn complete_join(&mut self, now: i64) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait for
            // them, or for their sessions to expire. At least 1 ms so that a
            // zero rebalance timeout cannot make `tick` spin.
            self.join_timer = Some(JoinTimer {
                deadline: now + self.rebalance_timeout_ms().max(1),
                initial: None,
            });
            return;
        }
        self.init_next_generation();
        if self.phase == Phase::Empty {
            return;
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            let is_leader = self.is_leader(id);
            let response = self.current_join_response(id, is_leader);
            self.invoke_join(id, response);
            self.schedule_heartbeat(now, id);
            if let Some(member) = self.members.get_mut(id) {
                member.is_new = false;
            }
            self.pending_sync_members.insert(id.clone());
        }
        self.sync_deadline = Some(now + self.rebalance_timeout_ms());
    }

    /// Keep the leader if it rejoined, else pick any member that did.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader_id else {
            return false;
        };
        if self.members.get(leader).is_some_and(|m| m.awaiting_join) {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.phase = Phase::Empty;
            // Persisted so that a new coordinator does not bring the
            // departed members back.
            self.store_pending = true;
        } else {
            self.protocol_name = self.select_protocol();
            self.phase = Phase::CompletingRebalance;
        }
        self.pending_sync_members.clear();
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports,
    /// each member votes for its most preferred; most votes wins. Kafka
    /// breaks ties by hash order; here the earliest member's vote wins.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: IndexMap<&str, usize> = IndexMap::new();
        for member in self.members.values() {
            if let Some(vote) = member.vote(&candidates) {
                *votes.entry(vote).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    fn reset_and_propagate_assignment_error(&mut self, now: i64, error: ResponseError) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(now, Some(error));
    }

    /// Answer every parked SyncGroup with the member's assignment (or `error`).
    pub(super) fn propagate_assignment(&mut self, now: i64, error: Option<ResponseError>) {
        let (protocol_type, protocol_name) = match error {
            None => (self.protocol_type.clone(), self.protocol_name.clone()),
            Some(_) => (None, None),
        };
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            let assignment = self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            let response = SyncResponse {
                error_code: error.map_or(0, |e| e.code()),
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment,
            };
            // The session restarts once the member has its answer: expiries
            // that fell while it was parked were ignored.
            if self.invoke_sync(id, response) {
                self.schedule_heartbeat(now, id);
            }
        }
    }

    fn next_due(&self) -> Option<(i64, Due)> {
        let timers = self
            .join_timer
            .map(|t| (t.deadline, Due::Join))
            .into_iter()
            .chain(self.sync_deadline.map(|d| (d, Due::Sync)))
            .chain(self.members.values().filter_map(|m| {
                m.heartbeat_deadline
                    .map(|d| (d, Due::Heartbeat(m.member_id.clone())))
            }))
            .chain(
                self.pending_members
                    .iter()
                    .map(|(id, d)| (*d, Due::PendingMember(id.clone()))),
            );
        timers.min_by_key(|(deadline, _)| *deadline)
    }

    /// Run one expired timer as of its own deadline, so that one late
    /// `tick` behaves exactly like ticks at every deadline in between.
    fn fire(&mut self, now: i64, due: Due) {
        match due {
            Due::Join => self.expire_join(now),
            Due::Sync => self.expire_sync(now),
            Due::Heartbeat(id) => {
                let Some(member) = self.members.get_mut(&id) else {
                    return;
                };
                member.heartbeat_deadline = None;
                if !member.has_satisfied_heartbeat() {
                    self.remove_member_and_update_group(now, &id);
                }
            }
            Due::PendingMember(id) => self.remove_pending_member_and_update_group(now, &id),
        }
    }

    /// The join phase ran out: extend the initial delay if members keep
    /// arriving (within the rebalance timeout), else complete with whoever joined.
    fn expire_join(&mut self, now: i64) {
        let Some(timer) = self.join_timer.take() else {
            return;
        };
        match timer.initial {
            Some(initial) if self.new_member_added && initial.remaining_ms != 0 => {
                self.new_member_added = false;
                let delay =
                    i64::from(self.config.initial_rebalance_delay_ms).min(initial.remaining_ms);
                self.join_timer = Some(JoinTimer {
                    deadline: now + delay,
                    initial: Some(InitialDelay {
                        delay_ms: delay,
                        remaining_ms: (initial.remaining_ms - initial.delay_ms).max(0),
                    }),
                });
            }
            _ => self.complete_join(now),
        }
    }

    /// Members that never sent SyncGroup for this generation are removed
    /// and the rest rebalance (Kafka's `onExpirePendingSync`).
    fn expire_sync(&mut self, now: i64) {
        self.sync_deadline = None;
        if !matches!(self.phase, Phase::CompletingRebalance | Phase::Stable)
            || self.pending_sync_members.is_empty()
        {
            return;
        }
        let laggards: Vec<String> = self.pending_sync_members.drain().collect();
        for id in &laggards {
            self.remove(id);
        }
        self.prepare_rebalance(now);
    }
}
