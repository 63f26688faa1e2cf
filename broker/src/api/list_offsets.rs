//! ListOffsets: earliest (-2), latest (-1, the high watermark), or the
//! first offset at or after a timestamp. v7's max-timestamp query (-3) is
//! not offered: the advertised range stops at v6.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub fn handle(broker: &Arc<Broker>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    match lookup(broker, name, p.partition_index, p.timestamp) {
                        Ok((offset, timestamp, epoch)) => {
                            r.offset = offset;
                            r.timestamp = timestamp;
                            if version >= 4 {
                                r.leader_epoch = epoch;
                            }
                        }
                        Err(code) => r.error_code = code,
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp, leader epoch) or a Kafka error code.
fn lookup(broker: &Broker, topic: &str, partition: i32, ts: i64) -> Result<(i64, i64, i32), i16> {
    let replica = super::leader_replica(broker, topic, partition, -1).map_err(|e| e.code())?;
    let log = &replica.log;
    let epoch = replica.leader_epoch();
    let hw = log.high_watermark();
    Ok(match ts {
        LATEST => (hw, -1, epoch),
        EARLIEST => (log.log_start_offset(), -1, epoch),
        ts => match log.offset_for_timestamp(ts).map_err(|e| e.error_code())? {
            Some((offset, timestamp)) if offset < hw => (offset, timestamp, epoch),
            // No record that late: Kafka answers offset -1.
            _ => (-1, -1, -1),
        },
    })
}
