//! Consumer-group requests that Kafka refuses, over raw TCP: unknown groups and
//! members, stale generations, commits for missing partitions or with oversize
//! metadata, bad JoinGroups. Each gets Kafka 3.x's classic-coordinator answer, the
//! same connection keeps serving, and a bystander group on the same broker keeps
//! its member, generation and committed offsets.

use std::net::SocketAddr;

use integration_tests::kafka::{BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::group::{self, Committed, Member};
use integration_tests::kafka_raw::{self, err, str_bytes, KafkaConn};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse,
};

/// Long enough that no member expires while a test runs, within Kafka's default maximum.
const SESSION_MS: i32 = 300_000;

fn broker() -> KafkaBroker {
    let b = KafkaBroker::spawn(BrokerOpts::default().with("group.initial.rebalance.delay.ms", 0))
        .expect("spawn broker");
    kafka_raw::wait_registered(b.addr()).expect("broker registered");
    b
}

fn create_topic(addr: SocketAddr, topic: &str, partitions: i32) {
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, msg) =
        kafka_raw::create_topic(&mut c, topic, partitions, 1, &[]).expect("create topic");
    assert_eq!(code, err::NONE, "creating {topic}: {msg:?}");
    for p in 0..partitions {
        kafka_raw::wait_leader(addr, topic, p).expect("leader");
    }
}

/// A stable group with one member and committed offsets, checked unchanged after
/// every refused request aimed at other groups.
struct Bystander {
    member: Member,
    committed: Committed,
}

const BYSTANDER: &str = "bystander";
const BYSTANDER_TOPIC: &str = "bystander-topic";

impl Bystander {
    fn new(addr: SocketAddr) -> Self {
        create_topic(addr, BYSTANDER_TOPIC, 2);
        let mut c = KafkaConn::connect(addr).expect("connect");
        let member =
            group::join_alone(&mut c, BYSTANDER, SESSION_MS, &[(BYSTANDER_TOPIC, &[0, 1])])
                .expect("bystander joins");
        let codes = group::commit(
            &mut c,
            BYSTANDER,
            member.generation,
            &member.member_id,
            &[
                (BYSTANDER_TOPIC, 0, 3, Some("m0")),
                (BYSTANDER_TOPIC, 1, 7, None),
            ],
        )
        .expect("bystander commits");
        assert!(codes.iter().all(|(_, _, c)| *c == err::NONE), "{codes:?}");
        let committed = group::fetch(&mut c, BYSTANDER).expect("fetch");
        assert_eq!(committed.1.len(), 2, "{committed:?}");
        Bystander { member, committed }
    }

    /// The broker serves a new connection, the member is still the only one in the
    /// same generation (heartbeat accepted, no rebalance), and its offsets are as committed.
    fn check(&self, addr: SocketAddr, after: &str) {
        kafka_raw::api_versions_ok(addr)
            .unwrap_or_else(|e| panic!("ApiVersions after {after}: {e:#}"));
        let mut c = KafkaConn::connect(addr).expect("connect");
        let hb = group::heartbeat(
            &mut c,
            BYSTANDER,
            self.member.generation,
            &self.member.member_id,
        )
        .expect("heartbeat");
        assert_eq!(hb, err::NONE, "bystander heartbeat after {after}");
        let d = group::describe(&mut c, BYSTANDER).expect("describe");
        assert_eq!(
            (d.error_code, d.state.as_str(), d.members.len()),
            (err::NONE, "Stable", 1),
            "bystander after {after}: {d:?}"
        );
        assert_eq!(d.members[0].0, self.member.member_id, "after {after}");
        let committed = group::fetch(&mut c, BYSTANDER).expect("fetch");
        assert_eq!(committed, self.committed, "bystander offsets after {after}");
    }
}

#[test]
fn unknown_groups_get_kafkas_answers() {
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    let mut c = KafkaConn::connect(addr).expect("connect");

    // Kafka's classic coordinator answers UNKNOWN_MEMBER_ID for a group it does not know.
    let hb = group::heartbeat(&mut c, "ghost", 1, "nobody").expect("heartbeat");
    assert_eq!(hb, err::UNKNOWN_MEMBER_ID, "Heartbeat v3, unknown group");
    let sync = group::sync(&mut c, "ghost", 1, "nobody", None).expect("sync");
    assert_eq!(sync, err::UNKNOWN_MEMBER_ID, "SyncGroup v3, unknown group");
    let leave: LeaveGroupResponse = c
        .send(
            1,
            &LeaveGroupRequest::default()
                .with_group_id(group::group_id("ghost"))
                .with_member_id(str_bytes("nobody")),
        )
        .expect("leave");
    assert_eq!(
        leave.error_code,
        err::UNKNOWN_MEMBER_ID,
        "LeaveGroup v1, unknown group"
    );
    bystander.check(addr, "heartbeat/sync/leave of an unknown group");

    // DescribeGroups: no error, state Dead, nobody in it.
    let d = group::describe(&mut c, "ghost").expect("describe");
    assert_eq!(
        (d.error_code, d.state.as_str(), d.members.len()),
        (err::NONE, "Dead", 0),
        "DescribeGroups v5, unknown group: {d:?}"
    );
    assert_eq!((d.protocol_type.as_str(), d.protocol.as_str()), ("", ""));

    // OffsetFetch: no error and nothing committed.
    assert_eq!(
        group::fetch(&mut c, "ghost").expect("fetch"),
        (err::NONE, vec![]),
        "OffsetFetch v8, unknown group"
    );

    // A commit naming a generation for a group that does not exist comes from a
    // member of a group that is gone: Kafka refuses it with ILLEGAL_GENERATION.
    let codes = group::commit(
        &mut c,
        "ghost",
        3,
        "nobody",
        &[(BYSTANDER_TOPIC, 0, 1, None)],
    )
    .expect("commit");
    assert_eq!(
        codes,
        [(BYSTANDER_TOPIC.to_owned(), 0, err::ILLEGAL_GENERATION)],
        "OffsetCommit v8, unknown group, generation 3"
    );
    assert_eq!(group::fetch(&mut c, "ghost").expect("fetch").1, vec![]);

    let deleted: DeleteGroupsResponse = c
        .send(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group::group_id("ghost")]),
        )
        .expect("delete");
    assert_eq!(
        deleted
            .results
            .iter()
            .map(|r| (r.group_id.0.to_string(), r.error_code))
            .collect::<Vec<_>>(),
        [("ghost".to_owned(), err::GROUP_ID_NOT_FOUND)],
        "DeleteGroups v2, unknown group"
    );
    bystander.check(addr, "describe/fetch/commit/delete of an unknown group");
}

#[test]
fn stale_generations_and_unknown_members_are_refused() {
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let m = group::join_alone(&mut c, "g", SESSION_MS, &[("orders", &[0])]).expect("join");
    let ok = group::commit(
        &mut c,
        "g",
        m.generation,
        &m.member_id,
        &[("orders", 0, 5, None)],
    )
    .expect("commit");
    assert_eq!(ok, [("orders".to_owned(), 0, err::NONE)]);
    let before = group::fetch(&mut c, "g").expect("fetch");

    for generation in [m.generation - 1, m.generation + 1] {
        let hb = group::heartbeat(&mut c, "g", generation, &m.member_id).expect("heartbeat");
        assert_eq!(
            hb,
            err::ILLEGAL_GENERATION,
            "Heartbeat v3, generation {generation} of {}",
            m.generation
        );
        let codes = group::commit(
            &mut c,
            "g",
            generation,
            &m.member_id,
            &[("orders", 0, 9, None)],
        )
        .expect("commit");
        assert_eq!(
            codes,
            [("orders".to_owned(), 0, err::ILLEGAL_GENERATION)],
            "OffsetCommit v8, generation {generation} of {}",
            m.generation
        );
        let sync = group::sync(&mut c, "g", generation, &m.member_id, None).expect("sync");
        assert_eq!(
            sync,
            err::ILLEGAL_GENERATION,
            "SyncGroup v3, generation {generation} of {}",
            m.generation
        );
    }

    let hb = group::heartbeat(&mut c, "g", m.generation, "nobody").expect("heartbeat");
    assert_eq!(hb, err::UNKNOWN_MEMBER_ID, "Heartbeat v3, unknown member");
    let codes = group::commit(
        &mut c,
        "g",
        m.generation,
        "nobody",
        &[("orders", 0, 9, None)],
    )
    .expect("commit");
    assert_eq!(
        codes,
        [("orders".to_owned(), 0, err::UNKNOWN_MEMBER_ID)],
        "OffsetCommit v8, unknown member"
    );
    // An admin commit (generation -1, no member) is only for a group without members.
    let codes =
        group::commit(&mut c, "g", -1, "", &[("orders", 0, 9, None)]).expect("admin commit");
    assert_eq!(
        codes,
        [("orders".to_owned(), 0, err::UNKNOWN_MEMBER_ID)],
        "OffsetCommit v8, generation -1 on a Stable group"
    );

    // The real member was neither removed nor made to rebalance, and nothing was stored.
    let hb = group::heartbeat(&mut c, "g", m.generation, &m.member_id).expect("heartbeat");
    assert_eq!(
        hb,
        err::NONE,
        "the member's own heartbeat after the refusals"
    );
    assert_eq!(group::fetch(&mut c, "g").expect("fetch"), before);
    bystander.check(addr, "stale generations and unknown members");
}

/// Per-partition answers in (topic, partition) order: Kafka groups them by topic.
fn sorted(mut codes: Vec<(String, i32, i16)>) -> Vec<(String, i32, i16)> {
    codes.sort();
    codes
}

#[test]
fn commit_errors_are_per_partition_and_the_rest_is_stored() {
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    create_topic(addr, "orders", 2);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let big = "x".repeat(4097);
    let limit = "y".repeat(4096);
    // An empty group committing as an admin (generation -1), as tools do.
    let codes = group::commit(
        &mut c,
        "offsets-only",
        -1,
        "",
        &[
            ("orders", 0, 10, Some("ok")),
            ("orders", 5, 1, None),
            ("no-such-topic", 0, 1, None),
            ("orders", 1, 4, Some(&big)),
        ],
    )
    .expect("commit");
    assert_eq!(
        sorted(codes),
        [
            (
                "no-such-topic".to_owned(),
                0,
                err::UNKNOWN_TOPIC_OR_PARTITION
            ),
            ("orders".to_owned(), 0, err::NONE),
            ("orders".to_owned(), 1, err::OFFSET_METADATA_TOO_LARGE),
            ("orders".to_owned(), 5, err::UNKNOWN_TOPIC_OR_PARTITION),
        ],
        "OffsetCommit v8 with a missing partition, a missing topic and 4097 bytes of metadata"
    );
    assert_eq!(
        group::fetch(&mut c, "offsets-only").expect("fetch"),
        (
            err::NONE,
            vec![("orders".to_owned(), 0, 10, Some("ok".to_owned()))]
        ),
        "only the valid partition is stored"
    );
    // offset.metadata.max.bytes is inclusive.
    let codes = group::commit(
        &mut c,
        "offsets-only",
        -1,
        "",
        &[("orders", 1, 4, Some(&limit))],
    )
    .expect("commit");
    assert_eq!(codes, [("orders".to_owned(), 1, err::NONE)]);
    let (_, rows) = group::fetch(&mut c, "offsets-only").expect("fetch");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].3.as_deref(), Some(limit.as_str()));

    // The same refusals for a live member's commit.
    let m = group::join_alone(&mut c, "live", SESSION_MS, &[("orders", &[0, 1])]).expect("join");
    let codes = group::commit(
        &mut c,
        "live",
        m.generation,
        &m.member_id,
        &[
            ("orders", 1, 2, Some(&big)),
            ("orders", 9, 2, None),
            ("orders", 0, 2, Some("m")),
        ],
    )
    .expect("commit");
    assert_eq!(
        sorted(codes),
        [
            ("orders".to_owned(), 0, err::NONE),
            ("orders".to_owned(), 1, err::OFFSET_METADATA_TOO_LARGE),
            ("orders".to_owned(), 9, err::UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(
        group::fetch(&mut c, "live").expect("fetch").1,
        vec![("orders".to_owned(), 0, 2, Some("m".to_owned()))]
    );
    bystander.check(addr, "partially refused commits");
}

#[test]
fn bad_join_groups_are_refused() {
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let join = |c: &mut KafkaConn, version: i16, req| -> JoinGroupResponse {
        c.send(version, &req).expect("join")
    };

    // Outside [group.min.session.timeout.ms, group.max.session.timeout.ms] = [6000, 1800000].
    for timeout in [0, 5_999, 1_800_001] {
        let r = join(
            &mut c,
            5,
            group::join_request("new", "", timeout, "consumer", &["orders"]).expect("request"),
        );
        assert_eq!(
            r.error_code,
            err::INVALID_SESSION_TIMEOUT,
            "JoinGroup v5, session timeout {timeout}"
        );
    }
    let d = group::describe(&mut c, "new").expect("describe");
    assert_eq!(d.state, "Dead", "a refused join creates no group: {d:?}");
    bystander.check(addr, "invalid session timeouts");

    // v4+: an empty member id gets MEMBER_ID_REQUIRED and an id to join with.
    let first = join(
        &mut c,
        4,
        group::join_request("new", "", 6_000, "consumer", &["orders"]).expect("request"),
    );
    assert_eq!(
        first.error_code,
        err::MEMBER_ID_REQUIRED,
        "JoinGroup v4, no id"
    );
    assert!(!first.member_id.is_empty(), "{first:?}");
    let second = join(
        &mut c,
        4,
        group::join_request("new", &first.member_id, SESSION_MS, "consumer", &["orders"])
            .expect("request"),
    );
    assert_eq!(
        second.error_code,
        err::NONE,
        "JoinGroup v4 with the id: {second:?}"
    );
    assert_eq!(second.member_id, first.member_id);
    assert_eq!(second.leader, first.member_id);
    // Before v4 the broker assigns the id at once.
    let old = join(
        &mut c,
        3,
        group::join_request("old", "", SESSION_MS, "consumer", &["orders"]).expect("request"),
    );
    assert_eq!(old.error_code, err::NONE, "JoinGroup v3, no id: {old:?}");
    assert!(!old.member_id.is_empty());

    // A live consumer group refuses members of another protocol type, of no common
    // protocol, or of none at all, without disturbing its member.
    let m = group::join_alone(&mut c, "mixed", SESSION_MS, &[("orders", &[0])]).expect("join");
    let connect =
        group::join_request("mixed", "", SESSION_MS, "connect", &["orders"]).expect("request");
    let mut other_protocol =
        group::join_request("mixed", "", SESSION_MS, "consumer", &["orders"]).expect("request");
    other_protocol.protocols[0].name = str_bytes("roundrobin");
    let mut no_protocols =
        group::join_request("mixed", "", SESSION_MS, "consumer", &["orders"]).expect("request");
    no_protocols.protocols.clear();
    for (what, req) in [
        ("protocol type connect", connect),
        ("protocol roundrobin only", other_protocol),
        ("no protocols", no_protocols),
    ] {
        // v3, so the refusal is not hidden behind MEMBER_ID_REQUIRED.
        let r = join(&mut c, 3, req);
        assert_eq!(
            r.error_code,
            err::INCONSISTENT_GROUP_PROTOCOL,
            "JoinGroup v3 to a consumer group, {what}: {r:?}"
        );
        let hb = group::heartbeat(&mut c, "mixed", m.generation, &m.member_id).expect("hb");
        assert_eq!(hb, err::NONE, "the member's heartbeat after {what}");
    }
    // A brand-new group needs a protocol type and at least one protocol.
    let mut untyped =
        group::join_request("untyped", "", SESSION_MS, "", &["orders"]).expect("request");
    let r = join(&mut c, 3, untyped.clone());
    assert_eq!(
        r.error_code,
        err::INCONSISTENT_GROUP_PROTOCOL,
        "empty protocol type"
    );
    untyped.protocol_type = str_bytes("consumer");
    untyped.protocols.clear();
    let r = join(&mut c, 3, untyped);
    assert_eq!(
        r.error_code,
        err::INCONSISTENT_GROUP_PROTOCOL,
        "no protocols"
    );
    let d = group::describe(&mut c, "mixed").expect("describe");
    assert_eq!((d.state.as_str(), d.members.len()), ("Stable", 1), "{d:?}");
    bystander.check(addr, "refused JoinGroups");
}

#[test]
fn null_commit_metadata_reads_back_empty() {
    // Kafka stores a null `committed_metadata` as "" (OffsetAndMetadata.NoMetadata),
    // so OffsetFetch never answers null for a committed partition.
    let b = broker();
    let addr = b.addr();
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let codes = group::commit(&mut c, "g", -1, "", &[("orders", 0, 2, None)]).expect("commit");
    assert_eq!(codes, [("orders".to_owned(), 0, err::NONE)]);
    assert_eq!(
        group::fetch(&mut c, "g").expect("fetch").1,
        vec![("orders".to_owned(), 0, 2, Some(String::new()))],
        "OffsetFetch v8 after OffsetCommit v8 with null metadata"
    );
}

#[test]
fn commits_wait_for_the_assignment() {
    // Between JoinGroup and SyncGroup the group is CompletingRebalance: heartbeats
    // are fine, commits get REBALANCE_IN_PROGRESS (Kafka 3.x `doCommitOffsets`).
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let joined: JoinGroupResponse = c
        .send(
            3,
            &group::join_request("g", "", SESSION_MS, "consumer", &["orders"]).expect("request"),
        )
        .expect("join");
    assert_eq!(joined.error_code, err::NONE, "{joined:?}");
    let (member, generation) = (joined.member_id.to_string(), joined.generation_id);
    let d = group::describe(&mut c, "g").expect("describe");
    assert_eq!(d.state, "CompletingRebalance", "{d:?}");
    let hb = group::heartbeat(&mut c, "g", generation, &member).expect("heartbeat");
    assert_eq!(hb, err::NONE, "Heartbeat v3 while CompletingRebalance");
    let codes =
        group::commit(&mut c, "g", generation, &member, &[("orders", 0, 1, None)]).expect("commit");
    assert_eq!(
        codes,
        [("orders".to_owned(), 0, err::REBALANCE_IN_PROGRESS)],
        "OffsetCommit v8 while CompletingRebalance"
    );
    let code = group::sync(
        &mut c,
        "g",
        generation,
        &member,
        Some(group::assignment(&[("orders", &[0])]).expect("assignment")),
    )
    .expect("sync");
    assert_eq!(code, err::NONE);
    let codes =
        group::commit(&mut c, "g", generation, &member, &[("orders", 0, 1, None)]).expect("commit");
    assert_eq!(codes, [("orders".to_owned(), 0, err::NONE)]);
    bystander.check(addr, "a commit before SyncGroup");
}

#[test]
fn an_empty_group_id_is_refused_by_membership_apis() {
    // Kafka's `isValidGroupId`: "" is refused by the membership APIs, but the
    // offset APIs (pre-0.9 consumers commit without a group) and DescribeGroups and
    // DeleteGroups (to view and remove such state) accept it.
    let b = broker();
    let addr = b.addr();
    let bystander = Bystander::new(addr);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let joined: JoinGroupResponse = c
        .send(
            5,
            &group::join_request("", "", SESSION_MS, "consumer", &["orders"]).expect("request"),
        )
        .expect("join");
    assert_eq!(
        joined.error_code,
        err::INVALID_GROUP_ID,
        "JoinGroup v5, group \"\""
    );
    let hb = group::heartbeat(&mut c, "", 1, "m").expect("heartbeat");
    assert_eq!(hb, err::INVALID_GROUP_ID, "Heartbeat v3, group \"\"");
    let sync = group::sync(&mut c, "", 1, "m", None).expect("sync");
    assert_eq!(sync, err::INVALID_GROUP_ID, "SyncGroup v3, group \"\"");
    let d = group::describe(&mut c, "").expect("describe");
    assert_eq!(
        (d.error_code, d.state.as_str()),
        (err::NONE, "Dead"),
        "DescribeGroups v5, group \"\""
    );
    let deleted: DeleteGroupsResponse = c
        .send(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group::group_id("")]),
        )
        .expect("delete");
    assert_eq!(
        deleted.results.first().map(|r| r.error_code),
        Some(err::GROUP_ID_NOT_FOUND),
        "DeleteGroups v2, group \"\""
    );
    bystander.check(addr, "an empty group id");
}

#[test]
fn an_empty_group_id_still_commits_offsets() {
    // Kafka keeps the offset APIs open to group "" for consumers that manage
    // their own partitions (`isValidGroupId` allows it for OffsetCommit/Fetch).
    let b = broker();
    let addr = b.addr();
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let codes = group::commit(&mut c, "", -1, "", &[("orders", 0, 3, Some("m"))]).expect("commit");
    assert_eq!(
        codes,
        [("orders".to_owned(), 0, err::NONE)],
        "OffsetCommit v8, group \"\""
    );
    assert_eq!(
        group::fetch(&mut c, "").expect("fetch"),
        (
            err::NONE,
            vec![("orders".to_owned(), 0, 3, Some("m".to_owned()))]
        ),
        "OffsetFetch v8, group \"\""
    );
}

#[test]
fn group_ids_with_slashes_are_their_own_groups() {
    // Kafka puts no limit on a group id's characters: "a/b" is a group like any
    // other, and deleting group "a" leaves it alone.
    let b = broker();
    let addr = b.addr();
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    for (g, offset) in [("a", 1), ("a/b", 2)] {
        let codes =
            group::commit(&mut c, g, -1, "", &[("orders", 0, offset, None)]).expect("commit");
        assert_eq!(
            codes,
            [("orders".to_owned(), 0, err::NONE)],
            "OffsetCommit v8, group {g:?}"
        );
    }
    let deleted: DeleteGroupsResponse = c
        .send(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group::group_id("a")]),
        )
        .expect("delete");
    assert_eq!(
        deleted.results.first().map(|r| r.error_code),
        Some(err::NONE)
    );
    let (code, rows) = group::fetch(&mut c, "a/b").expect("fetch");
    assert_eq!(
        (code, rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        (err::NONE, vec![2]),
        "OffsetFetch v8, group \"a/b\", after deleting group \"a\""
    );
}

#[test]
fn dot_dot_is_a_group_id_like_any_other() {
    let b = broker();
    let addr = b.addr();
    create_topic(addr, "orders", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");
    for g in [".", ".."] {
        let codes = group::commit(&mut c, g, -1, "", &[("orders", 0, 3, None)]).expect("commit");
        assert_eq!(
            codes,
            [("orders".to_owned(), 0, err::NONE)],
            "OffsetCommit v8, group {g:?}"
        );
    }
}
