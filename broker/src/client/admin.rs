//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs.

use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::cluster::Client;
use super::error::{check, ClientError};

/// How long the broker may take to apply an admin change before it answers REQUEST_TIMED_OUT.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// DescribeConfigs resource type for topics (`ConfigResource.Type.TOPIC`).
const RESOURCE_TOPIC: i8 = 2;

/// `config_source` of a value set on the topic itself (`DYNAMIC_TOPIC_CONFIG`).
pub const CONFIG_SOURCE_TOPIC: i8 = 1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 lets the broker use its default.
    pub partitions: i32,
    /// -1 lets the broker use its default.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// What CreateTopics reported for a created topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub name: String,
    /// Zero when the broker or version does not report it.
    pub topic_id: Uuid,
    /// -1 when the broker or version does not report it.
    pub partitions: i32,
    pub replication_factor: i16,
}

/// One configuration entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Where the value comes from; see [`CONFIG_SOURCE_TOPIC`].
    pub source: i8,
    pub is_sensitive: bool,
    pub read_only: bool,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn timeout_ms() -> i32 {
    i32::try_from(ADMIN_TIMEOUT.as_millis()).unwrap_or(i32::MAX)
}

impl Client {
    /// Creates `topics`; the first per-topic error fails the call.
    pub async fn create_topics(
        &mut self,
        topics: &[NewTopic],
    ) -> Result<Vec<CreatedTopic>, ClientError> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.controller().await?;
        // v2 is kafka-protocol's floor; v7 is the newest CreateTopics.
        let version = conn.version::<CreateTopicsRequest>(2..=7)?;
        let response = conn.send(version, &request).await?;
        response
            .topics
            .iter()
            .map(|t| {
                let name = t.name.to_string();
                check(
                    t.error_code,
                    || format!("create topic {name}"),
                    t.error_message.as_deref(),
                )?;
                Ok(CreatedTopic {
                    name,
                    topic_id: t.topic_id,
                    partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                })
            })
            .collect()
    }

    /// Deletes the named topics; the first per-topic error fails the call.
    pub async fn delete_topics(&mut self, names: &[String]) -> Result<(), ClientError> {
        let conn = self.controller().await?;
        let version = conn.version::<DeleteTopicsRequest>(1..=6)?;
        let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms());
        // v6 names topics in `topics` (so they can be given by id); older versions in `topic_names`.
        let request = if version >= 6 {
            request.with_topics(
                names
                    .iter()
                    .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                    .collect(),
            )
        } else {
            request.with_topic_names(names.iter().map(|n| topic_name(n)).collect())
        };
        let response = conn.send(version, &request).await?;
        for r in &response.responses {
            let name = r.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            check(
                r.error_code,
                || format!("delete topic {name}"),
                r.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Grows `topic` to `count` partitions in total.
    pub async fn create_partitions(&mut self, topic: &str, count: i32) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(count)]);
        let conn = self.controller().await?;
        let version = conn.version::<CreatePartitionsRequest>(0..=3)?;
        let response = conn.send(version, &request).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.name.as_str() == topic)
            .ok_or_else(|| ClientError::MissingEntry(format!("topic {topic}")))?;
        check(
            result.error_code,
            || format!("create partitions for {topic}"),
            result.error_message.as_deref(),
        )
    }

    /// All configuration entries of `topic`, as the broker reports them.
    pub async fn describe_configs(&mut self, topic: &str) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configuration_keys(None),
        ]);
        let conn = self.any();
        // v1 is the first with `config_source`, which tells overrides from defaults.
        let version = conn.version::<DescribeConfigsRequest>(1..=4)?;
        let response = conn.send(version, &request).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.resource_name.as_str() == topic)
            .ok_or_else(|| ClientError::MissingEntry(format!("topic {topic}")))?;
        check(
            result.error_code,
            || format!("describe configs of {topic}"),
            result.error_message.as_deref(),
        )?;
        Ok(result
            .configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.as_ref().map(ToString::to_string),
                source: c.config_source,
                is_sensitive: c.is_sensitive,
                read_only: c.read_only,
            })
            .collect())
    }
}
