//! Produce: validate and append each partition's batches on the leader,
//! idempotent producers checked by the log; per-partition errors stay in
//! the answer; acks=0 gets no answer at all.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::valid_topic_name;
use super::Broker;
use crate::replication::{AckState, Replica};

pub async fn handle(
    broker: &Arc<Broker>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let now = crate::now_ms();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    // acks=all: (topic index, partition index, replica, leader epoch of
    // the append, last offset) that must be in the whole ISR before the
    // answer.
    let mut pending = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            if version >= 5 {
                r.log_start_offset = -1;
            }
            let outcome = leader(broker, name, pd.index, acks).and_then(|replica| {
                let records = pd
                    .records
                    .as_ref()
                    .ok_or_else(|| (ResponseError::CorruptMessage.code(), "no records".into()))?;
                append(&replica, name, pd.index, records, now).map(|a| (replica, a))
            });
            match outcome {
                Ok((replica, (info, epoch))) => {
                    if acks == -1 {
                        pending.push((
                            responses.len(),
                            partitions.len(),
                            replica,
                            epoch,
                            info.last_offset,
                        ));
                    }
                    r.base_offset = info.base_offset;
                    r.log_append_time_ms = info.log_append_time;
                    if version >= 5 {
                        r.log_start_offset = info.log_start_offset;
                    }
                }
                Err((code, message)) => {
                    tracing::debug!(
                        topic = name,
                        partition = pd.index,
                        code,
                        message,
                        "produce refused"
                    );
                    r.error_code = code;
                    if version >= 8 {
                        r.error_message = Some(StrBytes::from_string(message));
                    }
                }
            }
            partitions.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return None;
    }
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    // Every partition waits at once, so one slow partition does not hold
    // the others' answers past their own.
    let outcomes = futures::future::join_all(
        pending
            .iter()
            .map(|(_, _, replica, epoch, last)| replicated(replica, *epoch, *last, deadline)),
    )
    .await;
    for ((t, p, _, _, _), outcome) in pending.iter().zip(outcomes) {
        let (code, message) = match outcome {
            Ok(()) => continue,
            Err(code) if code == ResponseError::NotLeaderOrFollower => {
                (code, "leadership moved before the in-sync replicas had it")
            }
            Err(code) if code == ResponseError::NotEnoughReplicasAfterAppend => (
                code,
                "written, but the in-sync replicas stayed below min.insync.replicas",
            ),
            Err(code) => (code, "not replicated to the in-sync replicas in time"),
        };
        let r = &mut responses[*t].partition_responses[*p];
        r.error_code = code.code();
        if version >= 8 {
            r.error_message = Some(StrBytes::from_static_str(message));
        }
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Waits until the high watermark passes `last` (the ISR has it) with the
/// ISR at `min.insync.replicas` or more. Like Kafka's DelayedProduce it
/// gives up early only when the leader epoch of the append (`epoch`) ends
/// first: NOT_LEADER_OR_FOLLOWER, decided from that epoch's final high
/// watermark so a later batch is never acknowledged after an earlier one
/// failed. An ISR change keeps it waiting, and so does a lost coordinator
/// session (this broker may still lead). At the deadline:
/// REQUEST_TIMED_OUT, or NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR had
/// it but had shrunk below the minimum.
async fn replicated(
    replica: &Replica,
    epoch: i32,
    last: i64,
    deadline: tokio::time::Instant,
) -> Result<(), ResponseError> {
    /// Image changes (ISR, leader epoch) carry no notification here;
    /// checked this often while waiting.
    const ROLE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);
    let mut hw = replica.log.subscribe_hw();
    loop {
        let min_isr = usize::try_from(replica.log.config().min_insync_replicas).unwrap_or(1);
        let below_min_isr =
            match replica
                .repl
                .acks_all(epoch, last, || replica.log.high_watermark(), min_isr)
            {
                AckState::Replicated => return Ok(()),
                AckState::LeaderMoved => return Err(ResponseError::NotLeaderOrFollower),
                AckState::Waiting { below_min_isr } => below_min_isr,
            };
        let tick = (tokio::time::Instant::now() + ROLE_CHECK).min(deadline);
        tokio::select! {
            changed = hw.changed() => if changed.is_err() {
                return Err(ResponseError::NotLeaderOrFollower);
            },
            _ = tokio::time::sleep_until(tick) => {
                if tick >= deadline {
                    return Err(if below_min_isr {
                        ResponseError::NotEnoughReplicasAfterAppend
                    } else {
                        ResponseError::RequestTimedOut
                    });
                }
            }
        }
    }
}

/// The replica that takes a produce for `topic`/`partition`, after the
/// checks Kafka makes before it looks at the records: acks, name, leadership.
/// Shared with the legacy (v0-v2) handler, whose records need converting.
pub(super) fn leader(
    broker: &Broker,
    topic: &str,
    partition: i32,
    acks: i16,
) -> Result<Arc<Replica>, (i16, String)> {
    if !matches!(acks, -1..=1) {
        return Err((
            ResponseError::InvalidRequiredAcks.code(),
            format!("acks={acks}"),
        ));
    }
    if !valid_topic_name(topic) {
        return Err((
            ResponseError::InvalidTopicException.code(),
            "invalid topic name".into(),
        ));
    }
    let replica = super::leader_replica(broker, topic, partition, -1)
        .map_err(|e| (e.code(), e.to_string()))?;
    if acks == -1 {
        let isr = replica.repl.isr().len();
        let min = replica.log.config().min_insync_replicas;
        if isr < usize::try_from(min).unwrap_or(usize::MAX) {
            let code = ResponseError::NotEnoughReplicas;
            return Err((
                code.code(),
                format!("{isr} in-sync replicas, min.insync.replicas={min}"),
            ));
        }
    }
    Ok(replica)
}

/// Validates `records` (magic-2 batches), assigns offsets and appends them
/// on the leader `replica` from [`leader`]; also returns the leader epoch
/// the batches were stamped with, the one an acks=all wait is bound to.
/// A duplicate of one of the producer's last five batches comes back with
/// its original offsets.
pub(super) fn append(
    replica: &Replica,
    topic: &str,
    partition: i32,
    records: &bytes::Bytes,
    now: i64,
) -> Result<(crate::log::AppendInfo, i32), (i16, String)> {
    let epoch = replica.leader_epoch();
    let info = replica.log.append(records, epoch, now).map_err(|e| {
        if e.error_code() == ResponseError::KafkaStorageError.code() {
            tracing::error!(topic, partition, error = %e, "append failed");
        }
        (e.error_code(), e.to_string())
    })?;
    replica.advance();
    Ok((info, epoch))
}
