//! Cluster metadata in the coordinator, in Kafka's classic znode layout:
//! the [`Cluster`] handle gives request handlers the current
//! [`MetadataImage`] and performs the admin writes (topic creation and
//! deletion, partitions, configs, producer id blocks) as Kafka's
//! `AdminZkClient` does.

mod controller;
pub mod image;
pub mod offsets;
mod session;
mod session_file;
pub mod znode;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

pub use controller::ElectionPolicy;
pub use image::{BrokerInfo, MetadataImage, PartitionImage, PartitionState, TopicImage};
pub(crate) use session::probe;
pub use session::SessionConfig;
pub use session_file::SessionFile;
pub use znode::Endpoint;

use znode::{ConfigChangeZnode, ConfigZnode, ProducerIdBlockZnode, TopicZnode};

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// An admin write that failed, with the Kafka error it answers.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("topic already exists")]
    TopicExists,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("topic deletion is disabled")]
    DeletionDisabled,
    #[error("topic is already marked for deletion")]
    AlreadyMarkedForDeletion,
    #[error("the coordinator is unreachable")]
    NoCoordinator,
    #[error("timed out waiting for the change to take effect")]
    Timeout,
    #[error("coordinator: {0}")]
    Zk(#[from] ZkError),
}

impl AdminError {
    pub fn error_code(&self) -> i16 {
        match self {
            AdminError::TopicExists => 36,
            AdminError::UnknownTopic => 3,
            AdminError::InvalidPartitions(_) => 37,
            AdminError::InvalidReplicationFactor(_) => 38,
            AdminError::InvalidReplicaAssignment(_) => 39,
            AdminError::DeletionDisabled => 73,
            // Kafka's TopicAlreadyMarkedForDeletion answers as success once
            // deletion completes; while it is pending the request times out.
            AdminError::AlreadyMarkedForDeletion | AdminError::Timeout => 7,
            AdminError::NoCoordinator | AdminError::Zk(_) => 7,
        }
    }
}

/// An ISR change the leader writes to its partition's state znode: the
/// new ISR, with the leader and epochs kept, conditional on the znode
/// version it was based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub controller_epoch: i32,
    pub expected_version: i32,
}

/// The handle request handlers use; cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    broker_id: i32,
    image: watch::Receiver<Arc<MetadataImage>>,
    client: watch::Receiver<Option<Client>>,
}

impl Cluster {
    /// Starts the session task; the handle serves an empty image until the
    /// first one is loaded.
    pub fn start(
        cfg: SessionConfig,
        shutdown: CancellationToken,
    ) -> (Cluster, tokio::task::JoinHandle<()>) {
        let (image_tx, image) = watch::channel(Arc::new(MetadataImage::default()));
        let (client_tx, client) = watch::channel(None);
        let broker_id = cfg.broker_id;
        let published = Arc::new(session::Published {
            image: image_tx,
            client: client_tx,
        });
        let task = tokio::spawn(session::run(cfg, published, shutdown));
        (
            Cluster {
                broker_id,
                image,
                client,
            },
            task,
        )
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The current image (cheap: an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Changes whenever a coordinator session starts or is lost; a broker
    /// without one must not act as a leader (a newer leader may exist).
    pub fn subscribe_session(&self) -> watch::Receiver<Option<Client>> {
        self.client.clone()
    }

    /// Waits (briefly) for a live session.
    pub(crate) async fn client(&self) -> Result<Client, AdminError> {
        let mut rx = self.client.clone();
        let wait = async {
            loop {
                if let Some(c) = rx.borrow_and_update().clone() {
                    return Some(c);
                }
                rx.changed().await.ok()?;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .ok()
            .flatten()
            .ok_or(AdminError::NoCoordinator)
    }

    /// Writes a new topic as `AdminZkClient.createTopicWithAssignment`: its
    /// config, then its assignment. The controller brings it online.
    pub async fn create_topic(
        &self,
        name: &str,
        assignment: &BTreeMap<i32, Vec<i32>>,
        configs: &BTreeMap<String, String>,
    ) -> Result<uuid::Uuid, AdminError> {
        let client = self.client().await?;
        if client.check_stat(&znode::topic_path(name)).await?.is_some() {
            return Err(AdminError::TopicExists);
        }
        let config = serde_json::to_vec(&ConfigZnode {
            version: 1,
            config: configs.clone(),
        })
        .unwrap_or_default();
        set_or_create(&client, &znode::topic_config_path(name), &config).await?;
        let id = uuid::Uuid::new_v4();
        let data = serde_json::to_vec(&TopicZnode::new(assignment, id)).unwrap_or_default();
        match client
            .create(&znode::topic_path(name), &data, &persistent())
            .await
        {
            Ok(_) => {
                tracing::info!(topic = name, partitions = assignment.len(), "topic created");
                Ok(id)
            }
            Err(ZkError::NodeExists) => Err(AdminError::TopicExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a topic for deletion (`/admin/delete_topics/<t>`); the
    /// controller finishes it.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let client = self.client().await?;
        if client.check_stat(&znode::topic_path(name)).await?.is_none() {
            return Err(AdminError::UnknownTopic);
        }
        match client
            .create(&znode::delete_marker_path(name), b"", &persistent())
            .await
        {
            Ok(_) => Ok(()),
            Err(ZkError::NodeExists) => Err(AdminError::AlreadyMarkedForDeletion),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds partitions with the given replicas (Kafka's
    /// `AdminZkClient.addPartitions`: the whole assignment rewritten).
    pub async fn add_partitions(
        &self,
        name: &str,
        added: &BTreeMap<i32, Vec<i32>>,
    ) -> Result<(), AdminError> {
        let client = self.client().await?;
        let path = znode::topic_path(name);
        let Some((data, version, _)) = image::read(&client, &path).await? else {
            return Err(AdminError::UnknownTopic);
        };
        let mut z: TopicZnode =
            serde_json::from_slice(&data).map_err(|_| AdminError::UnknownTopic)?;
        for (p, replicas) in added {
            z.partitions.insert(p.to_string(), replicas.clone());
        }
        let data = serde_json::to_vec(&z).unwrap_or_default();
        match client.set_data(&path, &data, Some(version)).await {
            Ok(_) => Ok(()),
            Err(ZkError::BadVersion) => Err(AdminError::InvalidPartitions(
                "the topic changed concurrently".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a topic's config overrides and posts Kafka's change
    /// notification.
    pub async fn set_topic_config(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let client = self.client().await?;
        if client.check_stat(&znode::topic_path(name)).await?.is_none() {
            return Err(AdminError::UnknownTopic);
        }
        let data = serde_json::to_vec(&ConfigZnode {
            version: 1,
            config: configs.clone(),
        })
        .unwrap_or_default();
        set_or_create(&client, &znode::topic_config_path(name), &data).await?;
        let change = serde_json::to_vec(&ConfigChangeZnode {
            version: 2,
            entity_path: format!("topics/{name}"),
        })
        .unwrap_or_default();
        client
            .create(
                &format!("{}/config_change_", znode::CONFIG_CHANGES),
                &change,
                &CreateMode::PersistentSequential.with_acls(Acls::anyone_all()),
            )
            .await?;
        Ok(())
    }

    /// The leader's ISR write: the partition state with a new ISR, set only
    /// if the znode is still at the version the leader based it on.
    pub async fn write_isr(
        &self,
        topic: &str,
        partition: i32,
        change: &IsrChange,
    ) -> Result<(), AdminError> {
        let client = self.client().await?;
        let state = znode::PartitionStateZnode {
            controller_epoch: change.controller_epoch,
            leader: change.leader,
            version: 1,
            leader_epoch: change.leader_epoch,
            isr: change.isr.clone(),
            leader_recovery_state: None,
        };
        let data = serde_json::to_vec(&state).unwrap_or_default();
        client
            .set_data(
                &znode::state_path(topic, partition),
                &data,
                Some(change.expected_version),
            )
            .await?;
        tracing::info!(topic, partition, isr = ?change.isr, "ISR changed");
        Ok(())
    }

    /// Claims the next block of producer ids (`/latest_producer_id_block`,
    /// conditional write, retried on a race): ids are unique across brokers
    /// and restarts.
    pub async fn allocate_producer_ids(&self) -> Result<std::ops::Range<i64>, AdminError> {
        let client = self.client().await?;
        loop {
            let (data, version) = match image::read(&client, znode::PRODUCER_ID_BLOCK).await? {
                Some((d, v, _)) => (d, Some(v)),
                None => (Vec::new(), None),
            };
            let start = if data.is_empty() {
                0
            } else {
                let z: ProducerIdBlockZnode = serde_json::from_slice(&data)
                    .map_err(|_| ZkError::UnexpectedError("bad producer id block".into()))?;
                z.block_end
                    .parse::<i64>()
                    .map_err(|_| ZkError::UnexpectedError("bad producer id block".into()))?
                    + 1
            };
            let end = start + PRODUCER_ID_BLOCK_SIZE - 1;
            let next = serde_json::to_vec(&ProducerIdBlockZnode {
                version: 1,
                broker: self.broker_id,
                block_start: start.to_string(),
                block_end: end.to_string(),
            })
            .unwrap_or_default();
            let written = match version {
                Some(v) => client
                    .set_data(znode::PRODUCER_ID_BLOCK, &next, Some(v))
                    .await
                    .map(|_| ()),
                None => client
                    .create(znode::PRODUCER_ID_BLOCK, &next, &persistent())
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(start..end + 1),
                Err(ZkError::BadVersion | ZkError::NodeExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Waits until `ready` holds for the newest image `rx` carries, or
/// `timeout` passes.
pub async fn wait_for_image(
    mut rx: watch::Receiver<Arc<MetadataImage>>,
    timeout: Duration,
    ready: impl Fn(&MetadataImage) -> bool,
) -> Result<(), AdminError> {
    let wait = async {
        loop {
            if ready(&rx.borrow_and_update()) {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err(AdminError::NoCoordinator);
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or(Err(AdminError::Timeout))
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn set_or_create(client: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
    match client.set_data(path, data, None).await {
        Ok(_) => Ok(()),
        Err(ZkError::NoNode) => match client.create(path, data, &persistent()).await {
            Ok(_) => Ok(()),
            Err(ZkError::NodeExists) => client.set_data(path, data, None).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Kafka's rack-unaware `AdminUtils.assignReplicasToBrokers`: a random
/// start, replicas of partition p start at broker (start + p) and the
/// followers are shifted by a per-wrap increment so load spreads evenly.
pub fn assign_replicas(
    brokers: &[i32],
    partitions: i32,
    replication_factor: i16,
    first_partition: i32,
) -> Result<BTreeMap<i32, Vec<i32>>, AdminError> {
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if partitions <= 0 {
        return Err(AdminError::InvalidPartitions(
            "number of partitions must be larger than 0".into(),
        ));
    }
    if rf == 0 {
        return Err(AdminError::InvalidReplicationFactor(
            "replication factor must be larger than 0".into(),
        ));
    }
    if rf > brokers.len() {
        return Err(AdminError::InvalidReplicationFactor(format!(
            "replication factor: {rf} larger than available brokers: {}",
            brokers.len()
        )));
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let start = rand::random_range(0..n);
    let mut shift = rand::random_range(0..n);
    let mut out = BTreeMap::new();
    for i in 0..usize::try_from(partitions).unwrap_or(0) {
        let p = first_partition + i32::try_from(i).unwrap_or(i32::MAX);
        let current = start + usize::try_from(p).unwrap_or(0);
        if current > 0 && current % n == 0 {
            shift += 1;
        }
        let first = current % n;
        let mut replicas = vec![sorted[first]];
        for j in 0..rf - 1 {
            let s = 1 + (shift + j) % (n - 1).max(1);
            replicas.push(sorted[(first + s) % n]);
        }
        out.insert(p, replicas);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_spreads_leaders_and_never_repeats_a_broker() {
        for _ in 0..50 {
            let a = assign_replicas(&[3, 1, 2], 6, 3, 0).expect("assignment");
            assert_eq!(a.len(), 6);
            let mut leaders = BTreeMap::new();
            for r in a.values() {
                let mut s = r.clone();
                s.sort_unstable();
                s.dedup();
                assert_eq!(s.len(), 3, "{r:?}");
                *leaders.entry(r[0]).or_insert(0) += 1;
            }
            assert!(leaders.values().all(|&c| c == 2), "{leaders:?}");
        }
    }

    #[test]
    fn bad_requests_get_kafka_errors() {
        let code = |r: Result<_, AdminError>| r.err().map(|e| e.error_code());
        assert_eq!(code(assign_replicas(&[1], 1, 2, 0)), Some(38));
        assert_eq!(code(assign_replicas(&[1], 0, 1, 0)), Some(37));
        assert_eq!(
            assign_replicas(&[1], 3, 1, 0).map(|a| a.len()).ok(),
            Some(3)
        );
    }
}
