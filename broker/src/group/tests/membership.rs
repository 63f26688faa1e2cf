//! Leaving, expiring, SyncGroup and heartbeat errors, and the timers.

use super::*;
use crate::group::GroupState;

#[test]
fn leave_triggers_a_rebalance() {
    let (mut h, ids, generation) = Harness::stable(2);
    let results = h.leave(&[leave_id(&ids[1])]);
    assert_eq!(results[0].error_code, 0);
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&ids[0], generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let resp = h.join_done(join_req(&ids[0]));
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.members.len(), 1);
    assert_eq!(
        h.heartbeat(&ids[1], generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leader_leaving_hands_leadership_on() {
    let (mut h, ids, generation) = Harness::stable(2);
    h.leave(&[leave_id(&ids[0])]);
    let resp = h.join_done(join_req(&ids[1]));
    assert_eq!(resp.leader, ids[1]);
    assert_eq!(resp.generation_id, generation + 1);
}

#[test]
fn last_member_leaving_empties_the_group() {
    let (mut h, ids, generation) = Harness::stable(1);
    assert_eq!(h.leave(&[leave_id(&ids[0])])[0].error_code, 0);
    assert_eq!(h.group().state(), GroupState::Empty);
    assert_eq!(h.group().generation_id(), generation + 1);
    assert_eq!(h.group().protocol_name(), None);
    assert_eq!(
        h.group().protocol_type(),
        Some("consumer"),
        "kept, as Kafka does"
    );
    assert_eq!(h.group().leader_id(), None);
    assert!(h.coord.describe(G).members.is_empty());
    // The next member starts over with the initial delay.
    let id = h.member_id_for("again");
    h.join_pending(join_req(&id));
    h.advance(DELAY);
    assert_eq!(h.take_join(&id).generation_id, generation + 2);
}

#[test]
fn leave_errors_and_batches() {
    let (mut h, ids, _) = Harness::stable(2);
    let pending = h.member_id_for("late");
    let results = h.leave(&[
        leave_id("ghost"),
        leave_id(&pending),
        LeaveMember {
            member_id: String::new(),
            group_instance_id: Some("nobody".to_owned()),
        },
        LeaveMember {
            member_id: ids[1].clone(),
            group_instance_id: Some("wrong".to_owned()),
        },
        leave_id(&ids[1]),
    ]);
    let codes: Vec<i16> = results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [
            code(ResponseError::UnknownMemberId),
            0,
            code(ResponseError::UnknownMemberId),
            code(ResponseError::UnknownMemberId),
            0
        ]
    );
    assert_eq!(results[4].member_id, ids[1]);
    let rejoin = h.join_done(join_req(&pending));
    assert_eq!(
        rejoin.error_code,
        code(ResponseError::UnknownMemberId),
        "the pending id was dropped"
    );

    let outcome = h
        .coord
        .leave(h.now, "unknown-group", &[leave_id("x")])
        .expect("no top-level error");
    assert_eq!(
        outcome.0[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.coord.leave(h.now, "", &[]).err(),
        Some(ResponseError::InvalidGroupId)
    );
}

#[test]
fn leaving_while_parked_in_join_answers_the_join() {
    let (mut h, ids, _) = Harness::stable(2);
    h.join_pending(join_req(&ids[0]));
    h.leave(&[leave_id(&ids[0])]);
    let answer = h.take_join(&ids[0]);
    assert_eq!(answer.error_code, code(ResponseError::UnknownMemberId));
    assert_eq!(answer.member_id, "");
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let (mut h, ids, generation) = Harness::stable(2);
    for _ in 0..3 {
        h.advance(i64::from(SESSION) / 2);
        assert!(
            h.heartbeat(&ids[0], generation).is_ok() || h.group().state() != GroupState::Stable
        );
    }
    // ids[1] never heartbeated: it expired SESSION after its sync.
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&ids[0], generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let resp = h.join_done(join_req(&ids[0]));
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.members.len(), 1);
    assert_eq!(
        h.heartbeat(&ids[1], generation + 1),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn heartbeats_keep_the_session_alive() {
    let (mut h, ids, generation) = Harness::stable(1);
    for _ in 0..10 {
        h.advance(i64::from(SESSION) - 1);
        assert!(h.heartbeat(&ids[0], generation).is_ok());
    }
    assert_eq!(h.group().state(), GroupState::Stable);
    h.advance(i64::from(SESSION));
    assert_eq!(
        h.group().state(),
        GroupState::Empty,
        "the only member expired"
    );
}

#[test]
fn rebalance_timeout_removes_members_that_do_not_rejoin() {
    let (mut h, ids, generation) = Harness::stable(2);
    h.join_pending(join_req(&ids[0]));
    // ids[1] keeps heartbeating (so its session lives) but never rejoins.
    let mut elapsed = 0;
    while elapsed + 5_000 < i64::from(REBALANCE) {
        h.advance(5_000);
        elapsed += 5_000;
        assert_eq!(
            h.heartbeat(&ids[1], generation),
            Err(ResponseError::RebalanceInProgress)
        );
    }
    assert!(h.completions.is_empty());
    h.advance(i64::from(REBALANCE) - elapsed);
    let resp = h.take_join(&ids[0]);
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.members.len(), 1);
    assert_eq!(
        h.heartbeat(&ids[1], generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn new_leader_is_elected_when_the_leader_does_not_rejoin() {
    let (mut h, ids, generation) = Harness::stable(2);
    let c = h.member_id_for("c");
    h.join_pending(join_req(&c));
    h.join_pending(join_req(&ids[1]));
    h.advance(i64::from(REBALANCE));
    let resp = h.take_join(&ids[1]);
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.leader, ids[1]);
    assert_eq!(resp.members.len(), 2);
    assert!(h.take_join(&c).members.is_empty());
}

#[test]
fn sync_errors() {
    let (mut h, ids, generation) = Harness::stable(2);
    let stale = h.sync_done(sync_req(&ids[1], generation - 1, &[]));
    assert_eq!(stale.error_code, code(ResponseError::IllegalGeneration));
    let unknown = h.sync_done(sync_req("ghost", generation, &[]));
    assert_eq!(unknown.error_code, code(ResponseError::UnknownMemberId));
    let wrong_type = h.sync_done(SyncRequest {
        protocol_type: Some("connect".to_owned()),
        ..sync_req(&ids[1], generation, &[])
    });
    assert_eq!(
        wrong_type.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let wrong_name = h.sync_done(SyncRequest {
        protocol_name: Some("sticky".to_owned()),
        ..sync_req(&ids[1], generation, &[])
    });
    assert_eq!(
        wrong_name.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let right_name = h.sync_done(SyncRequest {
        protocol_name: Some("range".to_owned()),
        ..sync_req(&ids[1], generation, &[])
    });
    assert_eq!(
        right_name.error_code, 0,
        "a Stable group answers any member with its assignment"
    );
    assert_eq!(right_name.assignment, format!("a-{}", ids[1]).as_bytes());

    h.join_pending(join_req(&ids[0]));
    let preparing = h.sync_done(sync_req(&ids[1], generation, &[]));
    assert_eq!(
        preparing.error_code,
        code(ResponseError::RebalanceInProgress)
    );

    let (outcome, _) = h
        .coord
        .sync(h.now, "other", sync_req(&ids[0], generation, &[]));
    assert!(
        matches!(outcome, SyncOutcome::Done(r) if r.error_code == code(ResponseError::UnknownMemberId))
    );
    let (outcome, _) = h.coord.sync(h.now, "", sync_req(&ids[0], generation, &[]));
    assert!(
        matches!(outcome, SyncOutcome::Done(r) if r.error_code == code(ResponseError::InvalidGroupId))
    );
}

#[test]
fn sync_to_an_empty_group_is_unknown_member() {
    let mut group = Group::new(G, GroupConfig::default());
    let (outcome, _) = group.sync(T0, sync_req("", 0, &[]));
    assert!(
        matches!(outcome, SyncOutcome::Done(r) if r.error_code == code(ResponseError::UnknownMemberId))
    );
}

#[test]
fn a_new_member_aborts_a_sync_in_progress() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    h.join_pending(join_req(&b));
    h.advance(2 * DELAY);
    h.completions.clear();
    assert_eq!(h.sync(sync_req(&b, 1, &[])), SyncOutcome::Pending);
    let c = h.member_id_for("c");
    h.join_pending(join_req(&c));
    let aborted = h.take_sync(&b);
    assert_eq!(aborted.error_code, code(ResponseError::RebalanceInProgress));
    assert_eq!(aborted.protocol_name, None);
    let late_leader = h.sync_done(sync_req(&a, 1, &[(&a, "pa"), (&b, "pb")]));
    assert_eq!(
        late_leader.error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn members_that_never_sync_are_removed() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    h.join_pending(join_req(&b));
    h.advance(2 * DELAY);
    h.completions.clear();
    h.sync_done(sync_req(&a, 1, &[(&a, "pa"), (&b, "pb")]));
    assert_eq!(h.group().state(), GroupState::Stable);
    // a heartbeats; b got its generation but never sends SyncGroup.
    for _ in 0..(REBALANCE / 5_000) {
        h.advance(5_000);
        let _ = h.heartbeat(&a, 1);
    }
    assert_eq!(h.group().member_ids().collect::<Vec<_>>(), [a.as_str()]);
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(h.join_done(join_req(&a)).generation_id, 2);
}

#[test]
fn heartbeat_errors() {
    let (mut h, ids, generation) = Harness::stable(1);
    assert_eq!(
        h.heartbeat(&ids[0], generation + 1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat(&ids[0], generation - 1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("ghost", generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.coord.heartbeat(h.now, "other", &ids[0], None, generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.coord.heartbeat(h.now, "", &ids[0], None, generation),
        Err(ResponseError::InvalidGroupId)
    );
    assert_eq!(
        h.coord.heartbeat(h.now, G, &ids[0], Some("i"), generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn heartbeat_is_fine_while_completing() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    h.join_pending(join_req(&a));
    h.advance(DELAY);
    h.take_join(&a);
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);
    assert!(h.heartbeat(&a, 1).is_ok());
    assert_eq!(h.heartbeat(&a, 0), Err(ResponseError::IllegalGeneration));
}

#[test]
fn pending_member_ids_expire() {
    let mut h = Harness::new();
    let id = h.member_id_for("slow");
    assert_eq!(h.coord.next_deadline(), Some(T0 + i64::from(SESSION)));
    h.advance(i64::from(SESSION));
    assert_eq!(h.coord.next_deadline(), None);
    assert_eq!(
        h.join_done(join_req(&id)).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn pending_member_holds_up_a_rebalance_until_it_joins_or_lapses() {
    let (mut h, ids, generation) = Harness::stable(1);
    let late = h.member_id_for("late");
    h.join_pending(join_req(&ids[0]));
    assert!(h.completions.is_empty(), "waits for the pending id");
    h.advance(i64::from(SESSION));
    let resp = h.take_join(&ids[0]);
    assert_eq!(resp.generation_id, generation + 1);
    assert_eq!(resp.members.len(), 1);
    assert_eq!(
        h.join_done(join_req(&late)).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn parked_new_member_expires_after_the_new_member_timeout() {
    let (mut h, ids, generation) = Harness::stable(1);
    // A long rebalance timeout keeps the join phase open while the old
    // member heartbeats without rejoining.
    let long = |id: &str| JoinRequest {
        rebalance_timeout_ms: 600_000,
        ..join_req(id)
    };
    let b = h.member_id_for("b");
    h.join_pending(long(&b));
    let mut elapsed = 0;
    while elapsed < crate::group::NEW_MEMBER_JOIN_TIMEOUT_MS {
        h.advance(5_000);
        elapsed += 5_000;
        if elapsed < crate::group::NEW_MEMBER_JOIN_TIMEOUT_MS {
            assert!(h.completions.is_empty());
        }
        assert!(h.heartbeat(&ids[0], generation).is_err());
    }
    let answer = h.take_join(&b);
    assert_eq!(answer.error_code, code(ResponseError::UnknownMemberId));
    assert!(!h.group().member_ids().any(|m| m == b));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
}

#[test]
fn leaving_while_parked_in_sync_answers_the_sync() {
    // Kafka drops this SyncGroup unanswered; answering it keeps the
    // caller from holding a waiter that nothing would ever complete.
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    h.join_pending(join_req(&b));
    h.advance(2 * DELAY);
    h.completions.clear();
    assert_eq!(h.sync(sync_req(&b, 1, &[])), SyncOutcome::Pending);
    h.leave(&[leave_id(&b)]);
    assert_eq!(
        h.take_sync(&b).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
}
