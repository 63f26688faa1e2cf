//! OffsetCommit, OffsetFetch (one group, or several from v8) and
//! OffsetDelete: validated against the group's membership as Kafka does,
//! stored in the coordinator by the group service.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, GroupId, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::groups::owns;
use super::Broker;
use crate::cluster::offsets::{CommittedOffset, GroupOffsets};
use crate::group::GroupState;

/// A partition of an OffsetCommit: what to store, or the error it gets.
type PartitionPlan = (i32, Result<CommittedOffset, ResponseError>);

pub async fn commit(
    broker: &Arc<Broker>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let img = broker.replicas.image();
    let check = match owns(broker, &group) {
        Ok(()) => {
            broker
                .groups
                .validate_commit(
                    group.clone(),
                    req.member_id.to_string(),
                    req.group_instance_id.as_ref().map(|i| i.to_string()),
                    req.generation_id_or_member_epoch,
                )
                .await
        }
        Err(e) => Err(e),
    };
    let now = crate::now_ms();
    let mut planned: Vec<(TopicName, Vec<PartitionPlan>)> = Vec::new();
    for t in &req.topics {
        let topic = img.topic(t.name.0.as_str());
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                let outcome = check.and_then(|()| {
                    if topic.and_then(|t| t.partition(p.partition_index)).is_none() {
                        return Err(ResponseError::UnknownTopicOrPartition);
                    }
                    // Kafka stores a null metadata string as "".
                    let metadata = p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default();
                    if metadata.len() > broker.config.offset_metadata_max_bytes {
                        return Err(ResponseError::OffsetMetadataTooLarge);
                    }
                    Ok(CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: Some(metadata),
                        commit_timestamp: now,
                    })
                });
                (p.partition_index, outcome)
            })
            .collect();
        planned.push((t.name.clone(), parts));
    }
    let entries: Vec<(String, i32, CommittedOffset)> = planned
        .iter()
        .flat_map(|(t, parts)| {
            parts
                .iter()
                .filter_map(|(p, o)| Some((t.0.to_string(), *p, o.as_ref().ok()?.clone())))
        })
        .collect();
    let stored = if entries.is_empty() {
        Ok(())
    } else {
        broker.groups.commit(&group, entries).await.map_err(|e| {
            tracing::warn!(group, error = %e, "offset commit not stored");
            ResponseError::CoordinatorNotAvailable
        })
    };
    let topics = planned
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, o)| {
                            let code = match (o, stored) {
                                (Err(e), _) | (Ok(_), Err(e)) => e.code(),
                                (Ok(_), Ok(())) => 0,
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One group's answer: per topic, per partition (offset, epoch, metadata,
/// error); `topics = None` means every committed partition.
type Fetched = Vec<(String, Vec<(i32, i64, i32, Option<String>, i16)>)>;

async fn fetch_group(
    broker: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, ResponseError> {
    owns(broker, group)?;
    let committed: GroupOffsets = broker.groups.fetch_all(group).await.map_err(|e| {
        tracing::warn!(group, error = %e, "offsets unavailable");
        ResponseError::CoordinatorNotAvailable
    })?;
    let wanted: Vec<(String, Vec<i32>)> = match topics {
        Some(t) => t,
        None => {
            let mut all: Vec<(String, Vec<i32>)> = Vec::new();
            for (t, p) in committed.keys() {
                match all.last_mut() {
                    Some((last, ps)) if last == t => ps.push(*p),
                    _ => all.push((t.clone(), vec![*p])),
                }
            }
            all
        }
    };
    Ok(wanted
        .into_iter()
        .map(|(t, parts)| {
            let rows = parts
                .into_iter()
                .map(|p| match committed.get(&(t.clone(), p)) {
                    Some(c) => (p, c.offset, c.leader_epoch, c.metadata.clone(), 0),
                    // Nothing committed: -1 with no error, as Kafka.
                    None => (p, -1, -1, Some(String::new()), 0),
                })
                .collect();
            (t, rows)
        })
        .collect())
}

fn name(t: String) -> TopicName {
    TopicName(StrBytes::from_string(t))
}

pub async fn fetch(
    broker: &Arc<Broker>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            match fetch_group(broker, g.group_id.0.as_str(), topics).await {
                Ok(rows) => {
                    out.topics = rows
                        .into_iter()
                        .map(|(t, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name(t))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, o, e, m, code)| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(o)
                                                .with_committed_leader_epoch(e)
                                                .with_metadata(m.map(StrBytes::from_string))
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                }
                Err(e) => out.error_code = e.code(),
            }
            groups.push(out);
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect::<Vec<_>>()
    });
    let requested = topics.clone();
    let mut resp = OffsetFetchResponse::default();
    match fetch_group(broker, req.group_id.0.as_str(), topics).await {
        Ok(rows) => {
            resp.topics = rows
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name(t))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, e, m, code)| {
                                    let mut r = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_metadata(m.map(StrBytes::from_string))
                                        .with_error_code(code);
                                    if version >= 5 {
                                        r.committed_leader_epoch = e;
                                    }
                                    r
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Err(e) if version >= 2 => resp.error_code = e.code(),
        // v1 has no top-level error: every partition carries it.
        Err(e) => {
            resp.topics = requested
                .unwrap_or_default()
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name(t))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_error_code(e.code())
                                })
                                .collect(),
                        )
                })
                .collect();
        }
    }
    resp
}

/// Topics the group's live members subscribe to (consumer protocol only).
async fn subscribed(broker: &Broker, group: &GroupId) -> BTreeSet<String> {
    let Some(summary) = broker.groups.describe(group.0.to_string()).await else {
        return BTreeSet::new();
    };
    if matches!(summary.state, GroupState::Empty | GroupState::Dead)
        || summary.protocol_type != "consumer"
    {
        return BTreeSet::new();
    }
    summary
        .members
        .iter()
        .filter_map(|m| {
            let mut b = m.metadata.clone();
            if b.remaining() < 2 {
                return None;
            }
            let v = b.get_i16();
            ConsumerProtocolSubscription::decode(&mut b, v.clamp(0, 3)).ok()
        })
        .flat_map(|s| s.topics.into_iter().map(|t| t.to_string()))
        .collect()
}

pub async fn delete(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if let Err(e) = owns(broker, &group) {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    let busy = subscribed(broker, &req.group_id).await;
    let targets: Vec<(String, i32)> = req
        .topics
        .iter()
        .filter(|t| !busy.contains(t.name.0.as_str()))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let stored = broker.groups.delete_offsets(&group, &targets).await;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let code = if busy.contains(t.name.0.as_str()) {
                ResponseError::GroupSubscribedToTopic.code()
            } else if stored.is_err() {
                ResponseError::CoordinatorNotAvailable.code()
            } else {
                0
            };
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
