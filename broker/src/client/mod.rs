//! A small async Kafka client, used by the `broker topic|produce|consume|group` CLI and by
//! tests: one connection per broker with version negotiation, plus admin, data and
//! consumer-group helpers.

mod admin;
mod cluster;
mod connection;
mod data;
mod error;
#[cfg(test)]
mod fake_broker;
mod groups;
mod partitioner;
mod records;

pub use admin::{ConfigEntry, CreatedTopic, NewTopic, CONFIG_SOURCE_TOPIC};
pub use cluster::{BrokerInfo, Client, ClusterMetadata, PartitionInfo, TopicInfo};
pub use connection::Connection;
pub use data::{Acks, FetchOptions, FetchedPartition, EARLIEST, LATEST};
pub use error::{kafka_error_name, ClientError};
pub use groups::{
    decode_assignment, GroupDescription, GroupListing, MemberDescription, TopicPartition,
};
pub use kafka_protocol::records::{Compression, Record};
pub use kafka_protocol::ResponseError;
pub use partitioner::{murmur2, Partitioner};
pub use records::ProducerRecord;
