//! Static membership (group.instance.id): replacement, fencing, and
//! rejoins that keep the assignment.

use super::*;
use crate::group::GroupState;

/// A Stable group of static members "i0" (leader) and "i1".
fn static_stable() -> (Harness, Vec<String>, i32) {
    let mut h = Harness::new();
    let a = h.join_pending(static_req("", "i0"));
    let b = h.join_pending(static_req("", "i1"));
    assert!(
        a.starts_with("i0-"),
        "static ids start with the instance id: {a}"
    );
    h.advance(2 * DELAY);
    let generation = h.take_join(&a).generation_id;
    h.take_join(&b);
    let sync = |id: &str, assignments: &[(&str, &str)]| SyncRequest {
        group_instance_id: h_instance(id),
        ..sync_req(id, generation, assignments)
    };
    let follower = sync(&b, &[]);
    let leader = sync(&a, &[(&a, "pa"), (&b, "pb")]);
    h.sync(follower);
    h.sync_done(leader);
    h.take_sync(&b);
    assert_eq!(h.group().state(), GroupState::Stable);
    (h, vec![a, b], generation)
}

fn h_instance(member_id: &str) -> Option<String> {
    member_id.split('-').next().map(str::to_owned)
}

#[test]
fn static_rejoin_keeps_the_assignment_without_a_rebalance() {
    let (mut h, ids, generation) = static_stable();
    let resp = h.join_done(static_req("", "i1"));
    assert_eq!(resp.error_code, 0);
    let new_id = resp.member_id.clone();
    assert_ne!(new_id, ids[1]);
    assert_eq!(resp.generation_id, generation);
    assert_eq!(resp.leader, ids[0]);
    assert!(resp.members.is_empty());
    assert_eq!(h.group().state(), GroupState::Stable);
    assert_eq!(h.group().static_member_id("i1"), Some(new_id.as_str()));

    let synced = h.sync_done(SyncRequest {
        group_instance_id: Some("i1".to_owned()),
        ..sync_req(&new_id, generation, &[])
    });
    assert_eq!(synced.assignment, &b"pb"[..]);
    assert!(h
        .coord
        .heartbeat(h.now, G, &new_id, Some("i1"), generation)
        .is_ok());
    // The old incarnation is fenced.
    assert_eq!(
        h.coord.heartbeat(h.now, G, &ids[1], Some("i1"), generation),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        h.coord.heartbeat(h.now, G, &ids[1], None, generation),
        Err(ResponseError::UnknownMemberId)
    );
    let commit = h
        .coord
        .validate_offset_commit(h.now, G, &ids[1], Some("i1"), generation);
    assert_eq!(commit, Err(ResponseError::FencedInstanceId));
    let stale_join = h.join_done(static_req(&ids[1], "i1"));
    assert_eq!(stale_join.error_code, code(ResponseError::FencedInstanceId));
}

#[test]
fn static_leader_rejoin_reports_the_old_leader_unless_it_can_skip() {
    let (mut h, ids, generation) = static_stable();
    let resp = h.join_done(static_req("", "i0"));
    assert_eq!(
        resp.leader, ids[0],
        "the old id, so the new incarnation does not assign"
    );
    assert!(!resp.skip_assignment);
    assert_eq!(h.group().leader_id(), Some(resp.member_id.as_str()));

    let resp = h.join_done(JoinRequest {
        supports_skip_assignment: true,
        ..static_req("", "i0")
    });
    assert_eq!(resp.leader, resp.member_id);
    assert!(resp.skip_assignment);
    assert_eq!(resp.members.len(), 2);
    assert_eq!(resp.generation_id, generation);
    assert_eq!(h.group().state(), GroupState::Stable);
}

#[test]
fn static_rejoin_that_changes_the_protocol_rebalances() {
    let (mut h, _, _) = static_stable();
    h.join_pending(with_protocols(static_req("", "i1"), &["roundrobin"]));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
}

#[test]
fn static_rejoin_while_completing_rebalances() {
    let mut h = Harness::new();
    let a = h.join_pending(static_req("", "i0"));
    h.advance(DELAY);
    h.take_join(&a);
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);
    let resp = h.join_done(static_req("", "i0"));
    assert_ne!(resp.member_id, a);
    assert_eq!(
        resp.generation_id, 2,
        "a new generation; the only member has rejoined"
    );
    assert_eq!(resp.leader, resp.member_id);
}

#[test]
fn replaced_static_member_parked_in_join_is_fenced() {
    let (mut h, ids, _) = static_stable();
    let c = h.member_id_for("c");
    h.join_pending(join_req(&c));
    h.join_pending(static_req(&ids[1], "i1"));
    let replacement = h.join_pending(static_req("", "i1"));
    let fenced = h.take_join(&ids[1]);
    assert_eq!(fenced.error_code, code(ResponseError::FencedInstanceId));
    assert_eq!(fenced.member_id, ids[1]);
    assert!(h.group().member_ids().any(|m| m == replacement));
    assert!(!h.group().member_ids().any(|m| m == ids[1]));
    assert_eq!(h.join_done(static_req(&ids[0], "i0")).generation_id, 2);
    assert_eq!(
        h.take_join(&replacement).generation_id,
        2,
        "the replacement took the old place"
    );
}

#[test]
fn static_member_leaves_a_rebalance_only_when_its_session_expires() {
    let (mut h, ids, generation) = static_stable();
    h.join_pending(static_req(&ids[0], "i0"));
    // i1 neither rejoins nor heartbeats; a dynamic member would be dropped
    // at the rebalance timeout, a static one only when its session expires.
    h.advance(i64::from(SESSION));
    assert!(
        !h.group().member_ids().any(|m| m == ids[1]),
        "session expired"
    );
    let resp = h.take_join(&ids[0]);
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.members.len(), 1);
}

#[test]
fn static_member_missing_the_rebalance_stays_in_the_next_generation() {
    let (mut h, ids, generation) = static_stable();
    let long = |id: &str, inst: &str| JoinRequest {
        session_timeout_ms: 60_000,
        ..static_req(id, inst)
    };
    // A fresh incarnation of i1 with a session longer than the rebalance
    // timeout; its heartbeat starts the new session.
    let b = h.join_done(long("", "i1")).member_id;
    assert!(h
        .coord
        .heartbeat(h.now, G, &b, Some("i1"), generation)
        .is_ok());
    h.join_pending(static_req(&ids[0], "i0"));
    h.advance(i64::from(REBALANCE));
    let resp = h.take_join(&ids[0]);
    assert_eq!(resp.generation_id, generation + 1);
    let listed: Vec<&str> = resp.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(
        listed,
        [ids[0].as_str(), b.as_str()],
        "the absent static member stays"
    );
    assert_eq!(resp.members[1].group_instance_id.as_deref(), Some("i1"));
}

#[test]
fn admin_removal_by_instance_id() {
    let (mut h, ids, _) = static_stable();
    let results = h.leave(&[LeaveMember {
        member_id: String::new(),
        group_instance_id: Some("i1".to_owned()),
    }]);
    assert_eq!(results[0].error_code, 0);
    assert!(!h.group().member_ids().any(|m| m == ids[1]));
    assert_eq!(h.group().static_member_id("i1"), None);
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    let fenced = h.leave(&[LeaveMember {
        member_id: "i0-stale".to_owned(),
        group_instance_id: Some("i0".to_owned()),
    }]);
    assert_eq!(fenced[0].error_code, code(ResponseError::FencedInstanceId));
}

#[test]
fn join_phase_waits_again_when_no_member_rejoined() {
    let (mut h, ids, generation) = static_stable();
    let c = h.member_id_for("c");
    h.join_pending(join_req(&c));
    h.leave(&[leave_id(&c)]);
    h.take_join(&c);
    let beat = |h: &mut Harness, i: usize| {
        let instance = format!("i{i}");
        h.coord
            .heartbeat(h.now, G, &ids[i], Some(&instance), generation)
    };
    // Both static members stay alive but neither rejoins: Kafka keeps
    // waiting (another rebalance timeout) rather than emptying the group.
    for _ in 0..(REBALANCE / 5_000) {
        h.advance(5_000);
        assert_eq!(beat(&mut h, 0), Err(ResponseError::RebalanceInProgress));
        assert_eq!(beat(&mut h, 1), Err(ResponseError::RebalanceInProgress));
    }
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(h.group().generation_id(), generation);
    h.join_pending(static_req(&ids[0], "i0"));
    for _ in 0..(REBALANCE / 5_000) {
        h.advance(5_000);
        let _ = beat(&mut h, 1);
    }
    let resp = h.take_join(&ids[0]);
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(
        resp.members.len(),
        2,
        "the static member that missed it stays"
    );
}
