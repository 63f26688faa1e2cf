//! [`Client`]: bootstraps from `host:port`, reads cluster metadata, and keeps one
//! connection per broker id at the address that broker advertises.

use std::collections::HashMap;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::connection::Connection;
use super::error::ClientError;

/// Metadata versions this client fills: v1 is the first where `None` means all topics,
/// v12 the last before topic ids replace names in the request.
const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=12;

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// One partition of a topic, as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<ResponseError>,
}

/// One topic, as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    /// All zeros when the broker does not assign topic ids (or Metadata is older than v10).
    pub topic_id: Uuid,
    pub is_internal: bool,
    /// A topic-level error such as UNKNOWN_TOPIC_OR_PARTITION.
    pub error: Option<ResponseError>,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
}

/// A Metadata answer, in plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    /// Sorted by name.
    pub topics: Vec<TopicInfo>,
}

/// A Kafka client for one cluster: the bootstrap connection plus one per broker.
#[derive(Debug)]
pub struct Client {
    /// The first connection; Metadata goes here, so it works before we know any broker id.
    bootstrap: Connection,
    /// Broker id -> advertised `host:port`, from the latest Metadata.
    brokers: HashMap<i32, String>,
    /// Open connections by broker id, opened on first use.
    conns: HashMap<i32, Connection>,
    /// The controller from the latest Metadata; admin requests go there.
    controller_id: i32,
    /// Partition leaders from the latest Metadata of each topic.
    leaders: HashMap<(String, i32), i32>,
}

impl Client {
    /// Connects to the first reachable address of `bootstrap` (`host:port[,host:port...]`)
    /// and learns the brokers from Metadata.
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        let mut last_err = ClientError::BadAddress {
            addr: bootstrap.to_owned(),
        };
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::connect(addr).await {
                Ok(conn) => {
                    let mut client = Client {
                        bootstrap: conn,
                        brokers: HashMap::new(),
                        conns: HashMap::new(),
                        controller_id: -1,
                        leaders: HashMap::new(),
                    };
                    client.metadata(Some(&[]), false).await?;
                    return Ok(client);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// Fetches metadata for `topics` (`None` = all topics, `Some(&[])` = brokers only).
    ///
    /// With `auto_create`, a broker configured to do so creates the named topics.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<ClusterMetadata, ClientError> {
        let version = self
            .bootstrap
            .version::<MetadataRequest>(METADATA_VERSIONS)?;
        let mut request = MetadataRequest::default().with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        }));
        // Before v4 the field does not exist and brokers decide for themselves.
        if version >= 4 {
            request = request.with_allow_auto_topic_creation(auto_create);
        }
        let response = self.bootstrap.send(version, &request).await?;

        let brokers: Vec<BrokerInfo> = response
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(ToString::to_string),
            })
            .collect();
        let mut topics: Vec<TopicInfo> = response
            .topics
            .iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        error: ResponseError::try_from_code(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicInfo {
                    name: t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    error: ResponseError::try_from_code(t.error_code),
                    partitions,
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));

        // Learn addresses and leaders; a broker that moved gets a fresh connection.
        for b in &brokers {
            self.learn_broker(b.id, format!("{}:{}", b.host, b.port));
        }
        self.controller_id = response.controller_id.0;
        for t in &topics {
            self.leaders.retain(|(name, _), _| name != &t.name);
            for p in &t.partitions {
                if p.leader >= 0 {
                    self.leaders.insert((t.name.clone(), p.partition), p.leader);
                }
            }
        }

        Ok(ClusterMetadata {
            cluster_id: response.cluster_id.as_ref().map(ToString::to_string),
            controller_id: response.controller_id.0,
            brokers,
            topics,
        })
    }

    /// Metadata for one topic, failing with its error (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn topic(&mut self, name: &str, auto_create: bool) -> Result<TopicInfo, ClientError> {
        let metadata = self.metadata(Some(&[name.to_owned()]), auto_create).await?;
        let topic = metadata
            .topics
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ClientError::MissingEntry(format!("topic {name}")))?;
        if let Some(error) = topic.error {
            return Err(ClientError::Kafka {
                context: format!("topic {name}"),
                error,
                message: None,
            });
        }
        Ok(topic)
    }

    /// The leader of `topic`-`partition`, refreshing metadata when it is not known.
    pub(crate) async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        let key = (topic.to_owned(), partition);
        if let Some(leader) = self.leaders.get(&key) {
            return Ok(*leader);
        }
        self.metadata(Some(&[topic.to_owned()]), false).await?;
        self.leaders
            .get(&key)
            .copied()
            .ok_or_else(|| ClientError::NoLeader {
                topic: topic.to_owned(),
                partition,
            })
    }

    /// Forgets the cached leaders of `topic`, after a NOT_LEADER_OR_FOLLOWER-style error.
    pub fn invalidate(&mut self, topic: &str) {
        self.leaders.retain(|(name, _), _| name != topic);
    }

    /// Opens (if needed) the connections to every broker in `ids`.
    pub(crate) async fn ensure_connections(&mut self, ids: &[i32]) -> Result<(), ClientError> {
        for id in ids {
            if !self.conns.contains_key(id) {
                let addr = self
                    .brokers
                    .get(id)
                    .ok_or(ClientError::UnknownBroker(*id))?;
                let conn = Connection::connect(addr).await?;
                self.conns.insert(*id, conn);
            }
        }
        Ok(())
    }

    /// The connection to broker `id`, opened on first use.
    pub(crate) async fn broker(&mut self, id: i32) -> Result<&mut Connection, ClientError> {
        self.ensure_connections(&[id]).await?;
        self.conns
            .get_mut(&id)
            .ok_or(ClientError::UnknownBroker(id))
    }

    /// Open connections by broker id, for requests that go to several brokers at once.
    pub(crate) fn connections(&mut self) -> &mut HashMap<i32, Connection> {
        &mut self.conns
    }

    /// Where admin requests go: the controller if Metadata named one, else the bootstrap broker.
    pub(crate) async fn controller(&mut self) -> Result<&mut Connection, ClientError> {
        let id = self.controller_id;
        if id >= 0 && self.brokers.contains_key(&id) {
            self.broker(id).await
        } else {
            Ok(&mut self.bootstrap)
        }
    }

    /// Records that broker `id` listens at `addr` (FindCoordinator names a broker and its
    /// address at once); a broker that moved gets a fresh connection.
    pub(crate) fn learn_broker(&mut self, id: i32, addr: String) {
        if self.brokers.get(&id) != Some(&addr) {
            self.conns.remove(&id);
            self.brokers.insert(id, addr);
        }
    }

    /// The ids of every broker the latest Metadata named, ascending.
    pub(crate) fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Any connection will do (e.g. DescribeConfigs for a topic): the bootstrap one.
    pub(crate) fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }
}
