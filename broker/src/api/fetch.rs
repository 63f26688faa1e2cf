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
use tokio::time::Instant;

use super::Broker;
use crate::replication::{write_isr, Replica};

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
    // A broker fetching as a follower sets its id; consumers send -1.
    let follower = req.replica_id.0;
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
            // From v9 a fetcher names the leader epoch it knows.
            let known_epoch = if version >= 9 {
                p.current_leader_epoch
            } else {
                -1
            };
            let replica = match super::leader_replica(broker, name, p.partition, known_epoch) {
                Ok(replica) => replica,
                Err(e) => {
                    pd.error_code = e.code();
                    errors = true;
                    partitions.push(pd);
                    continue;
                }
            };
            let log = &replica.log;
            // Subscribed before reading, so an append in between wakes us.
            // Followers read up to the log end, consumers up to the high
            // watermark (what the whole ISR has).
            let (rx, upto) = if follower >= 0 {
                (replica.repl.subscribe_appended(), log.log_end_offset())
            } else {
                (log.subscribe_hw(), log.high_watermark())
            };
            let hw = log.high_watermark();
            let limit = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(remaining);
            if follower >= 0 {
                follower_fetched(
                    broker,
                    name,
                    p.partition,
                    &replica,
                    follower,
                    p.fetch_offset,
                );
            }
            match log.read(p.fetch_offset, limit, upto, total == 0) {
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

/// The leader learns a follower's position from its fetch offset: the
/// high watermark may move, and a caught-up follower rejoins the ISR.
fn follower_fetched(
    broker: &Broker,
    topic: &str,
    partition: i32,
    replica: &Arc<Replica>,
    follower: i32,
    offset: i64,
) {
    let leo = replica.log.log_end_offset();
    let hw = replica.log.high_watermark();
    let change = replica
        .repl
        .on_follower_fetch(follower, offset, leo, hw, crate::now_ms());
    replica.advance();
    if let Some(change) = change {
        tracing::info!(topic, partition, follower, isr = ?change.isr, "follower caught up, expanding the ISR");
        let (cluster, r, topic) = (broker.cluster.clone(), replica.clone(), topic.to_owned());
        tokio::spawn(async move { write_isr(&cluster, &topic, partition, &r, change).await });
    }
}
