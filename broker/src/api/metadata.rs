//! Metadata: brokers, controller and topics from the current image, with
//! Kafka's topic auto-creation (`auto.create.topics.enable`, and the
//! request's `allow_auto_topic_creation` from v4).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use super::{topics, valid_topic_name, RequestContext};
use crate::cluster::{MetadataImage, TopicImage};

/// How long a Metadata request that auto-created a topic waits for its
/// leaders before answering LEADER_NOT_AVAILABLE (which clients retry).
const AUTO_CREATE_WAIT: Duration = Duration::from_secs(2);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut img = broker.replicas.image();
    // v0 has no way to ask for "all topics" but an empty list.
    let names: Option<Vec<String>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    let allow_create =
        broker.config.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    if let (Some(names), true) = (&names, allow_create) {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| img.topic(n).is_none() && valid_topic_name(n))
            .collect();
        if !missing.is_empty() {
            for name in &missing {
                topics::auto_create(broker, name).await;
            }
            let want: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
            let _ = broker
                .replicas
                .wait_for(AUTO_CREATE_WAIT, |i| {
                    want.iter().all(|n| i.topic(n).is_some_and(|t| online(t)))
                })
                .await;
            img = broker.replicas.image();
        }
    }

    let topics = match names {
        None => img
            .topics
            .values()
            .map(|t| describe(&img, t, version))
            .collect(),
        Some(names) => names
            .iter()
            .map(|n| match img.topic(n) {
                Some(t) => describe(&img, t, version),
                None => {
                    let code = if !valid_topic_name(n) {
                        ResponseError::InvalidTopicException
                    } else if allow_create {
                        ResponseError::LeaderNotAvailable
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                        .with_error_code(code.code())
                }
            })
            .collect(),
    };
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers(&img, &ctx.listener, version))
        .with_topics(topics);
    if version >= 1 {
        resp.controller_id = BrokerId(img.controller_id.unwrap_or(-1));
    }
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(img.cluster_id.clone()));
    }
    resp
}

fn online(t: &TopicImage) -> bool {
    t.partitions
        .iter()
        .all(|p| p.state.as_ref().is_some_and(|s| s.leader >= 0))
}

pub fn brokers(img: &MetadataImage, listener: &str, version: i16) -> Vec<MetadataResponseBroker> {
    img.brokers
        .keys()
        .filter_map(|&id| {
            let e = img.endpoint(id, listener)?;
            let mut b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port);
            if version >= 1 {
                b.rack = img.brokers[&id].rack.clone().map(StrBytes::from_string);
            }
            Some(b)
        })
        .collect()
}

fn describe(img: &MetadataImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let index = i32::try_from(i).unwrap_or(i32::MAX);
            let (leader, epoch, isr) = match &p.state {
                Some(s) => (s.leader, s.leader_epoch, s.isr.clone()),
                None => (-1, -1, Vec::new()),
            };
            let error = if leader < 0 || !img.brokers.contains_key(&leader) {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            let mut mp = MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_replica_nodes(p.replicas.iter().map(|&r| BrokerId(r)).collect())
                .with_isr_nodes(isr.into_iter().map(BrokerId).collect());
            if version >= 5 {
                mp.offline_replicas = p
                    .replicas
                    .iter()
                    .filter(|r| !img.brokers.contains_key(r))
                    .map(|&r| BrokerId(r))
                    .collect();
            }
            if version >= 7 {
                mp.leader_epoch = epoch;
            }
            mp
        })
        .collect();
    let mut mt = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.to_string()))))
        .with_partitions(partitions);
    if version >= 10 {
        mt.topic_id = t.id;
    }
    mt
}
