//! The broker's picture of the cluster, read from the coordinator: brokers,
//! topics with their assignment, partition state and config overrides. Each
//! published image is immutable; request handlers read one without locking.

use std::collections::BTreeMap;
use std::sync::Arc;

use zookeeper_client::{Client, Error as ZkError};

use super::znode::{self, BrokerZnode, ConfigZnode, Endpoint, PartitionStateZnode, TopicZnode};

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub controller_id: Option<i32>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub topics: BTreeMap<Arc<str>, Arc<TopicImage>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrokerInfo {
    pub id: i32,
    pub rack: Option<String>,
    pub endpoints: Vec<Endpoint>,
    /// czxid of the registration: Kafka's broker epoch.
    pub epoch: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: Arc<str>,
    pub id: uuid::Uuid,
    /// Index = partition number; Kafka's assignment is always dense.
    pub partitions: Vec<PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    /// `None` until the controller has written the state znode.
    pub state: Option<PartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub controller_epoch: i32,
    /// The state znode's version: Kafka's partition epoch, the token for
    /// conditional ISR writes.
    pub zk_version: i32,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<&Arc<TopicImage>> {
        self.topics.values().find(|t| t.id == id)
    }

    /// The endpoint of `broker` for `listener`, or its first one.
    pub fn endpoint(&self, broker: i32, listener: &str) -> Option<&Endpoint> {
        let b = self.brokers.get(&broker)?;
        b.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .or_else(|| b.endpoints.first())
    }
}

impl TopicImage {
    pub fn partition(&self, p: i32) -> Option<&PartitionImage> {
        usize::try_from(p).ok().and_then(|i| self.partitions.get(i))
    }

    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// Reads one znode's data, `None` if it does not exist.
pub async fn read(client: &Client, path: &str) -> Result<Option<(Vec<u8>, i32, i64)>, ZkError> {
    match client.get_data(path).await {
        Ok((data, stat)) => Ok(Some((data, stat.version, stat.czxid))),
        Err(ZkError::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn children(client: &Client, path: &str) -> Result<Vec<String>, ZkError> {
    match client.list_children(path).await {
        Ok(c) => Ok(c),
        Err(ZkError::NoNode) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

pub async fn load_broker(client: &Client, id: i32) -> Result<Option<BrokerInfo>, ZkError> {
    let Some((data, _, czxid)) = read(client, &znode::broker_path(id)).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<BrokerZnode>(&data) {
        Ok(z) => Ok(Some(BrokerInfo {
            id,
            rack: z.rack.clone(),
            endpoints: z.parsed_endpoints(),
            epoch: czxid,
        })),
        Err(e) => {
            tracing::warn!(broker = id, error = %e, "unreadable broker registration, skipped");
            Ok(None)
        }
    }
}

pub async fn load_brokers(client: &Client) -> Result<BTreeMap<i32, BrokerInfo>, ZkError> {
    let mut out = BTreeMap::new();
    for child in children(client, znode::BROKER_IDS).await? {
        let Ok(id) = child.parse::<i32>() else {
            continue;
        };
        if let Some(b) = load_broker(client, id).await? {
            out.insert(id, b);
        }
    }
    Ok(out)
}

pub async fn load_state(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Option<PartitionState>, ZkError> {
    let Some((data, version, _)) = read(client, &znode::state_path(topic, partition)).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<PartitionStateZnode>(&data) {
        Ok(s) => Ok(Some(PartitionState {
            leader: s.leader,
            leader_epoch: s.leader_epoch,
            isr: s.isr,
            controller_epoch: s.controller_epoch,
            zk_version: version,
        })),
        Err(e) => {
            tracing::warn!(topic, partition, error = %e, "unreadable partition state, skipped");
            Ok(None)
        }
    }
}

/// Loads one topic: assignment, every partition state and its config.
/// `None` if the topic znode is gone (or unreadable).
pub async fn load_topic(client: &Client, name: &str) -> Result<Option<TopicImage>, ZkError> {
    let Some((data, _, _)) = read(client, &znode::topic_path(name)).await? else {
        return Ok(None);
    };
    let z: TopicZnode = match serde_json::from_slice(&data) {
        Ok(z) => z,
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "unreadable topic znode, skipped");
            return Ok(None);
        }
    };
    let assignment = z.assignment();
    let mut partitions = Vec::with_capacity(assignment.len());
    for (p, replicas) in assignment {
        if usize::try_from(p).ok() != Some(partitions.len()) {
            tracing::warn!(
                topic = name,
                partition = p,
                "assignment has a gap, ignoring the rest"
            );
            break;
        }
        let state = load_state(client, name, p).await?;
        partitions.push(PartitionImage { replicas, state });
    }
    let configs = load_config(client, name).await?;
    let id = z
        .topic_id
        .as_deref()
        .and_then(znode::parse_topic_id)
        .unwrap_or_default();
    Ok(Some(TopicImage {
        name: name.into(),
        id,
        partitions,
        configs,
    }))
}

pub async fn load_config(
    client: &Client,
    topic: &str,
) -> Result<BTreeMap<String, String>, ZkError> {
    let Some((data, _, _)) = read(client, &znode::topic_config_path(topic)).await? else {
        return Ok(BTreeMap::new());
    };
    Ok(serde_json::from_slice::<ConfigZnode>(&data)
        .map(|c| c.config)
        .unwrap_or_else(|e| {
            tracing::warn!(topic, error = %e, "unreadable topic config, using defaults");
            BTreeMap::new()
        }))
}

pub async fn load_controller(client: &Client) -> Result<Option<i32>, ZkError> {
    let Some((data, _, _)) = read(client, znode::CONTROLLER).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<znode::ControllerZnode>(&data)
        .ok()
        .map(|c| c.brokerid))
}

/// Reads everything (after connecting, or when watch events may have been
/// lost during a reconnect).
pub async fn load_all(client: &Client, cluster_id: String) -> Result<MetadataImage, ZkError> {
    let brokers = load_brokers(client).await?;
    let mut topics = BTreeMap::new();
    for name in children(client, znode::BROKER_TOPICS).await? {
        if let Some(t) = load_topic(client, &name).await? {
            topics.insert(t.name.clone(), Arc::new(t));
        }
    }
    Ok(MetadataImage {
        cluster_id,
        controller_id: load_controller(client).await?,
        brokers,
        topics,
    })
}
