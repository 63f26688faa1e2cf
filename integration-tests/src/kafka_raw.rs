//! Raw Kafka requests over a blocking `TcpStream`: requests are encoded with
//! the `kafka-protocol` crate (so the bytes are what a real client sends) but
//! the test controls every frame, so it can also send malformed ones and see
//! exactly what the broker answers, or that it closes the connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// How long a single answer may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Kafka error codes the tests assert on (`org.apache.kafka.common.protocol.Errors`).
pub mod err {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_CONFIG: i16 = 40;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One connection to a broker.
#[derive(Debug)]
pub struct KafkaConn {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl KafkaConn {
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(KafkaConn {
            stream,
            next_correlation: 1,
        })
    }

    /// The frame body (header + request) that `send` would write.
    pub fn encode_request<R: Request>(
        version: i16,
        correlation_id: i32,
        req: &R,
    ) -> Result<BytesMut> {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(str_bytes("eddy-it")));
        header.encode(&mut buf, R::header_version(version))?;
        req.encode(&mut buf, version)?;
        Ok(buf)
    }

    /// Writes one size-prefixed frame.
    pub fn write_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as i32).to_be_bytes());
        out.extend_from_slice(body);
        self.stream.write_all(&out)
    }

    /// Reads one size-prefixed frame (the body).
    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .context("reading response size")?;
        let len = i32::from_be_bytes(len);
        if len < 0 {
            bail!("negative response size {len}");
        }
        let mut body = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut body)
            .context("reading response body")?;
        Ok(Bytes::from(body))
    }

    /// Sends `req` at `version` and decodes its answer, checking the correlation id.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> Result<R::Response> {
        let corr = self.next_correlation;
        self.next_correlation += 1;
        let body = Self::encode_request(version, corr, req)?;
        self.write_frame(&body)?;
        let mut frame = self.read_frame()?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        if header.correlation_id != corr {
            bail!("correlation id {} != sent {corr}", header.correlation_id);
        }
        let resp = R::Response::decode(&mut frame, version)?;
        if !frame.is_empty() {
            bail!(
                "{} trailing bytes after the {:?} v{version} response",
                frame.len(),
                ApiKey::try_from(R::KEY)
            );
        }
        Ok(resp)
    }

    /// True if the broker closes this connection (EOF or reset) within `timeout`
    /// without sending anything more. Bytes received instead count as "not closed".
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        wait_closed(&mut self.stream, timeout)
    }
}

/// See [`KafkaConn::wait_closed`].
pub fn wait_closed(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => return false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
}

/// A plain record (no producer id) with the given key and value.
pub fn record(key: Option<&[u8]>, value: &[u8], timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: IndexMap::new(),
    }
}

/// One uncompressed magic-2 batch of `records` (offsets are renumbered 0..).
pub fn batch(records: &[Record]) -> Result<Bytes> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.offset = i as i64;
            if r.sequence >= 0 {
                r.sequence = records[0].sequence + i as i32;
            }
            r
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// A batch of plain records `values`, timestamps now.
pub fn simple_batch(values: &[&[u8]]) -> Result<Bytes> {
    let now = now_ms();
    let recs: Vec<Record> = values.iter().map(|v| record(None, v, now)).collect();
    batch(&recs)
}

/// An idempotent batch: producer id/epoch and base sequence `seq`.
pub fn idempotent_batch(pid: i64, epoch: i16, seq: i32, values: &[&[u8]]) -> Result<Bytes> {
    let now = now_ms();
    let recs: Vec<Record> = values
        .iter()
        .map(|v| {
            let mut r = record(None, v, now);
            r.producer_id = pid;
            r.producer_epoch = epoch;
            r.sequence = seq;
            r
        })
        .collect();
    batch(&recs)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Produce v7 (what librdkafka 2.0.2 sends); returns (error code, base offset).
pub fn produce(
    conn: &mut KafkaConn,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Result<(i16, i64)> {
    let resp: ProduceResponse = conn.send(7, &produce_request(topic, partition, records))?;
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .context("produce response without a partition")?;
    Ok((p.error_code, p.base_offset))
}

/// CreateTopics v4 of one topic; returns the topic's (error code, message).
pub fn create_topic(
    conn: &mut KafkaConn,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> Result<(i16, Option<String>)> {
    let resp: CreateTopicsResponse = conn.send(
        4,
        &create_topics_request(name, partitions, replication, configs),
    )?;
    let t = resp
        .topics
        .first()
        .context("CreateTopics answer without a topic")?;
    Ok((
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    ))
}

pub fn create_topics_request(
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(20_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(k))
                            .with_value(Some(str_bytes(v)))
                    })
                    .collect(),
            )])
}

/// ListOffsets v2 for one partition at `timestamp` (-1 latest, -2 earliest):
/// (error code, offset).
pub fn list_offset(
    conn: &mut KafkaConn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i16, i64)> {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let resp: ListOffsetsResponse = conn.send(2, &req)?;
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("ListOffsets answer without a partition")?;
    Ok((p.error_code, p.offset))
}

/// (error code, high watermark, log start offset, records as (offset, value)).
pub type Fetched = (i16, i64, i64, Vec<(i64, Bytes)>);

/// Fetch v11 of one partition from `offset` (max_wait 0): the partition's
/// (error code, high watermark, log start offset, records as (offset, value)).
pub fn fetch(
    conn: &mut KafkaConn,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Result<Fetched> {
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(max_bytes)])]);
    let resp: FetchResponse = conn.send(11, &req)?;
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .context("Fetch answer without a partition")?;
    let mut out = Vec::new();
    if let Some(records) = &p.records {
        let mut buf = records.clone();
        // A partial trailing batch is legal in a Fetch answer: decode whole ones only.
        while buf.len() >= 12 {
            let len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if buf.len() < 12 + len {
                break;
            }
            let mut one = buf.split_to(12 + len);
            let set = RecordBatchDecoder::decode(&mut one)?;
            for r in set.records {
                out.push((r.offset, r.value.unwrap_or_default()));
            }
        }
    }
    Ok((p.error_code, p.high_watermark, p.log_start_offset, out))
}

/// ApiVersions v3 on a fresh connection: proof that the broker still serves.
pub fn api_versions_ok(addr: SocketAddr) -> Result<ApiVersionsResponse> {
    let mut c = KafkaConn::connect(addr)?;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(str_bytes("eddy-it"))
        .with_client_software_version(str_bytes("1"));
    let resp: ApiVersionsResponse = c.send(3, &req)?;
    if resp.error_code != 0 || resp.api_keys.is_empty() {
        bail!("ApiVersions answered {resp:?}");
    }
    Ok(resp)
}

/// Metadata v4 of no topics: (broker ids, controller id).
pub fn brokers(addr: SocketAddr) -> Result<(Vec<i32>, i32)> {
    let mut c = KafkaConn::connect(addr)?;
    let resp: kafka_protocol::messages::MetadataResponse = c.send(
        4,
        &kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![])),
    )?;
    let mut ids: Vec<i32> = resp.brokers.iter().map(|b| i32::from(b.node_id)).collect();
    ids.sort();
    Ok((ids, i32::from(resp.controller_id)))
}

/// Waits (bounded) until the broker's Metadata lists itself and a controller.
/// Kafka serves no request before it is registered; this broker may, see
/// `kafka_cluster::first_request_after_listening`.
pub fn wait_registered(addr: SocketAddr) -> Result<()> {
    let ok = crate::wait_until(
        Duration::from_secs(30),
        || matches!(brokers(addr), Ok((ids, ctl)) if !ids.is_empty() && ctl >= 0),
    );
    if !ok {
        bail!(
            "broker at {addr} never listed itself and a controller in Metadata: {:?}",
            brokers(addr)
        );
    }
    Ok(())
}

/// Waits (bounded) until the broker leads `topic`/`partition` (ListOffsets
/// answers without error). Kafka's CreateTopics answers only once the leader
/// can take writes; this broker may answer earlier, see
/// `kafka_bad_input::produce_right_after_create_topics`.
pub fn wait_leader(addr: SocketAddr, topic: &str, partition: i32) -> Result<()> {
    let mut c = KafkaConn::connect(addr)?;
    let ok = crate::wait_until(Duration::from_secs(30), || {
        matches!(list_offset(&mut c, topic, partition, -1), Ok((0, _)))
    });
    if !ok {
        bail!(
            "{topic}-{partition} has no leader at {addr}: {:?}",
            list_offset(&mut c, topic, partition, -1)
        );
    }
    Ok(())
}

/// Consumer-group requests as a Java consumer sends them (JoinGroup v5 with the
/// consumer protocol, SyncGroup v3, Heartbeat v3, OffsetCommit/OffsetFetch v8),
/// with the answers decoded to plain values for assertions.
pub mod group {
    use anyhow::{bail, Context, Result};
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, DescribeGroupsRequest,
        DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
        JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
        OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
    };
    use kafka_protocol::protocol::Encodable;

    use super::{err, str_bytes, topic_name, KafkaConn};

    pub fn group_id(g: &str) -> GroupId {
        GroupId(str_bytes(g))
    }

    /// A consumer-protocol subscription (v1) to `topics`, version-prefixed.
    pub fn subscription(topics: &[&str]) -> Result<Bytes> {
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| str_bytes(t)).collect());
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        sub.encode(&mut buf, 1)?;
        Ok(buf.freeze())
    }

    /// A consumer-protocol assignment (v1) of `parts`, version-prefixed.
    pub fn assignment(parts: &[(&str, &[i32])]) -> Result<Bytes> {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
            parts
                .iter()
                .map(|(t, ps)| {
                    TopicPartition::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        );
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        a.encode(&mut buf, 1)?;
        Ok(buf.freeze())
    }

    /// A JoinGroup of the consumer protocol ("range") subscribing to `topics`.
    pub fn join_request(
        group: &str,
        member_id: &str,
        session_timeout_ms: i32,
        protocol_type: &str,
        topics: &[&str],
    ) -> Result<JoinGroupRequest> {
        Ok(JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(session_timeout_ms)
            .with_member_id(str_bytes(member_id))
            .with_protocol_type(str_bytes(protocol_type))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(str_bytes("range"))
                .with_metadata(subscription(topics)?)]))
    }

    /// A member that completed JoinGroup and SyncGroup.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Member {
        pub member_id: String,
        pub generation: i32,
    }

    /// Joins `group` as its only member (JoinGroup v5: MEMBER_ID_REQUIRED, then
    /// again with the given id), then syncs as leader, assigning itself `parts`.
    pub fn join_alone(
        conn: &mut KafkaConn,
        group: &str,
        session_timeout_ms: i32,
        parts: &[(&str, &[i32])],
    ) -> Result<Member> {
        let topics: Vec<&str> = parts.iter().map(|(t, _)| *t).collect();
        let first: JoinGroupResponse = conn.send(
            5,
            &join_request(group, "", session_timeout_ms, "consumer", &topics)?,
        )?;
        if first.error_code != err::MEMBER_ID_REQUIRED || first.member_id.is_empty() {
            bail!("first JoinGroup v5 answered {first:?}");
        }
        let member_id = first.member_id.to_string();
        let joined: JoinGroupResponse = conn.send(
            5,
            &join_request(group, &member_id, session_timeout_ms, "consumer", &topics)?,
        )?;
        if joined.error_code != err::NONE || joined.leader.as_str() != member_id {
            bail!("second JoinGroup v5 answered {joined:?}");
        }
        let code = sync(
            conn,
            group,
            joined.generation_id,
            &member_id,
            Some(assignment(parts)?),
        )?;
        if code != err::NONE {
            bail!("SyncGroup answered {code}");
        }
        Ok(Member {
            member_id,
            generation: joined.generation_id,
        })
    }

    /// SyncGroup v3; the leader passes its own assignment. Returns the error code.
    pub fn sync(
        conn: &mut KafkaConn,
        group: &str,
        generation: i32,
        member_id: &str,
        own_assignment: Option<Bytes>,
    ) -> Result<i16> {
        let req = SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(str_bytes(member_id))
            .with_assignments(
                own_assignment
                    .into_iter()
                    .map(|a| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(member_id))
                            .with_assignment(a)
                    })
                    .collect(),
            );
        let resp: SyncGroupResponse = conn.send(3, &req)?;
        Ok(resp.error_code)
    }

    /// Heartbeat v3; returns the error code.
    pub fn heartbeat(
        conn: &mut KafkaConn,
        group: &str,
        generation: i32,
        member_id: &str,
    ) -> Result<i16> {
        let req = HeartbeatRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(str_bytes(member_id));
        let resp: HeartbeatResponse = conn.send(3, &req)?;
        Ok(resp.error_code)
    }

    /// One partition to commit: (topic, partition, offset, metadata).
    pub type Commit<'a> = (&'a str, i32, i64, Option<&'a str>);

    /// OffsetCommit v8; each partition's (topic, partition, error code), in request order.
    pub fn commit(
        conn: &mut KafkaConn,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &[Commit<'_>],
    ) -> Result<Vec<(String, i32, i16)>> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for &(t, p, o, m) in offsets {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(o)
                .with_committed_metadata(m.map(str_bytes));
            match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(str_bytes(member_id))
            .with_topics(topics);
        let resp: OffsetCommitResponse = conn.send(8, &req)?;
        Ok(resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect())
    }

    /// A group's committed offsets from OffsetFetch v8 (all topics): the group's
    /// error code and its (topic, partition, offset, metadata), sorted.
    pub type Committed = (i16, Vec<(String, i32, i64, Option<String>)>);

    pub fn fetch(conn: &mut KafkaConn, group: &str) -> Result<Committed> {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(None)]);
        let resp: OffsetFetchResponse = conn.send(8, &req)?;
        let g = resp
            .groups
            .first()
            .context("OffsetFetch answer without a group")?;
        let mut rows: Vec<_> = g
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.metadata.as_ref().map(|m| m.to_string()),
                    )
                })
            })
            .collect();
        rows.sort();
        Ok((g.error_code, rows))
    }

    /// A group as DescribeGroups v5 reports it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Described {
        pub error_code: i16,
        pub state: String,
        pub protocol_type: String,
        pub protocol: String,
        /// (member id, client id, assignment bytes)
        pub members: Vec<(String, String, Bytes)>,
    }

    pub fn describe(conn: &mut KafkaConn, group: &str) -> Result<Described> {
        let req = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let resp: DescribeGroupsResponse = conn.send(5, &req)?;
        let g = resp
            .groups
            .first()
            .context("DescribeGroups answer without a group")?;
        Ok(Described {
            error_code: g.error_code,
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.client_id.to_string(),
                        m.member_assignment.clone(),
                    )
                })
                .collect(),
        })
    }
}
