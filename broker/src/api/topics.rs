//! CreateTopics, DeleteTopics, CreatePartitions and auto-creation: checks
//! as Kafka's `ZkAdminManager`, writes through the coordinator, then a wait
//! (bounded by the request's timeout) until every broker's metadata shows
//! the result, as Kafka's delayed operations do.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::valid_topic_name;
use super::Broker;
use crate::cluster::{assign_replicas, AdminError, MetadataImage};
use crate::log::LogConfig;

/// A refused topic operation: Kafka error code and message.
type Refusal = (i16, String);

fn refusal(e: AdminError) -> Refusal {
    (e.error_code(), e.to_string())
}

/// How long CreateTopics waits for a topic it wrote to show in this
/// broker's image, whatever the request's timeout.
const KNOWN_WITHIN: Duration = Duration::from_secs(5);

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn online(img: &MetadataImage, name: &str, partitions: usize) -> bool {
    img.topic(name).is_some_and(|t| {
        t.partitions.len() >= partitions
            && t.partitions
                .iter()
                .all(|p| p.state.as_ref().is_some_and(|s| s.leader >= 0))
    })
}

/// Creates `name` with the broker defaults, for Metadata's auto-creation.
/// Losing a creation race to another broker is fine.
pub async fn auto_create(broker: &Broker, name: &str) {
    let cfg = &broker.config;
    let img = broker.replicas.image();
    let live: Vec<i32> = img.brokers.keys().copied().collect();
    let result = match assign_replicas(&live, cfg.num_partitions, cfg.default_replication_factor, 0)
    {
        Ok(a) => broker
            .cluster
            .create_topic(name, &a, &BTreeMap::new())
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::info!(topic = name, "auto-created topic"),
        Err(AdminError::TopicExists) => {}
        Err(e) => tracing::warn!(topic = name, error = %e, "topic auto-creation failed"),
    }
}

pub async fn create(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut created = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default().with_name(t.name.clone());
        match create_one(broker, t, req.validate_only).await {
            Ok((partitions, rf, id)) => {
                if version >= 5 {
                    r.num_partitions = partitions;
                    r.replication_factor = rf;
                }
                if version >= 7 {
                    r.topic_id = id.unwrap_or_default();
                }
                if id.is_some() {
                    created.push((
                        name,
                        usize::try_from(partitions).unwrap_or(0),
                        results.len(),
                    ));
                }
            }
            Err((code, message)) => {
                r.error_code = code;
                r.error_message = Some(StrBytes::from_string(message));
            }
        }
        results.push(r);
    }
    let wait = timeout(req.timeout_ms);
    for (name, partitions, i) in created {
        // Whatever the request's timeout, the answer waits until this
        // broker's image has the topic: from then on every request here
        // knows it, as Kafka's admin requests see the znodes just written.
        let known = broker
            .replicas
            .wait_for(KNOWN_WITHIN, |img| img.topic(&name).is_some())
            .await;
        let ready = match known {
            // Kafka answers at once when the client does not wait for the
            // partitions to come online (timeout <= 0).
            Ok(()) if req.timeout_ms <= 0 => Ok(()),
            Ok(()) => {
                broker
                    .replicas
                    .wait_for(wait, |img| online(img, &name, partitions))
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = ready {
            let (code, message) = refusal(e);
            results[i].error_code = code;
            results[i].error_message = Some(StrBytes::from_string(message));
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// (partitions, replication factor, topic id if written).
async fn create_one(
    broker: &Broker,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<(i32, i16, Option<uuid::Uuid>), Refusal> {
    let name = t.name.0.as_str();
    if !valid_topic_name(name) {
        return Err((
            ResponseError::InvalidTopicException.code(),
            format!(
                "topic name {name:?} is illegal: it must be 1-249 characters of [a-zA-Z0-9._-]"
            ),
        ));
    }
    let img = broker.replicas.image();
    if img.topic(name).is_some() {
        return Err(refusal(AdminError::TopicExists));
    }
    let configs: BTreeMap<String, String> = t
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    if let Err(e) = LogConfig::from_topic_configs(&broker.config.log, &configs) {
        return Err((ResponseError::InvalidConfig.code(), e.to_string()));
    }
    let assignment: BTreeMap<i32, Vec<i32>> = if t.assignments.is_empty() {
        let partitions = if t.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            broker.config.default_replication_factor
        } else {
            t.replication_factor
        };
        let live: Vec<i32> = img.brokers.keys().copied().collect();
        assign_replicas(&live, partitions, rf, 0).map_err(refusal)?
    } else {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest.code(),
                "both a replica assignment and partitions/replication factor were given".into(),
            ));
        }
        let a: BTreeMap<i32, Vec<i32>> = t
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect();
        validate_assignment(&img, &a, 0)?;
        a
    };
    let partitions = i32::try_from(assignment.len()).unwrap_or(i32::MAX);
    let rf = assignment
        .values()
        .next()
        .map_or(0, |r| i16::try_from(r.len()).unwrap_or(i16::MAX));
    if validate_only {
        return Ok((partitions, rf, None));
    }
    let id = broker
        .cluster
        .create_topic(name, &assignment, &configs)
        .await
        .map_err(refusal)?;
    Ok((partitions, rf, Some(id)))
}

/// Kafka's checks on an explicit assignment: dense partition numbers from
/// `first`, the same replica count everywhere, no duplicate or unknown broker.
fn validate_assignment(
    img: &MetadataImage,
    a: &BTreeMap<i32, Vec<i32>>,
    first: i32,
) -> Result<(), Refusal> {
    let bad = |m: String| refusal(AdminError::InvalidReplicaAssignment(m));
    let rf = a.values().next().map_or(0, Vec::len);
    for (i, (p, replicas)) in a.iter().enumerate() {
        if *p != first + i32::try_from(i).unwrap_or(i32::MAX) {
            return Err(bad("partitions must be consecutive from 0".into()));
        }
        if replicas.is_empty() || replicas.len() != rf {
            return Err(bad(
                "every partition needs the same, non-zero number of replicas".into(),
            ));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() {
            return Err(bad(format!("duplicate replica in {replicas:?}")));
        }
        if let Some(b) = replicas.iter().find(|b| !img.brokers.contains_key(b)) {
            return Err(bad(format!("unknown broker {b}")));
        }
    }
    Ok(())
}

pub async fn delete(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let img = broker.replicas.image();
    // v6 names topics by name or id; earlier versions by name only.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut results = Vec::with_capacity(targets.len());
    let mut pending = Vec::new();
    for (name, id) in targets {
        let resolved = match &name {
            Some(n) => Some(n.clone()),
            None => img.topic_by_id(id).map(|t| t.name.to_string()),
        };
        let mut r = DeletableTopicResult::default().with_name(
            resolved
                .clone()
                .map(|n| TopicName(StrBytes::from_string(n))),
        );
        if version >= 6 {
            r.topic_id = img
                .topic(resolved.as_deref().unwrap_or_default())
                .map_or(id, |t| t.id);
        }
        let outcome = match &resolved {
            None => Err((
                ResponseError::UnknownTopicId.code(),
                "unknown topic id".to_owned(),
            )),
            Some(_) if !broker.config.delete_topic_enable => {
                Err(refusal(AdminError::DeletionDisabled))
            }
            Some(n) => match broker.cluster.delete_topic(n).await {
                Ok(()) | Err(AdminError::AlreadyMarkedForDeletion) => Ok(n.clone()),
                Err(e) => Err(refusal(e)),
            },
        };
        match outcome {
            Ok(n) => pending.push((n, results.len())),
            Err((code, message)) => {
                r.error_code = code;
                if version >= 5 {
                    r.error_message = Some(StrBytes::from_string(message));
                }
            }
        }
        results.push(r);
    }
    let wait = timeout(req.timeout_ms);
    for (name, i) in pending {
        if let Err(e) = broker
            .replicas
            .wait_for(wait, |img| img.topic(&name).is_none())
            .await
        {
            let (code, message) = refusal(e);
            results[i].error_code = code;
            if version >= 5 {
                results[i].error_message = Some(StrBytes::from_string(message));
            }
        }
    }
    DeleteTopicsResponse::default().with_responses(results)
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let wait = timeout(req.timeout_ms);
    for t in &req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let outcome = match add_partitions(broker, t, req.validate_only).await {
            Ok(Some(count)) => broker
                .replicas
                .wait_for(wait, |img| online(img, &name, count))
                .await
                .map_err(refusal),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        results.push(r);
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// The new partition count if partitions were added (`None` when only
/// validating).
async fn add_partitions(
    broker: &Broker,
    t: &kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic,
    validate_only: bool,
) -> Result<Option<usize>, Refusal> {
    let img = broker.replicas.image();
    let Some(topic) = img.topic(t.name.0.as_str()) else {
        return Err(refusal(AdminError::UnknownTopic));
    };
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if t.count <= current {
        return Err(refusal(AdminError::InvalidPartitions(format!(
            "topic currently has {current} partitions, {} would not be an increase",
            t.count
        ))));
    }
    let added = match &t.assignments {
        Some(assignments) => {
            if assignments.len() != usize::try_from(t.count - current).unwrap_or(0) {
                return Err(refusal(AdminError::InvalidReplicaAssignment(
                    "one assignment per new partition is needed".into(),
                )));
            }
            let a: BTreeMap<i32, Vec<i32>> = assignments
                .iter()
                .zip(current..)
                .map(|(a, p)| (p, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect();
            validate_assignment(&img, &a, current)?;
            a
        }
        None => {
            let live: Vec<i32> = img.brokers.keys().copied().collect();
            let rf = i16::try_from(topic.replication_factor()).unwrap_or(i16::MAX);
            assign_replicas(&live, t.count - current, rf, current).map_err(refusal)?
        }
    };
    if validate_only {
        return Ok(None);
    }
    broker
        .cluster
        .add_partitions(t.name.0.as_str(), &added)
        .await
        .map_err(refusal)?;
    Ok(Some(usize::try_from(t.count).unwrap_or(0)))
}
