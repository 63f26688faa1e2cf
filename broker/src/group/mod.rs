//! Consumer groups (Kafka's classic JoinGroup/SyncGroup protocol) as a pure
//! state machine: requests in, responses and delayed completions out, time
//! passed in as milliseconds. The network layer owns the waiting requests.
//!
//! Mirrors Kafka 3.x `GroupCoordinator`/`GroupMetadata`/`MemberMetadata`:
//! a JoinGroup or SyncGroup may be parked (`Pending`) and answered later by a
//! [`Completion`] returned from another call or from [`GroupCoordinatorState::tick`].
//! What a coordinator persists of a group is a [`GroupSnapshot`], asked for
//! where Kafka calls `storeGroup` and restored with [`Group::restore`] by
//! the broker that takes the group over; `service` does the I/O.

mod coordinator;
mod join;
mod member;
mod offset_cache;
mod persist;
mod rebalance;
mod requests;
mod service;
mod snapshot;
mod state;
mod task;
mod types;
mod znode;

#[cfg(test)]
mod tests;

pub use coordinator::GroupCoordinatorState;
pub use service::{coordinator_for, GroupService};
pub use snapshot::{GroupSnapshot, MemberSnapshot};
pub use state::{Group, NEW_MEMBER_JOIN_TIMEOUT_MS};
pub use types::{
    Completion, GroupConfig, GroupOverview, GroupState, GroupSummary, JoinMember, JoinOutcome,
    JoinRequest, JoinResponse, LeaveMember, LeaveResult, MemberSummary, Protocol, Response,
    SyncOutcome, SyncRequest, SyncResponse,
};
