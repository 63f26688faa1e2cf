//! The partitions this broker hosts, kept in step with the metadata image:
//! a log is opened (or created) for every partition assigned here, its
//! leadership and leader epoch follow the partition state, and logs of
//! deleted topics are removed. Handlers look partitions up without locks
//! held across I/O, and wait on the *applied* image: once a topic shows
//! there with a leader here, its log is open and takes writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::{wait_for_image, AdminError, Cluster, MetadataImage};
use crate::log::{Log, LogConfig, LogManager};

/// One hosted partition.
#[derive(Debug)]
pub struct Replica {
    pub log: Arc<Log>,
    leader: AtomicBool,
    leader_epoch: AtomicI32,
}

impl Replica {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }
}

type Key = (Arc<str>, i32);

#[derive(Debug)]
pub struct Replicas {
    map: RwLock<HashMap<Key, Arc<Replica>>>,
    /// The last image whose partitions are all in `map`.
    applied: watch::Sender<Arc<MetadataImage>>,
}

impl Default for Replicas {
    fn default() -> Self {
        Replicas {
            map: RwLock::default(),
            applied: watch::Sender::new(Arc::new(MetadataImage::default())),
        }
    }
}

impl Replicas {
    /// The newest image this broker acts on (its logs are open).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().clone()
    }

    /// Waits until `ready` holds for an applied image, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        ready: impl Fn(&MetadataImage) -> bool,
    ) -> Result<(), AdminError> {
        wait_for_image(self.applied.subscribe(), timeout, ready).await
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Replica>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(Arc::from(topic), partition)).cloned()
    }

    /// Applies one image: opens what is new, updates leadership, drops what
    /// left. Log creation happens on the blocking pool.
    pub async fn apply(
        &self,
        img: &MetadataImage,
        me: i32,
        logs: &Arc<LogManager>,
        defaults: &LogConfig,
    ) {
        let mut wanted: HashMap<Key, (bool, i32, LogConfig)> = HashMap::new();
        for topic in img.topics.values() {
            let config = match LogConfig::from_topic_configs(defaults, &topic.configs) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(topic = %topic.name, error = %e, "invalid topic config, using defaults");
                    defaults.clone()
                }
            };
            for (p, part) in topic.partitions.iter().enumerate() {
                let (Some(state), true) = (&part.state, part.replicas.contains(&me)) else {
                    continue;
                };
                let p = i32::try_from(p).unwrap_or(i32::MAX);
                wanted.insert(
                    (topic.name.clone(), p),
                    (state.leader == me, state.leader_epoch, config.clone()),
                );
            }
        }
        let current: HashMap<Key, Arc<Replica>> =
            self.map.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = HashMap::with_capacity(wanted.len());
        for (key, (leader, epoch, config)) in wanted {
            let replica = match current.get(&key) {
                Some(r) => {
                    if *r.log.config() != config {
                        r.log.set_config(config);
                    }
                    r.clone()
                }
                None => {
                    let (logs, topic, p) = (logs.clone(), key.0.clone(), key.1);
                    let opened =
                        tokio::task::spawn_blocking(move || logs.get_or_create(&topic, p, config))
                            .await;
                    match opened {
                        Ok(Ok(log)) => Arc::new(Replica {
                            log,
                            leader: AtomicBool::new(false),
                            leader_epoch: AtomicI32::new(epoch),
                        }),
                        Ok(Err(e)) => {
                            tracing::error!(topic = %key.0, partition = key.1, error = %e, "cannot open the partition's log");
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "log open task failed");
                            continue;
                        }
                    }
                }
            };
            if replica.is_leader() != leader || replica.leader_epoch() != epoch {
                tracing::info!(topic = %key.0, partition = key.1, leader, leader_epoch = epoch, "partition role");
            }
            replica.leader_epoch.store(epoch, Ordering::Release);
            replica.leader.store(leader, Ordering::Release);
            next.insert(key, replica);
        }
        let gone: Vec<Key> = current
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = next;
        for (topic, p) in gone {
            // Only a topic that left the image entirely is deleted: a
            // partition reassigned away keeps its data until replication
            // handles moves.
            if img.topics.contains_key(&topic) {
                continue;
            }
            let logs = logs.clone();
            let t = topic.clone();
            let res = tokio::task::spawn_blocking(move || logs.delete(&t, p)).await;
            match res {
                Ok(Ok(true)) => tracing::info!(topic = %topic, partition = p, "log deleted"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(topic = %topic, partition = p, error = %e, "log deletion failed")
                }
                Err(e) => tracing::warn!(error = %e, "log deletion task failed"),
            }
        }
    }
}

/// Follows the image until shutdown. Only acts once the broker has an image
/// from the coordinator, so a broker that starts while the coordinator is
/// away keeps its logs.
pub async fn follow(
    replicas: Arc<Replicas>,
    cluster: Cluster,
    logs: Arc<LogManager>,
    defaults: LogConfig,
    shutdown: CancellationToken,
) {
    let mut rx = cluster.subscribe();
    loop {
        let img = rx.borrow_and_update().clone();
        if !img.cluster_id.is_empty() {
            replicas
                .apply(&img, cluster.broker_id(), &logs, &defaults)
                .await;
            replicas.applied.send_replace(img);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}
