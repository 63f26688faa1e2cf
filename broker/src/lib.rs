//! The Kafka-compatible broker: the Kafka wire protocol on top of a segmented
//! log per partition, with all cluster metadata kept in the coordinator.

pub mod api;
pub mod client;
pub mod cluster;
pub mod config;
pub mod group;
pub mod log;
pub mod replicas;
pub mod replication;
pub mod server;

/// Wall-clock milliseconds since the Unix epoch, Kafka's timestamp unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
