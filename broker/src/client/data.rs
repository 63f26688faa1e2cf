//! Data-path requests sent to partition leaders: Produce, Fetch and ListOffsets.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record};
use kafka_protocol::ResponseError;

use super::cluster::Client;
use super::connection::Connection;
use super::error::{check, ClientError};
use super::records::{decode_batches, encode_batch, ProducerRecord};

/// ListOffsets timestamp meaning "the log start offset".
pub const EARLIEST: i64 = -2;
/// ListOffsets timestamp meaning "the log end offset" (the high watermark).
pub const LATEST: i64 = -1;

/// How long a Produce with acks may wait for replication before REQUEST_TIMED_OUT.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Acknowledgement level of a Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No response at all (acks=0).
    None,
    /// The leader's append (acks=1).
    Leader,
    /// Every in-sync replica (acks=all, -1).
    All,
}

impl Acks {
    fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Limits of one Fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// How long the broker may hold the request waiting for `min_bytes`.
    pub max_wait: Duration,
    pub min_bytes: i32,
    /// For the whole response.
    pub max_bytes: i32,
    /// For each partition.
    pub partition_max_bytes: i32,
}

/// What a Fetch returned for one partition.
#[derive(Debug)]
pub struct FetchedPartition {
    pub partition: i32,
    /// The partition's error, e.g. OFFSET_OUT_OF_RANGE; no records come with one.
    pub error: Option<ResponseError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Data records at or after the requested offset.
    pub records: Vec<Record>,
    /// Where to fetch next; `None` when no complete batch came back.
    pub next_offset: Option<i64>,
    /// The response ended in a batch cut short by the size limit.
    pub partial: bool,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Client {
    /// Appends `records` to `topic`-`partition` as one batch. Returns the base offset the
    /// broker assigned, or `None` with [`Acks::None`] (no response is sent).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProducerRecord],
        acks: Acks,
        compression: Compression,
    ) -> Result<Option<i64>, ClientError> {
        let batch = encode_batch(records, compression)?;
        let request = ProduceRequest::default()
            .with_acks(acks.wire())
            .with_timeout_ms(millis(PRODUCE_TIMEOUT))
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let leader = self.leader(topic, partition).await?;
        let conn = self.broker(leader).await?;
        // v3 is the first with magic-2 batches; v12 is the last that names topics (v13 uses ids).
        let version = conn.version::<ProduceRequest>(3..=12)?;
        if acks == Acks::None {
            conn.send_only(version, &request).await?;
            return Ok(None);
        }
        let response = conn.send(version, &request).await?;
        let result = response
            .responses
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::MissingEntry(format!("{topic}-{partition}")))?;
        check(
            result.error_code,
            || format!("produce to {topic}-{partition}"),
            result.error_message.as_deref(),
        )?;
        Ok(Some(result.base_offset))
    }

    /// Fetches `topic` from each `(partition, offset)`, one request per leader, all
    /// leaders at once.
    pub async fn fetch(
        &mut self,
        topic: &str,
        positions: &[(i32, i64)],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        let mut by_leader: HashMap<i32, Vec<(i32, i64)>> = HashMap::new();
        for &(partition, offset) in positions {
            let leader = self.leader(topic, partition).await?;
            by_leader
                .entry(leader)
                .or_default()
                .push((partition, offset));
        }
        let leaders: Vec<i32> = by_leader.keys().copied().collect();
        self.ensure_connections(&leaders).await?;
        let requests = self.connections().iter_mut().filter_map(|(id, conn)| {
            by_leader
                .remove(id)
                .map(|parts| fetch_from(conn, topic, parts, options))
        });
        let mut fetched = Vec::with_capacity(positions.len());
        for result in futures::future::join_all(requests).await {
            fetched.extend(result?);
        }
        Ok(fetched)
    }

    /// The offset for `timestamp` in `topic`-`partition`: [`EARLIEST`], [`LATEST`], or a
    /// time in ms (the first offset whose timestamp is at or after it; -1 if none).
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let leader = self.leader(topic, partition).await?;
        let conn = self.broker(leader).await?;
        // v1 is kafka-protocol's floor; v7 is the newest without the v8+ tiered-storage specials.
        let version = conn.version::<ListOffsetsRequest>(1..=7)?;
        let response = conn.send(version, &request).await?;
        let result = response
            .topics
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::MissingEntry(format!("{topic}-{partition}")))?;
        check(
            result.error_code,
            || format!("list offsets of {topic}-{partition}"),
            None,
        )?;
        Ok(result.offset)
    }
}

/// One Fetch to one leader for some partitions of `topic`.
async fn fetch_from(
    conn: &mut Connection,
    topic: &str,
    parts: Vec<(i32, i64)>,
    options: &FetchOptions,
) -> Result<Vec<FetchedPartition>, ClientError> {
    // v4 is kafka-protocol's floor; v12 is the last that names topics (v13 uses ids).
    let version = conn.version::<FetchRequest>(4..=12)?;
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(millis(options.max_wait))
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                parts
                    .iter()
                    .map(|&(partition, offset)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(options.partition_max_bytes)
                    })
                    .collect(),
            )]);
    let response = conn.send(version, &request).await?;
    check(response.error_code, || format!("fetch {topic}"), None)?;
    let offsets: HashMap<i32, i64> = parts.into_iter().collect();
    let mut fetched = Vec::new();
    for data in response
        .responses
        .into_iter()
        .filter(|t| t.topic.as_str() == topic)
        .flat_map(|t| t.partitions)
    {
        let Some(&from) = offsets.get(&data.partition_index) else {
            continue;
        };
        let error = ResponseError::try_from_code(data.error_code);
        let decoded = match (error, data.records) {
            (None, Some(bytes)) => decode_batches(bytes, from)?,
            _ => Default::default(),
        };
        fetched.push(FetchedPartition {
            partition: data.partition_index,
            error,
            high_watermark: data.high_watermark,
            log_start_offset: data.log_start_offset,
            records: decoded.records,
            next_offset: decoded.next_offset,
            partial: decoded.partial,
        });
    }
    Ok(fetched)
}
