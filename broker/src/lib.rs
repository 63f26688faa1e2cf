//! The Kafka-compatible broker: the Kafka wire protocol on top of a segmented
//! log per partition, with all cluster metadata kept in the coordinator.

pub mod api;
pub mod client;
pub mod cluster;
pub mod config;
pub mod group;
pub mod log;
pub mod replication;
pub mod server;

pub use common::time::now_ms;
