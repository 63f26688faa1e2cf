//! A small async Kafka client, used by the `broker topic|produce|consume` CLI and by tests:
//! one connection per broker with version negotiation, plus admin and data helpers.

mod admin;
mod cluster;
mod connection;
mod data;
mod error;
#[cfg(test)]
mod fake_broker;
mod partitioner;
mod records;

pub use admin::{ConfigEntry, CreatedTopic, NewTopic, CONFIG_SOURCE_TOPIC};
pub use cluster::{BrokerInfo, Client, ClusterMetadata, PartitionInfo, TopicInfo};
pub use connection::Connection;
pub use data::{Acks, FetchOptions, FetchedPartition, EARLIEST, LATEST};
pub use error::{kafka_error_name, ClientError};
pub use kafka_protocol::records::{Compression, Record};
pub use kafka_protocol::ResponseError;
pub use partitioner::{murmur2, Partitioner};
pub use records::ProducerRecord;
