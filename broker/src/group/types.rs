//! The group coordinator's vocabulary: configuration, states, and the
//! request/response data it consumes and produces (wire-independent).

use std::fmt;

use bytes::Bytes;
use kafka_protocol::ResponseError;

/// Broker-wide group settings, with Kafka's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long an Empty group's first
    /// rebalance waits for more members before answering the joiners.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size` (Kafka's default is `Int.MaxValue`, i.e. unlimited).
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: usize::MAX,
        }
    }
}

impl GroupConfig {
    /// INVALID_SESSION_TIMEOUT outside `[min, max]`, as Kafka's `handleJoinGroup`.
    pub(crate) fn check_session_timeout(
        &self,
        session_timeout_ms: i32,
    ) -> Result<(), ResponseError> {
        if (self.min_session_timeout_ms..=self.max_session_timeout_ms).contains(&session_timeout_ms)
        {
            Ok(())
        } else {
            Err(ResponseError::InvalidSessionTimeout)
        }
    }
}

/// A group's state, named as DescribeGroups and ListGroups report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    /// Only ever reported for a group that does not exist.
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One protocol a member supports (e.g. an assignor name), with its opaque
/// metadata (the subscription, for consumers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// The fields of a JoinGroup request that the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty for a member that has no id yet.
    pub member_id: String,
    /// `group.instance.id`: set for static members (JoinGroup v5+).
    pub group_instance_id: Option<String>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and
    /// an id, and must rejoin with it.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader rejoining a stable group is told to
    /// skip the assignment.
    pub supports_skip_assignment: bool,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has none: the caller passes the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The data of a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error_code: i16,
    /// -1 on errors.
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Empty on errors.
    pub leader: String,
    pub skip_assignment: bool,
    /// The id the member must use from now on (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// Only the leader gets the members (unless it must skip the assignment).
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub(crate) fn error(member_id: impl Into<String>, error: ResponseError) -> Self {
        Self {
            error_code: error.code(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// What became of a JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Answer now.
    Done(JoinResponse),
    /// Parked until the rebalance completes: a [`Completion`] for this member
    /// id carries the answer. A member that joins again while parked replaces
    /// its earlier request, which Kafka never answers.
    Pending { member_id: String },
}

/// The fields of a SyncGroup request that the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+; checked when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+; checked when present.
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The data of a SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub(crate) fn error(error: ResponseError) -> Self {
        Self {
            error_code: error.code(),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What became of a SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Done(SyncResponse),
    /// Parked until the leader's assignment arrives (or the rebalance is
    /// abandoned): a [`Completion`] for the requesting member id answers it.
    Pending,
}

/// The answer to a parked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// Deliver `response` to whoever waits on `member_id`'s parked JoinGroup
/// (for `Response::Join`) or SyncGroup (for `Response::Sync`) in `group_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub group_id: String,
    pub member_id: String,
    pub response: Response,
}

/// One member named in a LeaveGroup request: by member id, or (admin
/// removal) by instance id with an empty member id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// The per-member result of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Empty unless the group is Stable.
    pub metadata: Bytes,
    /// Empty unless the group is Stable.
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub state: GroupState,
    pub protocol_type: String,
    /// Empty unless the group is Stable.
    pub protocol: String,
    pub members: Vec<MemberSummary>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOverview {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}
