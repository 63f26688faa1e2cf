//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (overrides in `/config/topics/<t>`, validated as Kafka validates them),
//! and a read-only view of the broker's own settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use crate::log::{LogConfig, TimestampType};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Kafka's `ConfigSource` values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` values.
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const LIST: i8 = 7;

/// (name, value, type) of a topic's effective settings.
fn topic_entries(
    cfg: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<(String, String, i8)> {
    let ts = match cfg.timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    let text = |key: &str, default: &str| {
        overrides
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let mut out = vec![
        (
            "cleanup.policy".to_owned(),
            text("cleanup.policy", "delete"),
            LIST,
        ),
        (
            "compression.type".to_owned(),
            text("compression.type", "producer"),
            STRING,
        ),
        (
            "flush.messages".to_owned(),
            cfg.flush_messages.to_string(),
            LONG,
        ),
        ("flush.ms".to_owned(), cfg.flush_ms.to_string(), LONG),
        (
            "index.interval.bytes".to_owned(),
            cfg.index_interval_bytes.to_string(),
            INT,
        ),
        (
            "max.message.bytes".to_owned(),
            cfg.max_message_bytes.to_string(),
            INT,
        ),
        ("message.timestamp.type".to_owned(), ts.to_owned(), STRING),
        (
            "min.insync.replicas".to_owned(),
            cfg.min_insync_replicas.to_string(),
            INT,
        ),
        (
            "retention.bytes".to_owned(),
            cfg.retention_bytes.to_string(),
            LONG,
        ),
        (
            "retention.ms".to_owned(),
            cfg.retention_ms.to_string(),
            LONG,
        ),
        (
            "segment.bytes".to_owned(),
            cfg.segment_bytes.to_string(),
            INT,
        ),
        ("segment.ms".to_owned(), cfg.segment_ms.to_string(), LONG),
    ];
    for (k, v) in overrides {
        if !out.iter().any(|(name, _, _)| name == k) {
            out.push((k.clone(), v.clone(), STRING));
        }
    }
    out
}

fn broker_entries(broker: &Broker) -> Vec<(String, String, i8)> {
    let c = &broker.config;
    vec![
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics_enable.to_string(),
            BOOLEAN,
        ),
        ("broker.id".into(), broker.id().to_string(), INT),
        (
            "default.replication.factor".into(),
            c.default_replication_factor.to_string(),
            INT,
        ),
        (
            "delete.topic.enable".into(),
            c.delete_topic_enable.to_string(),
            BOOLEAN,
        ),
        (
            "log.dirs".into(),
            c.log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            STRING,
        ),
        (
            "message.max.bytes".into(),
            c.message_max_bytes.to_string(),
            INT,
        ),
        (
            "min.insync.replicas".into(),
            c.min_insync_replicas.to_string(),
            INT,
        ),
        ("num.partitions".into(), c.num_partitions.to_string(), INT),
        (
            "socket.request.max.bytes".into(),
            c.socket_request_max_bytes.to_string(),
            INT,
        ),
        (
            "zookeeper.connect".into(),
            c.zookeeper_connect.clone().unwrap_or_default(),
            STRING,
        ),
    ]
}

pub fn describe(
    broker: &Arc<Broker>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let img = broker.replicas.image();
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let name = res.resource_name.to_string();
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let (entries, overrides, read_only) = match res.resource_type {
                TOPIC => match img.topic(&name) {
                    Some(t) => {
                        let cfg = LogConfig::from_topic_configs(&broker.config.log, &t.configs)
                            .unwrap_or_else(|_| broker.config.log.clone());
                        (topic_entries(&cfg, &t.configs), t.configs.clone(), false)
                    }
                    None => {
                        return out
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_static_str("unknown topic")));
                    }
                },
                BROKER if name.is_empty() || name == broker.id().to_string() => {
                    (broker_entries(broker), BTreeMap::new(), true)
                }
                _ => {
                    return out
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "only topic and this broker's configs can be described",
                        )));
                }
            };
            let wanted = res.configuration_keys.as_ref();
            out.configs = entries
                .into_iter()
                .filter(|(k, _, _)| wanted.is_none_or(|w| w.iter().any(|x| x.as_str() == k)))
                .map(|(k, v, ty)| {
                    let source = if read_only {
                        STATIC_BROKER_CONFIG
                    } else if overrides.contains_key(&k) {
                        DYNAMIC_TOPIC_CONFIG
                    } else {
                        DEFAULT_CONFIG
                    };
                    let mut e = DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(k))
                        .with_value(Some(StrBytes::from_string(v)))
                        .with_read_only(read_only)
                        .with_config_source(source);
                    if version >= 3 {
                        e.config_type = ty;
                    }
                    e
                })
                .collect();
            out
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Validates and stores a topic's complete override set.
async fn store(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if resource_type != TOPIC {
        return Err((
            ResponseError::InvalidRequest.code(),
            "only topic configs can be altered".into(),
        ));
    }
    if broker.replicas.image().topic(name).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            "unknown topic".into(),
        ));
    }
    LogConfig::from_topic_configs(&broker.config.log, &configs)
        .map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    broker
        .cluster
        .set_topic_config(name, &configs)
        .await
        .map_err(|e| (e.error_code(), e.to_string()))
}

pub async fn alter(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let configs = res
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let outcome = store(
            broker,
            res.resource_type,
            res.resource_name.as_str(),
            configs,
            req.validate_only,
        )
        .await;
        let mut r = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        responses.push(r);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let img = broker.replicas.image();
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let name = res.resource_name.to_string();
        let mut configs = img
            .topic(&name)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        let mut outcome = Ok(());
        for c in &res.configs {
            let key = c.name.to_string();
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            match c.config_operation {
                0 => {
                    configs.insert(key, value);
                }
                1 => {
                    configs.remove(&key);
                }
                // APPEND / SUBTRACT on list values (cleanup.policy).
                2 | 3 => {
                    let mut items: Vec<String> = configs
                        .get(&key)
                        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                        .unwrap_or_default();
                    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if c.config_operation == 2 {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_owned());
                            }
                        } else {
                            items.retain(|i| i != item);
                        }
                    }
                    configs.insert(key, items.join(","));
                }
                op => {
                    outcome = Err((
                        ResponseError::InvalidRequest.code(),
                        format!("unknown config operation {op}"),
                    ));
                }
            }
        }
        if outcome.is_ok() {
            outcome = store(broker, res.resource_type, &name, configs, req.validate_only).await;
        }
        let mut r = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        responses.push(r);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
