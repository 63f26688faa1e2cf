//! Consumer-group administration, as Kafka's admin client does it: FindCoordinator to
//! locate the group, then ListGroups, DescribeGroups, OffsetFetch, OffsetCommit and
//! DeleteGroups on the coordinating broker.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Message, StrBytes};

use super::cluster::Client;
use super::connection::Connection;
use super::error::{check, ClientError};

/// FindCoordinator `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;

/// `(topic, partition)`; ordered so tables come out sorted.
pub type TopicPartition = (String, i32);

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// Empty when the broker answers ListGroups older than v4, which has no state.
    pub state: String,
    pub protocol_type: String,
}

/// A member as DescribeGroups reports it, with its assignment decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// The partitions assigned to this member (empty while unassigned, or when the
    /// group does not use the consumer protocol).
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// `Stable`, `Empty`, `Dead`, `PreparingRebalance`, ...
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor, e.g. `range`.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    /// The broker id coordinating the group.
    pub coordinator: i32,
}

/// Decodes a consumer-protocol assignment: a 2-byte version, then the
/// `ConsumerProtocolAssignment` of that version. Empty bytes mean "nothing assigned"
/// (a member between JoinGroup and SyncGroup).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>, ClientError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Err(bad_assignment("shorter than its version"));
    }
    // Like Kafka's ConsumerProtocol, a newer version is read as the newest we know: later
    // versions only add fields at the end.
    let version = buf.get_i16().min(ConsumerProtocolAssignment::VERSIONS.max);
    if version < 0 {
        return Err(bad_assignment("negative version"));
    }
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| bad_assignment(&e.to_string()))?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
        .collect();
    partitions.sort();
    Ok(partitions)
}

fn bad_assignment(why: &str) -> ClientError {
    ClientError::Records {
        source: format!("malformed consumer assignment: {why}").into(),
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

impl Client {
    /// The broker id coordinating `group`, from FindCoordinator; its address is learnt too.
    pub async fn find_coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        let conn = self.any();
        let version = conn.version::<FindCoordinatorRequest>(0..=4)?;
        let request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
        // v4 batches keys in `coordinator_keys`; older versions take one `key`.
        let request = if version >= 4 {
            request.with_coordinator_keys(vec![StrBytes::from_string(group.to_owned())])
        } else {
            request.with_key(StrBytes::from_string(group.to_owned()))
        };
        let response = conn.send(version, &request).await?;
        let context = || format!("find coordinator of group {group}");
        let (node, host, port) = if version >= 4 {
            let c = response
                .coordinators
                .iter()
                .find(|c| c.key.as_str() == group)
                .ok_or_else(|| ClientError::MissingEntry(format!("group {group}")))?;
            check(c.error_code, context, c.error_message.as_deref())?;
            (c.node_id.0, c.host.to_string(), c.port)
        } else {
            check(
                response.error_code,
                context,
                response.error_message.as_deref(),
            )?;
            (response.node_id.0, response.host.to_string(), response.port)
        };
        self.learn_broker(node, format!("{host}:{port}"));
        Ok(node)
    }

    /// The connection to `group`'s coordinator, located afresh.
    async fn coordinator(&mut self, group: &str) -> Result<(i32, &mut Connection), ClientError> {
        let node = self.find_coordinator(group).await?;
        Ok((node, self.broker(node).await?))
    }

    /// Every group known to any broker, sorted by id (Kafka's admin client asks them all).
    pub async fn list_groups(&mut self) -> Result<Vec<GroupListing>, ClientError> {
        let ids = self.broker_ids();
        let mut groups = BTreeMap::new();
        for id in ids {
            let conn = self.broker(id).await?;
            let version = conn.version::<ListGroupsRequest>(0..=4)?;
            let response = conn.send(version, &ListGroupsRequest::default()).await?;
            check(
                response.error_code,
                || format!("list groups on broker {id}"),
                None,
            )?;
            for g in response.groups {
                let listing = GroupListing {
                    group_id: g.group_id.0.to_string(),
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                };
                groups.insert(listing.group_id.clone(), listing);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Members, assignments and state of `group`. A group that does not exist is
    /// described as `Dead` with no members, as Kafka answers.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        let (coordinator, conn) = self.coordinator(group).await?;
        let version = conn.version::<DescribeGroupsRequest>(0..=5)?;
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response = conn.send(version, &request).await?;
        let g = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| ClientError::MissingEntry(format!("group {group}")))?;
        check(
            g.error_code,
            || format!("describe group {group}"),
            g.error_message.as_deref(),
        )?;
        let consumer = g.protocol_type.as_str() == "consumer";
        let members = g
            .members
            .into_iter()
            .map(|m| {
                let assignment = if consumer {
                    decode_assignment(&m.member_assignment)?
                } else {
                    Vec::new()
                };
                Ok(MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                })
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            coordinator,
        })
    }

    /// Every committed offset of `group` (partitions with nothing committed are left out).
    pub async fn committed_offsets(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let (_, conn) = self.coordinator(group).await?;
        // v2 is the first where `topics = null` means every committed partition.
        let version = conn.version::<OffsetFetchRequest>(2..=8)?;
        let context = || format!("fetch offsets of group {group}");
        let mut committed = BTreeMap::new();
        let mut keep = |topic: &TopicName, partition: i32, offset: i64, code: i16| {
            check(code, context, None)?;
            if offset >= 0 {
                committed.insert((topic.0.to_string(), partition), offset);
            }
            Ok::<_, ClientError>(())
        };
        // v8 asks for several groups at once in `groups`; older versions name one group.
        if version >= 8 {
            let request =
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(None)]);
            let response = conn.send(version, &request).await?;
            let g = response
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| ClientError::MissingEntry(format!("group {group}")))?;
            check(g.error_code, context, None)?;
            for t in &g.topics {
                for p in &t.partitions {
                    keep(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        } else {
            let request = OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None);
            let response = conn.send(version, &request).await?;
            check(response.error_code, context, None)?;
            for t in &response.topics {
                for p in &t.partitions {
                    keep(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        }
        Ok(committed)
    }

    /// Commits `offsets` for `group` as an admin does: generation -1 and no member id,
    /// which the coordinator accepts only while the group has no members.
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            by_topic.entry(topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let (_, conn) = self.coordinator(group).await?;
        // v2 is kafka-protocol's floor; v8 the last that names topics without ids.
        let version = conn.version::<OffsetCommitRequest>(2..=8)?;
        let response = conn.send(version, &request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    || format!("commit offset of {}-{}", t.name.0, p.partition_index),
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// Deletes `group` and its committed offsets; the coordinator refuses a group
    /// with members (NON_EMPTY_GROUP).
    pub async fn delete_group(&mut self, group: &str) -> Result<(), ClientError> {
        let (_, conn) = self.coordinator(group).await?;
        let version = conn.version::<DeleteGroupsRequest>(0..=2)?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = conn.send(version, &request).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
            .ok_or_else(|| ClientError::MissingEntry(format!("group {group}")))?;
        check(result.error_code, || format!("delete group {group}"), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
    use kafka_protocol::protocol::Encodable;

    fn encoded(version: i16, assignment: &ConsumerProtocolAssignment) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        assignment.encode(&mut buf, version).expect("encodes");
        buf.freeze()
    }

    fn assignment() -> ConsumerProtocolAssignment {
        let tp = |t: &str, ps: Vec<i32>| {
            WireTp::default()
                .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                .with_partitions(ps)
        };
        ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![tp("orders", vec![2, 0]), tp("audit", vec![1])])
            .with_user_data(Some(Bytes::from_static(b"ud")))
    }

    #[test]
    fn decodes_every_known_version_sorted() {
        let want = vec![
            ("audit".to_owned(), 1),
            ("orders".to_owned(), 0),
            ("orders".to_owned(), 2),
        ];
        for v in 0..=3 {
            assert_eq!(
                decode_assignment(&encoded(v, &assignment())).expect("decodes"),
                want,
                "v{v}"
            );
        }
    }

    #[test]
    fn a_newer_version_reads_as_the_newest_known() {
        let mut bytes = BytesMut::from(&encoded(3, &assignment())[..]);
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        assert_eq!(
            decode_assignment(&bytes.freeze()).expect("decodes").len(),
            3
        );
    }

    #[test]
    fn empty_is_nothing_assigned_and_garbage_is_an_error() {
        assert_eq!(decode_assignment(&Bytes::new()).expect("empty"), vec![]);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        // Claims one topic, then ends.
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 1])).is_err());
    }
}
