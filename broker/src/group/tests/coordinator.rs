//! OffsetCommit validation in every state, DescribeGroups, ListGroups,
//! DeleteGroups and deadlines across groups.

use super::*;
use crate::group::GroupState;

fn commit(h: &mut Harness, member_id: &str, generation_id: i32) -> Result<(), ResponseError> {
    h.coord
        .validate_offset_commit(h.now, G, member_id, None, generation_id)
}

#[test]
fn simple_commits_to_unknown_and_empty_groups() {
    let mut h = Harness::new();
    assert_eq!(commit(&mut h, "", 5), Err(ResponseError::IllegalGeneration));
    assert!(h.coord.group(G).is_none());
    assert_eq!(commit(&mut h, "", -1), Ok(()));
    assert_eq!(
        h.group().state(),
        GroupState::Empty,
        "created, as Kafka does"
    );
    assert_eq!(h.coord.list::<&str>(&[])[0].protocol_type, "");
    assert_eq!(commit(&mut h, "", -1), Ok(()));
    assert_eq!(
        commit(&mut h, "someone", 0),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(commit(&mut h, "", 0), Err(ResponseError::UnknownMemberId));
    assert_eq!(
        h.coord.validate_offset_commit(h.now, "", "", None, -1),
        Ok(()),
        "the empty group id is allowed for commits"
    );
}

#[test]
fn commits_in_a_stable_group() {
    let (mut h, ids, generation) = Harness::stable(2);
    assert_eq!(commit(&mut h, &ids[1], generation), Ok(()));
    assert_eq!(
        commit(&mut h, &ids[1], generation + 1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut h, &ids[1], -1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut h, "ghost", generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        commit(&mut h, "", -1),
        Err(ResponseError::UnknownMemberId),
        "members only"
    );
    assert_eq!(
        h.coord
            .validate_offset_commit(h.now, G, &ids[1], Some("i"), generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_commit_refreshes_the_session() {
    let (mut h, ids, generation) = Harness::stable(1);
    h.advance(i64::from(SESSION) - 1);
    assert_eq!(commit(&mut h, &ids[0], generation), Ok(()));
    h.advance(i64::from(SESSION) - 1);
    assert_eq!(h.group().state(), GroupState::Stable);
    h.advance(1);
    assert_eq!(h.group().state(), GroupState::Empty);
}

#[test]
fn commits_while_rebalancing() {
    let (mut h, ids, generation) = Harness::stable(2);
    h.join_pending(join_req(&ids[0]));
    assert_eq!(h.group().state(), GroupState::PreparingRebalance);
    assert_eq!(
        commit(&mut h, &ids[1], generation),
        Ok(()),
        "still allowed while preparing"
    );
    let resp = h.join_done(join_req(&ids[1]));
    assert_eq!(h.group().state(), GroupState::CompletingRebalance);
    assert_eq!(
        commit(&mut h, &ids[1], resp.generation_id),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        commit(&mut h, &ids[1], generation),
        Err(ResponseError::IllegalGeneration)
    );
}

#[test]
fn describe_in_each_state() {
    let mut h = Harness::new();
    let dead = h.coord.describe(G);
    assert_eq!(
        (dead.state, dead.protocol_type.as_str(), dead.members.len()),
        (GroupState::Dead, "", 0)
    );

    let a = h.member_id_for("a");
    h.join_pending(join_req(&a));
    let preparing = h.coord.describe(G);
    assert_eq!(preparing.state, GroupState::PreparingRebalance);
    assert_eq!(preparing.protocol_type, "consumer");
    assert_eq!(preparing.protocol, "");
    assert_eq!(
        preparing.members[0].client_id, "rdkafka",
        "from the join that added it"
    );
    assert_eq!(preparing.members[0].client_host, "/127.0.0.1");
    assert!(preparing.members[0].metadata.is_empty());

    h.advance(DELAY);
    assert_eq!(h.coord.describe(G).state, GroupState::CompletingRebalance);
    assert_eq!(h.coord.describe(G).protocol, "");
    h.sync_done(sync_req(&a, 1, &[(&a, "pa")]));
    let stable = h.coord.describe(G);
    assert_eq!(
        (stable.state, stable.protocol.as_str()),
        (GroupState::Stable, "range")
    );
    assert_eq!(stable.members[0].metadata, &b"sub-range"[..]);
    assert_eq!(stable.members[0].assignment, &b"pa"[..]);
    assert_eq!(stable.members[0].member_id, a);
}

#[test]
fn list_groups_with_state_filter() {
    let (mut h, _, _) = Harness::stable(1);
    assert_eq!(
        h.coord
            .validate_offset_commit(h.now, "simple", "", None, -1),
        Ok(())
    );
    let all = h.coord.list::<&str>(&[]);
    let names: Vec<(&str, GroupState)> =
        all.iter().map(|g| (g.group_id.as_str(), g.state)).collect();
    assert_eq!(
        names,
        [(G, GroupState::Stable), ("simple", GroupState::Empty)]
    );
    assert_eq!(all[0].protocol_type, "consumer");
    let stable = h.coord.list(&["Stable"]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_id, G);
    assert_eq!(h.coord.list(&["Stable", "Empty"]).len(), 2);
    assert!(h.coord.list(&["Bogus"]).is_empty());
    assert!(h.coord.list(&["Dead"]).is_empty());
}

#[test]
fn delete_groups() {
    let (mut h, ids, _) = Harness::stable(1);
    assert_eq!(h.coord.delete("nope"), Err(ResponseError::GroupIdNotFound));
    assert_eq!(h.coord.delete(G), Err(ResponseError::NonEmptyGroup));
    h.leave(&[leave_id(&ids[0])]);
    assert_eq!(h.coord.delete(G), Ok(()));
    assert_eq!(h.coord.describe(G).state, GroupState::Dead);
    assert_eq!(h.coord.delete(G), Err(ResponseError::GroupIdNotFound));
}

#[test]
fn next_deadline_tracks_the_earliest_timer() {
    let mut h = Harness::new();
    assert_eq!(h.coord.next_deadline(), None);
    let a = h.member_id_for("a");
    h.join_pending(join_req(&a));
    assert_eq!(
        h.coord.next_deadline(),
        Some(T0 + DELAY),
        "the initial delay"
    );
    h.advance(DELAY);
    h.take_join(&a);
    // Sync deadline (rebalance timeout) and session deadline: the session is earlier.
    assert_eq!(h.coord.next_deadline(), Some(h.now + i64::from(SESSION)));
    h.coord.tick(h.now + 1);
    assert_eq!(
        h.coord.next_deadline(),
        Some(h.now + i64::from(SESSION)),
        "nothing fired early"
    );
}

#[test]
fn group_state_names() {
    let names: Vec<String> = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        names,
        [
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead"
        ]
    );
}
