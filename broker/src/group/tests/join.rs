//! JoinGroup: member ids, the initial delay, protocol selection, rejoins.

use super::*;
use crate::group::GroupState;

#[test]
fn single_member_full_flow() {
    let mut h = Harness::new();
    let id = h.member_id_for("rdkafka");
    assert_eq!(h.group().state(), GroupState::Empty);
    assert_eq!(
        h.group().member_ids().count(),
        0,
        "a pending id is not a member yet"
    );

    assert_eq!(h.join_pending(join_req(&id)), id);
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    h.advance(DELAY - 1);
    assert!(
        h.completions.is_empty(),
        "the initial delay runs its course"
    );
    h.advance(1);
    let resp = h.take_join(&id);
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.generation_id, 1);
    assert_eq!(resp.leader, id);
    assert_eq!(resp.member_id, id);
    assert_eq!(resp.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(resp.protocol_name.as_deref(), Some("range"));
    assert!(!resp.skip_assignment);
    assert_eq!(resp.members.len(), 1);
    assert_eq!(resp.members[0].member_id, id);
    assert_eq!(resp.members[0].metadata, &b"sub-range"[..]);
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);

    let own = h.sync_done(sync_req(&id, 1, &[(&id, "p0")]));
    assert_eq!(own.error_code, 0);
    assert_eq!(own.assignment, &b"p0"[..]);
    assert_eq!(own.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.group().state(), GroupState::Stable);
    let summary = h.coord.describe(G);
    assert_eq!(summary.protocol, "range");
    assert_eq!(summary.members[0].assignment, &b"p0"[..]);
    assert_eq!(summary.members[0].metadata, &b"sub-range"[..]);
    assert!(h.heartbeat(&id, 1).is_ok());
}

#[test]
fn join_without_member_id_requirement_assigns_one() {
    let mut h = Harness::new();
    let id = h.join_pending(JoinRequest {
        require_known_member_id: false,
        ..join_req("")
    });
    assert!(id.starts_with("rdkafka-"));
    h.advance(DELAY);
    assert_eq!(h.take_join(&id).generation_id, 1);
}

#[test]
fn initial_delay_extends_while_members_arrive_up_to_rebalance_timeout() {
    let mut h = Harness::new();
    let short = |id: &str| JoinRequest {
        rebalance_timeout_ms: 10_000,
        ..join_req(id)
    };
    let ids: Vec<String> = (0..5).map(|i| h.member_id_for(&format!("c{i}"))).collect();
    h.join_pending(short(&ids[0]));
    h.advance(2_000);
    h.join_pending(short(&ids[1]));
    h.advance(1_000); // t=3000: extended to 6000 (7000 left -> 4000)
    h.advance(2_000);
    h.join_pending(short(&ids[2]));
    h.advance(1_000); // t=6000: extended to 9000 (1000 left)
    h.advance(2_000);
    h.join_pending(short(&ids[3]));
    h.advance(1_000); // t=9000: extended by the last 1000
    h.join_pending(short(&ids[4]));
    assert!(h.completions.is_empty());
    h.advance(999);
    assert!(h.completions.is_empty());
    h.advance(1); // t=10000 = the rebalance timeout: no further extension
    for id in &ids {
        assert_eq!(h.take_join(id).generation_id, 1);
    }
}

#[test]
fn later_rebalances_do_not_wait_for_the_initial_delay() {
    let (mut h, ids, generation) = Harness::stable(1);
    let resp = h.join_done(join_req(&ids[0]));
    assert_eq!(
        resp.generation_id,
        generation + 1,
        "the only member rejoined: done at once"
    );
}

#[test]
fn two_members_join_the_same_rebalance() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    h.join_pending(join_req(&b));
    h.advance(2 * DELAY);
    let ra = h.take_join(&a);
    let rb = h.take_join(&b);
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    let listed: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, [a.as_str(), b.as_str()]);
    assert!(rb.members.is_empty(), "only the leader gets the members");

    assert_eq!(h.sync(sync_req(&b, 1, &[])), SyncOutcome::Pending);
    assert!(
        h.completions.is_empty(),
        "the follower waits for the leader"
    );
    let own = h.sync_done(sync_req(&a, 1, &[(&a, "pa"), (&b, "pb")]));
    assert_eq!(own.assignment, &b"pa"[..]);
    let sb = h.take_sync(&b);
    assert_eq!((sb.error_code, &sb.assignment[..]), (0, &b"pb"[..]));
    assert_eq!(h.group().state(), GroupState::Stable);
}

#[test]
fn members_left_out_of_the_assignment_get_empty_bytes() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    h.join_pending(join_req(&b));
    h.advance(2 * DELAY);
    h.completions.clear();
    h.sync(sync_req(&b, 1, &[]));
    h.sync_done(sync_req(&a, 1, &[(&a, "pa"), ("stranger", "px")]));
    assert!(h.take_sync(&b).assignment.is_empty());
}

#[test]
fn third_member_joining_a_stable_group_rebalances_everyone() {
    let (mut h, ids, generation) = Harness::stable(2);
    let c = h.member_id_for("c");
    assert_eq!(
        h.group().state(),
        GroupState::Stable,
        "a pending id changes nothing yet"
    );
    h.join_pending(join_req(&c));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&ids[0], generation),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        h.heartbeat(&ids[1], generation),
        Err(ResponseError::RebalanceInProgress)
    );
    h.join_pending(join_req(&ids[0]));
    let own = h.join_done(join_req(&ids[1]));
    assert_eq!(
        own.generation_id,
        generation + 1,
        "the last rejoin completes the phase"
    );
    let leader = h.take_join(&ids[0]);
    assert_eq!(leader.members.len(), 3);
    assert_eq!(leader.leader, ids[0]);
    assert_eq!(h.take_join(&c).generation_id, generation + 1);
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);
    assert!(h.heartbeat(&c, generation + 1).is_ok());
}

#[test]
fn follower_rejoining_with_same_metadata_gets_current_generation() {
    let (mut h, ids, generation) = Harness::stable(2);
    let resp = h.join_done(join_req(&ids[1]));
    assert_eq!((resp.error_code, resp.generation_id), (0, generation));
    assert_eq!(resp.leader, ids[0]);
    assert!(resp.members.is_empty());
    assert_eq!(h.group().state(), GroupState::Stable);
}

#[test]
fn follower_with_new_metadata_or_leader_rejoin_forces_a_rebalance() {
    let (mut h, ids, _) = Harness::stable(2);
    h.join_pending(with_protocols(join_req(&ids[1]), &["roundrobin", "range"]));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);

    let (mut h, ids, _) = Harness::stable(2);
    h.join_pending(join_req(&ids[0]));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
}

#[test]
fn rejoin_while_completing_resends_the_generation() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    h.join_pending(join_req(&a));
    h.advance(DELAY);
    let first = h.take_join(&a);
    let again = h.join_done(join_req(&a));
    assert_eq!(again, first, "a lost JoinGroup response is simply resent");
    let changed = h.join_done(with_protocols(join_req(&a), &["roundrobin"]));
    assert_eq!(
        changed.generation_id, 2,
        "new metadata: a new generation (at once, being alone)"
    );
    assert_eq!(changed.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn cooperative_two_round_rejoin() {
    let mut h = Harness::new();
    let coop = |id: &str| with_protocols(join_req(id), &["cooperative-sticky"]);
    let new_id = |h: &mut Harness| h.join_done(coop("")).member_id;
    let a = new_id(&mut h);
    let b = new_id(&mut h);
    h.join_pending(coop(&a));
    h.join_pending(coop(&b));
    h.advance(2 * DELAY);
    h.completions.clear();
    h.sync(sync_req(&b, 1, &[]));
    h.sync_done(sync_req(&a, 1, &[(&a, "p0 p1"), (&b, "")]));
    h.take_sync(&b);

    // Round one: b keeps heartbeating and consuming until it learns of the rebalance.
    let c = new_id(&mut h);
    h.join_pending(coop(&c));
    assert_eq!(h.heartbeat(&b, 1), Err(ResponseError::RebalanceInProgress));
    assert!(h
        .coord
        .validate_offset_commit(h.now, G, &b, None, 1)
        .is_ok());
    h.join_pending(coop(&a));
    let rb = h.join_done(coop(&b));
    assert_eq!(rb.generation_id, 2);
    h.take_join(&a);
    h.take_join(&c);
    h.sync(sync_req(&b, 2, &[]));
    h.sync(sync_req(&c, 2, &[]));
    h.sync_done(sync_req(&a, 2, &[(&a, "p0"), (&b, ""), (&c, "")]));
    assert_eq!(h.take_sync(&c).assignment, &b""[..]);
    h.take_sync(&b);

    // Round two: a revoked p1 and rejoins at once to hand it to c.
    h.join_pending(coop(&a));
    h.join_pending(coop(&b));
    let rc = h.join_done(coop(&c));
    assert_eq!(rc.generation_id, 3);
    h.take_join(&a);
    h.take_join(&b);
    h.sync(sync_req(&b, 3, &[]));
    h.sync(sync_req(&c, 3, &[]));
    h.sync_done(sync_req(&a, 3, &[(&a, "p0"), (&b, ""), (&c, "p1")]));
    assert_eq!(h.take_sync(&c).assignment, &b"p1"[..]);
    assert_eq!(h.group().state(), GroupState::Stable);
}

#[test]
fn protocol_selection_by_votes() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..3).map(|i| h.member_id_for(&format!("c{i}"))).collect();
    h.join_pending(with_protocols(join_req(&ids[0]), &["roundrobin", "range"]));
    h.join_pending(with_protocols(join_req(&ids[1]), &["range", "roundrobin"]));
    h.join_pending(with_protocols(join_req(&ids[2]), &["range", "roundrobin"]));
    h.advance(2 * DELAY);
    assert_eq!(h.take_join(&ids[0]).protocol_name.as_deref(), Some("range"));
}

#[test]
fn protocol_selection_only_counts_protocols_everyone_supports() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..3).map(|i| h.member_id_for(&format!("c{i}"))).collect();
    h.join_pending(with_protocols(
        join_req(&ids[0]),
        &["sticky", "roundrobin", "range"],
    ));
    h.join_pending(with_protocols(
        join_req(&ids[1]),
        &["sticky", "range", "roundrobin"],
    ));
    h.join_pending(with_protocols(join_req(&ids[2]), &["roundrobin", "range"]));
    h.advance(2 * DELAY);
    // sticky has two first-choice votes but c2 lacks it; then 2 votes to 1 for roundrobin.
    assert_eq!(
        h.take_join(&ids[0]).protocol_name.as_deref(),
        Some("roundrobin")
    );
}

#[test]
fn protocol_selection_tie_goes_to_the_earliest_member() {
    let mut h = Harness::new();
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(with_protocols(join_req(&a), &["roundrobin", "range"]));
    h.join_pending(with_protocols(join_req(&b), &["range", "roundrobin"]));
    h.advance(2 * DELAY);
    assert_eq!(h.take_join(&a).protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn inconsistent_group_protocol() {
    let mut h = Harness::new();
    let empty_type = h.join_done(JoinRequest {
        protocol_type: String::new(),
        ..join_req("")
    });
    assert_eq!(
        empty_type.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let no_protocols = h.join_done(with_protocols(join_req(""), &[]));
    assert_eq!(
        no_protocols.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );

    let (mut h, ids, _) = Harness::stable(1);
    let other_type = h.join_done(JoinRequest {
        protocol_type: "connect".to_owned(),
        ..join_req("")
    });
    assert_eq!(
        other_type.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(other_type.member_id, "");
    let no_common = h.join_done(with_protocols(join_req(""), &["sticky"]));
    assert_eq!(
        no_common.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let member_switching = h.join_done(with_protocols(join_req(&ids[0]), &["sticky"]));
    assert_eq!(
        member_switching.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(member_switching.member_id, ids[0]);
    assert_eq!(h.group().state(), GroupState::Stable);
}

#[test]
fn invalid_session_timeout_creates_no_group() {
    let mut h = Harness::new();
    for timeout in [5_999, 1_800_001] {
        let resp = h.join_done(JoinRequest {
            session_timeout_ms: timeout,
            ..join_req("")
        });
        assert_eq!(resp.error_code, code(ResponseError::InvalidSessionTimeout));
    }
    assert!(h.coord.group(G).is_none());
    let direct = Group::new(G, GroupConfig::default()).join(
        T0,
        JoinRequest {
            session_timeout_ms: 1,
            ..join_req("")
        },
    );
    assert!(
        matches!(direct.0, JoinOutcome::Done(r) if r.error_code == code(ResponseError::InvalidSessionTimeout))
    );
}

#[test]
fn unknown_member_of_unknown_group_and_invalid_group_id() {
    let mut h = Harness::new();
    assert_eq!(
        h.join_done(join_req("ghost")).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert!(h.coord.group(G).is_none());
    let (outcome, _) = h.coord.join(T0, "", join_req(""));
    assert!(
        matches!(outcome, JoinOutcome::Done(r) if r.error_code == code(ResponseError::InvalidGroupId))
    );
    let (mut h, _, _) = Harness::stable(1);
    assert_eq!(
        h.join_done(join_req("ghost")).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn group_max_size() {
    let mut h = Harness::with_config(GroupConfig {
        max_size: 1,
        ..GroupConfig::default()
    });
    let a = h.member_id_for("a");
    let b = h.member_id_for("b");
    h.join_pending(join_req(&a));
    // Preparing: one member already waits, so the second is turned away.
    let resp = h.join_done(join_req(&b));
    assert_eq!(resp.error_code, code(ResponseError::GroupMaxSizeReached));
    assert_eq!(resp.member_id, "");
    // The refused pending id is gone, so the rebalance is not held up by it.
    h.advance(DELAY);
    assert_eq!(h.take_join(&a).generation_id, 1);
}
