//! OffsetForLeaderEpoch (KIP-101/320): where a leader epoch ends on the
//! leader's log, so followers truncate a divergent tail and consumers
//! validate their position after a leader change.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    match lookup(
                        broker,
                        t.topic.0.as_str(),
                        p.partition,
                        p.current_leader_epoch,
                        p.leader_epoch,
                    ) {
                        Ok((epoch, end)) => r.with_leader_epoch(epoch).with_end_offset(end),
                        Err(e) => r.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    epoch: i32,
) -> Result<(i32, i64), ResponseError> {
    let replica = super::leader_replica(broker, topic, partition, current_leader_epoch)?;
    // Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET when nothing is known.
    Ok(replica.log.end_offset_for_epoch(epoch).unwrap_or((-1, -1)))
}
