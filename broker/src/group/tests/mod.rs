//! Scenario tests for the group state machine, driven through
//! `GroupCoordinatorState` with a fake clock, after Kafka's
//! `GroupCoordinatorTest`.

mod coordinator;
mod join;
mod membership;
mod prop;
mod restore;
mod statics;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{
    Completion, Group, GroupConfig, GroupCoordinatorState, JoinOutcome, JoinRequest, JoinResponse,
    LeaveMember, LeaveResult, Protocol, Response, SyncOutcome, SyncRequest, SyncResponse,
};

const G: &str = "group";
const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;
const DELAY: i64 = 3_000;
const T0: i64 = 1_700_000_000_000;

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn proto(name: &str, metadata: &[u8]) -> Protocol {
    Protocol {
        name: name.to_owned(),
        metadata: Bytes::copy_from_slice(metadata),
    }
}

/// A librdkafka-like JoinGroup v5: range and roundrobin, member id required.
fn join_req(member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        require_known_member_id: true,
        supports_skip_assignment: false,
        client_id: "rdkafka".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".to_owned(),
        protocols: vec![proto("range", b"sub-range"), proto("roundrobin", b"sub-rr")],
    }
}

fn with_protocols(mut req: JoinRequest, protocols: &[&str]) -> JoinRequest {
    req.protocols = protocols.iter().map(|p| proto(p, p.as_bytes())).collect();
    req
}

fn static_req(member_id: &str, instance_id: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance_id.to_owned()),
        ..join_req(member_id)
    }
}

fn sync_req(member_id: &str, generation_id: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        generation_id,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(id, a)| ((*id).to_owned(), Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
    }
}

fn leave_id(member_id: &str) -> LeaveMember {
    LeaveMember {
        member_id: member_id.to_owned(),
        group_instance_id: None,
    }
}

/// The coordinator, a clock, and every completion it has produced so far.
struct Harness {
    coord: GroupCoordinatorState,
    now: i64,
    completions: Vec<Completion>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(GroupConfig::default())
    }

    fn with_config(config: GroupConfig) -> Self {
        Self {
            coord: GroupCoordinatorState::new(config),
            now: T0,
            completions: Vec::new(),
        }
    }

    fn group(&self) -> &Group {
        self.coord.group(G).expect("group exists")
    }

    fn join(&mut self, req: JoinRequest) -> JoinOutcome {
        let (outcome, completions) = self.coord.join(self.now, G, req);
        self.completions.extend(completions);
        outcome
    }

    fn join_done(&mut self, req: JoinRequest) -> JoinResponse {
        match self.join(req) {
            JoinOutcome::Done(resp) => resp,
            JoinOutcome::Pending { member_id } => panic!("join of {member_id} parked"),
        }
    }

    fn join_pending(&mut self, req: JoinRequest) -> String {
        match self.join(req) {
            JoinOutcome::Pending { member_id } => member_id,
            JoinOutcome::Done(resp) => panic!("join answered at once: {resp:?}"),
        }
    }

    /// The MEMBER_ID_REQUIRED round trip: the id the member must join with.
    fn member_id_for(&mut self, client_id: &str) -> String {
        let resp = self.join_done(JoinRequest {
            client_id: client_id.to_owned(),
            ..join_req("")
        });
        assert_eq!(resp.error_code, code(ResponseError::MemberIdRequired));
        assert!(
            resp.member_id.starts_with(&format!("{client_id}-")),
            "{}",
            resp.member_id
        );
        resp.member_id
    }

    fn sync(&mut self, req: SyncRequest) -> SyncOutcome {
        let (outcome, completions) = self.coord.sync(self.now, G, req);
        self.completions.extend(completions);
        outcome
    }

    fn sync_done(&mut self, req: SyncRequest) -> SyncResponse {
        match self.sync(req) {
            SyncOutcome::Done(resp) => resp,
            SyncOutcome::Pending => panic!("sync parked"),
        }
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> Result<(), ResponseError> {
        self.coord
            .heartbeat(self.now, G, member_id, None, generation_id)
    }

    fn leave(&mut self, leaving: &[LeaveMember]) -> Vec<LeaveResult> {
        let (results, completions) = self
            .coord
            .leave(self.now, G, leaving)
            .expect("valid group id");
        self.completions.extend(completions);
        results
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        let completions = self.coord.tick(self.now);
        self.completions.extend(completions);
    }

    fn take_join(&mut self, member_id: &str) -> JoinResponse {
        match self.take(member_id, true) {
            Some(Response::Join(resp)) => resp,
            other => panic!(
                "no join completion for {member_id}: {other:?} in {:?}",
                self.completions
            ),
        }
    }

    fn take_sync(&mut self, member_id: &str) -> SyncResponse {
        match self.take(member_id, false) {
            Some(Response::Sync(resp)) => resp,
            other => panic!(
                "no sync completion for {member_id}: {other:?} in {:?}",
                self.completions
            ),
        }
    }

    fn take(&mut self, member_id: &str, join: bool) -> Option<Response> {
        let i = self.completions.iter().position(|c| {
            c.member_id == member_id
                && c.group_id == G
                && matches!(c.response, Response::Join(_)) == join
        })?;
        Some(self.completions.remove(i).response)
    }

    /// A Stable group of `n` dynamic members (the first is the leader), each
    /// assigned `"a-<member id>"`. Returns the member ids and the generation.
    fn stable(n: usize) -> (Self, Vec<String>, i32) {
        let mut h = Self::new();
        let ids: Vec<String> = (0..n).map(|i| h.member_id_for(&format!("c{i}"))).collect();
        for id in &ids {
            h.join_pending(join_req(id));
        }
        h.advance(DELAY);
        if n > 1 {
            // Later joiners extended the initial delay once.
            h.advance(DELAY);
        }
        let responses: Vec<JoinResponse> = ids.iter().map(|id| h.take_join(id)).collect();
        let generation = responses[0].generation_id;
        let assignments: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.clone(), format!("a-{id}")))
            .collect();
        let pairs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(m, a)| (m.as_str(), a.as_str()))
            .collect();
        for id in &ids[1..] {
            assert_eq!(h.sync(sync_req(id, generation, &[])), SyncOutcome::Pending);
        }
        let own = h.sync_done(sync_req(&ids[0], generation, &pairs));
        assert_eq!(own.assignment, format!("a-{}", ids[0]).as_bytes());
        for id in &ids[1..] {
            assert_eq!(h.take_sync(id).assignment, format!("a-{id}").as_bytes());
        }
        assert!(h.completions.is_empty(), "{:?}", h.completions);
        assert_eq!(h.group().state(), super::GroupState::Stable);
        (h, ids, generation)
    }
}
