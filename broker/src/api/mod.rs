//! Request handlers, one module per Kafka API, and the table of versions
//! this broker advertises. Every advertised version is one the handlers
//! fill correctly; a request outside the table closes the connection, as
//! Kafka does.

pub mod api_versions;
mod configs;
mod context;
mod describe_cluster;
mod fetch;
mod find_coordinator;
mod group_admin;
mod groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod offsets;
mod produce;
pub mod produce_legacy;
mod topics;

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;

use crate::replication::Replica;

pub use context::{Broker, RequestContext};

/// The partition's replica here if this broker leads it, else the error a
/// client gets: UNKNOWN_TOPIC_OR_PARTITION for a partition the image does
/// not have, NOT_LEADER_OR_FOLLOWER for one led elsewhere (or not open
/// here yet), and, when the client names the leader epoch it knows
/// (`known_leader_epoch` >= 0), FENCED_LEADER_EPOCH if it is behind ours or
/// UNKNOWN_LEADER_EPOCH if it is ahead.
pub(crate) fn leader_replica(
    broker: &Broker,
    topic: &str,
    partition: i32,
    known_leader_epoch: i32,
) -> Result<Arc<Replica>, ResponseError> {
    let Some(replica) = broker.replicas.get(topic, partition) else {
        let known = broker
            .replicas
            .image()
            .topic(topic)
            .is_some_and(|t| t.partition(partition).is_some());
        return Err(if known {
            ResponseError::NotLeaderOrFollower
        } else {
            ResponseError::UnknownTopicOrPartition
        });
    };
    if known_leader_epoch >= 0 {
        let ours = replica.leader_epoch();
        if known_leader_epoch < ours {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if known_leader_epoch > ours {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
    }
    if !replica.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    Ok(replica)
}

/// (API, min, max) advertised in ApiVersions.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
];

pub fn supports(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(k, min, max)| k == api && (min..=max).contains(&version))
}

/// Handles one decoded request; `None` means no answer is sent.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: RequestKind,
) -> Option<ResponseKind> {
    let v = header.request_api_version;
    Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle(v)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(broker, ctx, r, v).await)
        }
        RequestKind::Produce(r) => {
            return produce::handle(broker, r, v)
                .await
                .map(ResponseKind::Produce)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(broker, r, v).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(broker, r, v))
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(broker, r).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(topics::create(broker, r, v).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(topics::delete(broker, r, v).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(topics::create_partitions(broker, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(broker, r, v))
        }
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(configs::alter(broker, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(broker, r).await)
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(broker, ctx, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(broker, ctx, r, v))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join(broker, ctx, header, r, v).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(broker, r, v).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(broker, r).await),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(broker, r, v).await),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offsets::commit(broker, r, v).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offsets::fetch(broker, r, v).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offsets::delete(broker, r).await)
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(group_admin::describe(broker, r, v).await)
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(group_admin::list(broker, r, v).await)
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(group_admin::delete(broker, r).await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, r))
        }
        other => {
            // Unreachable through `supports`, kept total for the compiler.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request without a handler");
            return None;
        }
    })
}

/// Kafka's `Topic.validate`: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.`/`..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_versions_are_within_the_codec() {
        for &(api, min, max) in SUPPORTED {
            // Produce v0-v2 are decoded by hand in `produce_legacy`.
            let min = if api == ApiKey::Produce {
                min.max(3)
            } else {
                min
            };
            let r = api.valid_versions();
            assert!(
                r.min <= min && max <= r.max,
                "{api:?} {min}..{max} vs {r:?}"
            );
        }
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("users.notification"));
        assert!(valid_topic_name("a-b_c.1"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("bad name"));
        assert!(!valid_topic_name("slash/y"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
