//! A follower's fetcher for one partition: first truncate a divergent tail
//! by leader epoch (OffsetForLeaderEpoch to the leader), then fetch from
//! the leader with this broker's id as `replica_id` and append the batches
//! exactly as the leader wrote them, taking the high watermark the leader
//! reports. It runs until the partition's role changes (the task is
//! aborted) and reconnects with backoff on any error.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Replica;
use crate::client::Connection;
use crate::log::Log;

/// Where a follower fetches from.
#[derive(Debug, Clone)]
pub struct Source {
    pub me: i32,
    pub topic: Arc<str>,
    pub partition: i32,
    pub leader_addr: String,
    pub leader_epoch: i32,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("leader answered {0}")]
    Kafka(ResponseError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

const MAX_WAIT_MS: i32 = 500;
const PARTITION_MAX_BYTES: i32 = 1 << 20;

pub async fn run(src: Source, replica: Arc<Replica>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match follow(&src, &replica.log).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(topic = %src.topic, partition = src.partition, leader = src.leader_addr, error = %e, "replica fetch failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn follow(src: &Source, log: &Log) -> Result<(), FetchError> {
    let mut conn = Connection::connect(&src.leader_addr).await?;
    truncate_divergent_tail(src, log, &mut conn).await?;
    let version = conn.version::<FetchRequest>(4..=12)?;
    let name = TopicName(StrBytes::from_string(src.topic.to_string()));
    loop {
        let offset = log.log_end_offset();
        let mut part = FetchPartition::default()
            .with_partition(src.partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(PARTITION_MAX_BYTES);
        if version >= 9 {
            part.current_leader_epoch = src.leader_epoch;
        }
        if version >= 5 {
            part.log_start_offset = log.log_start_offset();
        }
        let mut req = FetchRequest::default()
            .with_replica_id(BrokerId(src.me))
            .with_max_wait_ms(MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(PARTITION_MAX_BYTES)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(vec![part])]);
        if version >= 7 {
            req.session_epoch = -1;
        }
        let resp = conn.send(version, &req).await?;
        let Some(pd) = resp
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == src.partition)
        else {
            continue;
        };
        match ResponseError::try_from_code(pd.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                // Behind the leader's log start (retention): start over
                // where the leader's log starts.
                if pd.log_start_offset > offset {
                    tracing::info!(topic = %src.topic, partition = src.partition, from = offset, to = pd.log_start_offset, "follower restarts at the leader's log start");
                    log.truncate_to(pd.log_start_offset)?;
                    continue;
                }
                return Err(FetchError::Kafka(ResponseError::OffsetOutOfRange));
            }
            Some(e) => return Err(FetchError::Kafka(e)),
        }
        if let Some(records) = pd.records.filter(|r| !r.is_empty()) {
            // A partial trailing batch is cut off by the log's validation
            // rules, so only whole batches reach the disk.
            let whole = whole_batches(&records);
            if !whole.is_empty() {
                log.append_replicated(&whole)?;
            }
        }
        let hw = pd.high_watermark.min(log.log_end_offset());
        if hw > log.high_watermark() {
            log.set_high_watermark(hw);
        }
    }
}

/// The prefix of `records` made of complete batches (a fetch may end in
/// the middle of one).
fn whole_batches(records: &bytes::Bytes) -> bytes::Bytes {
    let mut at = 0usize;
    while records.len() >= at + 12 {
        let len = i32::from_be_bytes([
            records[at + 8],
            records[at + 9],
            records[at + 10],
            records[at + 11],
        ]);
        let Ok(len) = usize::try_from(len) else {
            break;
        };
        if records.len() < at + 12 + len {
            break;
        }
        at += 12 + len;
    }
    records.slice(..at)
}

/// KIP-101: ask the leader where our latest epoch ends on its log and cut
/// anything of ours beyond it, so a follower never keeps (or later serves)
/// what the cluster did not commit.
async fn truncate_divergent_tail(
    src: &Source,
    log: &Log,
    conn: &mut Connection,
) -> Result<(), FetchError> {
    let Some(epoch) = log.latest_epoch() else {
        return Ok(());
    };
    let version = conn.version::<OffsetForLeaderEpochRequest>(2..=4)?;
    let mut req =
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(StrBytes::from_string(src.topic.to_string())))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(src.partition)
                .with_current_leader_epoch(src.leader_epoch)
                .with_leader_epoch(epoch)])]);
    if version >= 3 {
        req.replica_id = BrokerId(src.me);
    }
    let resp = conn.send(version, &req).await?;
    let Some(r) = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition == src.partition)
    else {
        return Ok(());
    };
    if let Some(e) = ResponseError::try_from_code(r.error_code) {
        return Err(FetchError::Kafka(e));
    }
    // Kafka's rule: the leader's end for our epoch, or our own end for the
    // epoch the leader reports if that is smaller.
    let mut end = r.end_offset;
    if r.leader_epoch != epoch {
        if let Some((_, ours)) = log.end_offset_for_epoch(r.leader_epoch) {
            end = end.min(ours);
        }
    }
    if end >= 0 && end < log.log_end_offset() {
        tracing::warn!(
            topic = %src.topic,
            partition = src.partition,
            from = log.log_end_offset(),
            to = end,
            "truncating a divergent tail the leader does not have"
        );
        log.truncate_to(end)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_batches_drop_a_partial_tail() {
        let mut b = Vec::new();
        for len in [20u32, 30] {
            b.extend_from_slice(&0i64.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend(std::iter::repeat_n(0u8, len as usize));
        }
        let full = bytes::Bytes::from(b);
        assert_eq!(whole_batches(&full).len(), full.len());
        assert_eq!(whole_batches(&full.slice(..40)).len(), 32);
        assert_eq!(whole_batches(&full.slice(..5)).len(), 0);
    }
}
