//! Fetch: whole batches from each partition up to the high watermark, held
//! up to `max_wait_ms` until `min_bytes` are there (a long poll woken by
//! appends), within `max_bytes` and the per-partition limits; the first
//! batch goes out whole even when larger (KIP-74) so consumers progress.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::FutureExt;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::server::Broker;

pub async fn handle(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    loop {
        let mut waiters = Vec::new();
        let (resp, bytes, errors) = read_once(broker, &req, version, &mut waiters);
        if bytes >= min_bytes.max(1) || errors || Instant::now() >= deadline || waiters.is_empty() {
            return resp;
        }
        let changed = futures::future::select_all(
            waiters
                .iter_mut()
                .map(|w| async move { w.changed().await.is_ok() }.boxed()),
        );
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = changed => {}
        }
    }
}

/// One pass over the requested partitions: the answer, the bytes it
/// carries, and whether any partition had an error (answered at once).
fn read_once(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
    waiters: &mut Vec<tokio::sync::watch::Receiver<i64>>,
) -> (FetchResponse, usize, bool) {
    let mut remaining = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.topic.0.as_str();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_records(Some(Bytes::new()));
            if version >= 5 {
                pd.log_start_offset = -1;
            }
            if version >= 4 {
                pd.aborted_transactions = Some(Vec::new());
            }
            let Some(replica) = broker.replicas.get(name, p.partition) else {
                let known = broker
                    .cluster
                    .image()
                    .topic(name)
                    .is_some_and(|t| t.partition(p.partition).is_some());
                pd.error_code = if known {
                    ResponseError::NotLeaderOrFollower.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                errors = true;
                partitions.push(pd);
                continue;
            };
            let log = &replica.log;
            // Subscribed before reading, so an append in between wakes us.
            let rx = log.subscribe_hw();
            let hw = log.high_watermark();
            let limit = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(remaining);
            match log.read(p.fetch_offset, limit, hw, total == 0) {
                Ok(read) => {
                    total += read.records.len();
                    remaining = remaining.saturating_sub(read.records.len());
                    pd.high_watermark = read.high_watermark;
                    pd.last_stable_offset = read.high_watermark;
                    if version >= 5 {
                        pd.log_start_offset = read.log_start_offset;
                    }
                    pd.records = Some(read.records);
                    waiters.push(rx);
                }
                Err(e) => {
                    tracing::debug!(topic = name, partition = p.partition, error = %e, "fetch refused");
                    pd.error_code = e.error_code();
                    pd.high_watermark = hw;
                    pd.last_stable_offset = hw;
                    if version >= 5 {
                        pd.log_start_offset = log.log_start_offset();
                    }
                    errors = true;
                }
            }
            partitions.push(pd);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions),
        );
    }
    // No fetch sessions: session id 0 makes clients send full fetches.
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}
