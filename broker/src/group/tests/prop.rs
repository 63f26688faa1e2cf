//! Random clients against one group: no panics, every completion answers a
//! parked request, every parked request is eventually answered, and the
//! group's invariants hold after every step.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::group::GroupState;

const SLOTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Join { slot: usize, protocols: usize },
    Sync { slot: usize },
    Heartbeat { slot: usize },
    Commit { slot: usize },
    Leave { slot: usize },
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SLOTS, protocol_set()).prop_map(|(slot, protocols)| Op::Join { slot, protocols }),
        3 => (0..SLOTS).prop_map(|slot| Op::Sync { slot }),
        2 => (0..SLOTS).prop_map(|slot| Op::Heartbeat { slot }),
        1 => (0..SLOTS).prop_map(|slot| Op::Commit { slot }),
        1 => (0..SLOTS).prop_map(|slot| Op::Leave { slot }),
        2 => (0..3_000i64).prop_map(|ms| Op::Advance { ms }),
        1 => (0..40_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// Mostly sets with a protocol in common, sometimes not.
fn protocol_set() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(0usize), 3 => Just(2usize), 3 => Just(4usize), 1 => Just(1usize), 1 => Just(3usize)]
}

/// What one client knows about itself.
#[derive(Debug, Default, Clone)]
struct Client {
    member_id: String,
    generation: i32,
    /// The last successful JoinGroup answer, for the leader's assignment.
    joined: Option<JoinResponse>,
}

struct World {
    coord: GroupCoordinatorState,
    now: i64,
    clients: Vec<Client>,
    join_waiters: HashSet<String>,
    sync_waiters: HashSet<String>,
    max_generation: i32,
}

impl World {
    fn new() -> Self {
        Self {
            coord: GroupCoordinatorState::new(GroupConfig::default()),
            now: T0,
            clients: vec![Client::default(); SLOTS],
            join_waiters: HashSet::new(),
            sync_waiters: HashSet::new(),
            max_generation: 0,
        }
    }

    /// Slot 3 is a static member; the others are dynamic.
    fn instance(slot: usize) -> Option<String> {
        (slot == 3).then(|| "static-3".to_owned())
    }

    fn request(&self, slot: usize, protocols: usize) -> JoinRequest {
        let sets: [&[&str]; 5] = [
            &["range", "roundrobin"],
            &["roundrobin"],
            &["range"],
            &["sticky"],
            &["roundrobin", "range"],
        ];
        JoinRequest {
            group_instance_id: Self::instance(slot),
            client_id: format!("c{slot}"),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: 20_000,
            ..with_protocols(join_req(&self.clients[slot].member_id), sets[protocols])
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Join { slot, protocols } => {
                let req = self.request(slot, protocols);
                let (outcome, completions) = self.coord.join(self.now, G, req);
                match outcome {
                    JoinOutcome::Done(resp) => self.on_join(slot, resp),
                    JoinOutcome::Pending { member_id } => {
                        self.clients[slot].member_id = member_id.clone();
                        self.join_waiters.insert(member_id);
                    }
                }
                self.deliver(completions);
            }
            Op::Sync { slot } => {
                let client = self.clients[slot].clone();
                let Some(joined) = client.joined.filter(|_| !client.member_id.is_empty()) else {
                    return;
                };
                let assignments = joined
                    .members
                    .iter()
                    .map(|m| {
                        (
                            m.member_id.clone(),
                            Bytes::from(format!("for-{}", m.member_id)),
                        )
                    })
                    .collect();
                let req = SyncRequest {
                    group_instance_id: Self::instance(slot),
                    assignments,
                    ..sync_req(&client.member_id, joined.generation_id, &[])
                };
                let (outcome, completions) = self.coord.sync(self.now, G, req);
                match outcome {
                    SyncOutcome::Done(resp) => self.on_sync(slot, &resp),
                    SyncOutcome::Pending => {
                        self.sync_waiters.insert(client.member_id);
                    }
                }
                self.deliver(completions);
            }
            Op::Heartbeat { slot } => {
                let c = &self.clients[slot];
                let result = self.coord.heartbeat(
                    self.now,
                    G,
                    &c.member_id,
                    Self::instance(slot).as_deref(),
                    c.generation,
                );
                if matches!(
                    result,
                    Err(ResponseError::UnknownMemberId | ResponseError::FencedInstanceId)
                ) {
                    self.clients[slot] = Client::default();
                }
            }
            Op::Commit { slot } => {
                let c = &self.clients[slot];
                let generation = if c.member_id.is_empty() {
                    -1
                } else {
                    c.generation
                };
                let _ = self.coord.validate_offset_commit(
                    self.now,
                    G,
                    &c.member_id,
                    Self::instance(slot).as_deref(),
                    generation,
                );
            }
            Op::Leave { slot } => {
                let member_id = std::mem::take(&mut self.clients[slot].member_id);
                if let Ok((_, completions)) = self.coord.leave(
                    self.now,
                    G,
                    &[LeaveMember {
                        member_id,
                        group_instance_id: Self::instance(slot),
                    }],
                ) {
                    self.deliver(completions);
                }
                self.clients[slot] = Client::default();
            }
            Op::Advance { ms } => {
                self.now += ms;
                let completions = self.coord.tick(self.now);
                self.deliver(completions);
            }
        }
        self.check();
    }

    fn slot_of(&self, member_id: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.member_id == member_id)
    }

    fn deliver(&mut self, completions: Vec<Completion>) {
        for c in completions {
            assert_eq!(c.group_id, G);
            match c.response {
                Response::Join(resp) => {
                    assert!(
                        self.join_waiters.remove(&c.member_id),
                        "unexpected join answer for {}",
                        c.member_id
                    );
                    if let Some(slot) = self.slot_of(&c.member_id) {
                        self.on_join(slot, resp);
                    }
                }
                Response::Sync(resp) => {
                    assert!(
                        self.sync_waiters.remove(&c.member_id),
                        "unexpected sync answer for {}",
                        c.member_id
                    );
                    if let Some(slot) = self.slot_of(&c.member_id) {
                        self.on_sync(slot, &resp);
                    }
                }
            }
        }
    }

    fn on_join(&mut self, slot: usize, resp: JoinResponse) {
        let client = &mut self.clients[slot];
        if resp.error_code == 0 {
            assert!(resp.generation_id >= client.generation);
            client.member_id = resp.member_id.clone();
            client.generation = resp.generation_id;
            client.joined = Some(resp);
        } else if resp.error_code == code(ResponseError::MemberIdRequired) {
            client.member_id = resp.member_id;
        } else if resp.error_code == code(ResponseError::UnknownMemberId)
            || resp.error_code == code(ResponseError::FencedInstanceId)
        {
            *client = Client::default();
        }
    }

    fn on_sync(&mut self, slot: usize, resp: &SyncResponse) {
        if resp.error_code == code(ResponseError::UnknownMemberId)
            || resp.error_code == code(ResponseError::FencedInstanceId)
        {
            self.clients[slot] = Client::default();
        }
    }

    fn check(&mut self) {
        let Some(group) = self.coord.group(G) else {
            return;
        };
        assert!(
            group.generation_id() >= self.max_generation,
            "generation went back"
        );
        self.max_generation = group.generation_id();
        let members: Vec<&str> = group.member_ids().collect();
        let unique: HashSet<&&str> = members.iter().collect();
        assert_eq!(unique.len(), members.len());
        match group.leader_id() {
            Some(leader) => assert!(members.contains(&leader), "leader {leader} not a member"),
            None => assert!(members.is_empty()),
        }
        if let Some(id) = group.static_member_id("static-3") {
            assert!(members.contains(&id));
        }
        let summary = self.coord.describe(G);
        match summary.state {
            GroupState::Empty => assert!(members.is_empty()),
            GroupState::Stable => {
                assert!(!summary.protocol.is_empty());
                for m in &summary.members {
                    assert!(
                        !m.assignment.is_empty(),
                        "{} has no assignment in a Stable group",
                        m.member_id
                    );
                }
            }
            GroupState::PreparingRebalance | GroupState::CompletingRebalance => {}
            GroupState::Dead => panic!("a live group is never Dead"),
        }
        for id in &self.join_waiters {
            assert!(
                members.contains(&id.as_str()),
                "parked joiner {id} is not a member"
            );
        }
    }

    /// Nobody talks any more: run every timer until none is left.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(deadline) = self.coord.next_deadline() else {
                break;
            };
            self.now = self.now.max(deadline);
            let completions = self.coord.tick(self.now);
            self.deliver(completions);
            self.check();
        }
        assert_eq!(self.coord.next_deadline(), None, "timers left");
        assert!(
            self.join_waiters.is_empty(),
            "unanswered joins: {:?}",
            self.join_waiters
        );
        assert!(
            self.sync_waiters.is_empty(),
            "unanswered syncs: {:?}",
            self.sync_waiters
        );
        if let Some(group) = self.coord.group(G) {
            assert_eq!(group.state(), GroupState::Empty);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_clients_keep_the_group_consistent(ops in proptest::collection::vec(op(), 1..150)) {
        let mut world = World::new();
        for op in ops {
            world.step(op);
        }
        world.drain();
    }
}
