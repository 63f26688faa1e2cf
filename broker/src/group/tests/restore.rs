//! Persisted membership: which steps ask for a store, and a group restored
//! from its snapshot by a new coordinator carrying on without a rebalance.

use super::*;
use crate::group::{GroupSnapshot, GroupState};

/// The snapshot the coordinator asks to persist now, if any.
fn store(h: &mut Harness) -> Option<GroupSnapshot> {
    h.coord.take_store(G)
}

/// A new coordinator (a restarted broker) that took `snapshot` over at `now`.
fn restored(snapshot: GroupSnapshot, now: i64) -> Harness {
    let mut h = Harness::new();
    h.now = now;
    h.coord.restore(now, G, snapshot);
    h
}

#[test]
fn the_leaders_assignment_is_stored_and_restores_a_stable_group() {
    let (mut h, ids, generation) = Harness::stable(2);
    let snapshot = store(&mut h).expect("the leader's sync asks for a store");
    assert_eq!(store(&mut h), None, "asked once");
    assert_eq!(snapshot.generation_id, generation);
    assert_eq!(snapshot.leader_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(snapshot.protocol_name.as_deref(), Some("range"));
    assert_eq!(snapshot.members.len(), 2);
    assert_eq!(
        snapshot.members[1].assignment,
        format!("a-{}", ids[1]).as_bytes()
    );

    // Much later, on another broker: the same generation, ids and assignments.
    let later = h.now + 3_600_000;
    let mut r = restored(snapshot, later);
    let g = r.group();
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.generation_id(), generation);
    assert_eq!(g.leader_id(), Some(ids[0].as_str()));
    assert_eq!(g.member_ids().collect::<Vec<_>>(), ids);
    let described = r.coord.describe(G);
    assert_eq!(described.protocol, "range");
    assert_eq!(
        described.members[0].assignment,
        format!("a-{}", ids[0]).as_bytes()
    );
    for id in &ids {
        assert_eq!(r.heartbeat(id, generation), Ok(()));
        let commit = r
            .coord
            .validate_offset_commit(r.now, G, id, None, generation);
        assert_eq!(commit, Ok(()));
    }
    // A follower that resends its SyncGroup or an unchanged JoinGroup gets
    // the current generation back, with no rebalance.
    let sync = r.sync_done(sync_req(&ids[1], generation, &[]));
    assert_eq!(sync.assignment, format!("a-{}", ids[1]).as_bytes());
    let rejoin = r.join_done(join_req(&ids[1]));
    assert_eq!((rejoin.error_code, rejoin.generation_id), (0, generation));
    assert_eq!(r.group().state(), GroupState::Stable);
    assert_eq!(store(&mut r), None, "nothing changed");
}

#[test]
fn restored_sessions_start_at_the_restore() {
    let (mut h, ids, generation) = Harness::stable(2);
    let snapshot = store(&mut h).expect("stored");
    let mut r = restored(snapshot, h.now + 60_000);
    // Only the leader keeps heartbeating; the follower is really gone.
    r.advance(i64::from(SESSION) - 1);
    assert_eq!(r.heartbeat(&ids[0], generation), Ok(()));
    assert_eq!(r.group().state(), GroupState::Stable);
    r.advance(1);
    assert_eq!(r.group().state(), GroupState::PreparingRebalance);
    assert_eq!(
        r.heartbeat(&ids[0], generation),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        r.heartbeat(&ids[1], generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn an_emptied_group_is_stored_and_restores_without_its_members() {
    let (mut h, ids, generation) = Harness::stable(1);
    store(&mut h).expect("stored");
    let results = h.leave(&[leave_id(&ids[0])]);
    assert_eq!(results[0].error_code, 0);
    assert_eq!(h.group().state(), GroupState::Empty);
    let snapshot = store(&mut h).expect("the empty generation is stored");
    assert!(snapshot.members.is_empty());
    assert_eq!(snapshot.generation_id, generation + 1);
    assert_eq!(snapshot.protocol_type.as_deref(), Some("consumer"));

    let mut r = restored(snapshot, h.now);
    assert_eq!(r.group().state(), GroupState::Empty);
    assert_eq!(r.group().generation_id(), generation + 1);
    assert_eq!(
        r.heartbeat(&ids[0], generation),
        Err(ResponseError::UnknownMemberId)
    );
    let rejoin = r.join_done(join_req(&ids[0]));
    assert_eq!(rejoin.error_code, code(ResponseError::UnknownMemberId));
    // A new member starts the next generation.
    let id = r.member_id_for("c9");
    r.join_pending(join_req(&id));
    r.advance(DELAY);
    assert_eq!(r.take_join(&id).generation_id, generation + 2);
}

#[test]
fn sessions_expiring_to_empty_ask_for_a_store() {
    let (mut h, _, generation) = Harness::stable(2);
    store(&mut h).expect("stored");
    h.advance(i64::from(SESSION) - 1);
    assert_eq!(h.coord.take_all_stores(), Vec::new());
    h.advance(1);
    assert_eq!(h.group().state(), GroupState::Empty);
    let stores = h.coord.take_all_stores();
    assert_eq!(stores.len(), 1);
    assert_eq!(stores[0].1.generation_id, generation + 1);
    assert!(stores[0].1.members.is_empty());
}

#[test]
fn nothing_is_stored_mid_rebalance() {
    let (mut h, ids, generation) = Harness::stable(2);
    store(&mut h).expect("stored");
    // The leader rejoins: a rebalance, and no snapshot of it.
    h.join_pending(join_req(&ids[0]));
    assert_eq!(store(&mut h), None);
    assert_eq!(h.group().snapshot(), None);
    let follower = h.join_done(join_req(&ids[1]));
    assert_eq!(follower.generation_id, generation + 1);
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);
    assert_eq!(store(&mut h), None);
    h.take_join(&ids[0]);
    assert_eq!(
        h.sync(sync_req(&ids[1], generation + 1, &[])),
        SyncOutcome::Pending
    );
    assert_eq!(store(&mut h), None, "a follower's sync stores nothing");
    h.sync_done(sync_req(&ids[0], generation + 1, &[(&ids[1], "x")]));
    let snapshot = store(&mut h).expect("the new generation");
    assert_eq!(snapshot.generation_id, generation + 1);
    assert_eq!(snapshot.members[1].assignment, &b"x"[..]);
    assert!(snapshot.members[0].assignment.is_empty());
}

#[test]
fn a_replaced_static_member_is_stored_and_restored() {
    let mut h = Harness::new();
    let a = h.join_pending(static_req("", "i0"));
    h.advance(DELAY);
    let generation = h.take_join(&a).generation_id;
    h.sync_done(SyncRequest {
        group_instance_id: Some("i0".to_owned()),
        ..sync_req(&a, generation, &[(&a, "pa")])
    });
    store(&mut h).expect("stored");
    // The static member restarts: new member id, same generation.
    let resp = h.join_done(static_req("", "i0"));
    assert_eq!(resp.generation_id, generation);
    let snapshot = store(&mut h).expect("the new member id is stored");
    assert_eq!(snapshot.members[0].member_id, resp.member_id);
    assert_eq!(snapshot.leader_id.as_deref(), Some(resp.member_id.as_str()));

    let r = restored(snapshot, h.now);
    assert_eq!(
        r.group().static_member_id("i0"),
        Some(resp.member_id.as_str())
    );
    let mut r = r;
    assert_eq!(
        r.coord
            .heartbeat(r.now, G, &resp.member_id, Some("i0"), generation),
        Ok(())
    );
    assert_eq!(
        r.coord.heartbeat(r.now, G, &a, Some("i0"), generation),
        Err(ResponseError::FencedInstanceId)
    );
}

#[test]
fn an_inconsistent_snapshot_restores_an_empty_group() {
    let (mut h, _, generation) = Harness::stable(2);
    let good = store(&mut h).expect("stored");
    let no_leader = GroupSnapshot {
        leader_id: Some("nobody".to_owned()),
        ..good.clone()
    };
    let twice = GroupSnapshot {
        members: vec![good.members[0].clone(), good.members[0].clone()],
        ..good.clone()
    };
    let no_protocol = GroupSnapshot {
        protocol_name: None,
        ..good
    };
    for bad in [no_leader, twice, no_protocol] {
        let r = restored(bad, h.now);
        assert_eq!(r.group().state(), GroupState::Empty);
        assert_eq!(r.group().generation_id(), generation);
        assert_eq!(r.group().member_ids().count(), 0);
    }
}

#[test]
fn restore_keeps_a_group_already_known() {
    let (mut h, ids, generation) = Harness::stable(2);
    let snapshot = store(&mut h).expect("stored");
    let older = GroupSnapshot {
        generation_id: generation - 1,
        members: Vec::new(),
        ..snapshot
    };
    h.coord.restore(h.now, G, older);
    assert_eq!(h.group().generation_id(), generation);
    assert_eq!(h.heartbeat(&ids[1], generation), Ok(()));
}

#[test]
fn unloading_tells_parked_members_to_find_the_new_coordinator() {
    let (mut h, ids, _) = Harness::stable(2);
    h.join_pending(join_req(&ids[0]));
    let done = h.coord.unload(G);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].member_id, ids[0]);
    match &done[0].response {
        Response::Join(r) => assert_eq!(r.error_code, code(ResponseError::NotCoordinator)),
        other => panic!("{other:?}"),
    }
    assert!(h.coord.group(G).is_none());
    assert_eq!(h.coord.unload(G), Vec::new());
}
