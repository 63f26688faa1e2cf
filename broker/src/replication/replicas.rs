//! The partitions this broker hosts, kept in step with the metadata image:
//! a log is opened (or created) for every partition assigned here, its
//! leadership and leader epoch follow the partition state (an ISR-only
//! change keeps the leader epoch, so it restarts nothing), and logs of
//! deleted topics are removed. Handlers look partitions up without locks
//! held across I/O, and wait on the *applied* image: once a topic shows
//! there with a leader here, its log is open and takes writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::{fetcher, ReplicaSet};
use crate::cluster::{
    wait_for_image, AdminError, Cluster, IsrChange, MetadataImage, PartitionState,
};
use crate::log::{Log, LogConfig, LogManager};

/// One hosted partition.
#[derive(Debug)]
pub struct Replica {
    pub log: Arc<Log>,
    /// This broker's id.
    pub me: i32,
    pub repl: ReplicaSet,
    leader: AtomicBool,
    leader_epoch: AtomicI32,
    /// The follower's fetcher: (leader address, leader epoch) it follows.
    fetcher: Mutex<Option<(String, i32, AbortHandle)>>,
}

impl Replica {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// After a leader append or a follower fetch: wake replica fetches and
    /// move the high watermark forward to what the whole ISR has.
    pub fn advance(&self) {
        self.repl.notify_appended(self.log.log_end_offset());
        self.repl.advance_high_watermark(&self.log);
    }

    /// Starts, keeps or stops the follower fetcher for the current role.
    fn follow(self: &Arc<Self>, topic: &Arc<str>, partition: i32, leader_addr: Option<String>) {
        let mut f = self.fetcher.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = self.leader_epoch();
        let wanted = leader_addr.filter(|_| !self.is_leader());
        let same = match (&*f, &wanted) {
            (Some((addr, e, _)), Some(w)) => addr == w && *e == epoch,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some((_, _, task)) = f.take() {
            task.abort();
        }
        if let Some(addr) = wanted {
            let src = fetcher::Source {
                me: self.me,
                topic: topic.clone(),
                partition,
                leader_addr: addr.clone(),
                leader_epoch: epoch,
            };
            let task = tokio::spawn(fetcher::run(src, self.clone()));
            *f = Some((addr, epoch, task.abort_handle()));
        }
    }

    fn stop_following(&self) {
        if let Some((_, _, task)) = self
            .fetcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// What the image says about one partition hosted here.
struct Wanted {
    replicas: Vec<i32>,
    state: PartitionState,
    config: LogConfig,
    /// The leader's inter-broker address, when another broker leads.
    leader_addr: Option<String>,
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
        session: bool,
        logs: &Arc<LogManager>,
        defaults: &LogConfig,
    ) {
        let mut wanted: HashMap<Key, Wanted> = HashMap::new();
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
                let leader_addr = (state.leader >= 0 && state.leader != me)
                    .then(|| img.endpoint(state.leader, "PLAINTEXT"))
                    .flatten()
                    .map(|e| format!("{}:{}", e.host, e.port));
                wanted.insert(
                    (topic.name.clone(), p),
                    Wanted {
                        replicas: part.replicas.clone(),
                        state: state.clone(),
                        config: config.clone(),
                        leader_addr,
                    },
                );
            }
        }
        let current: HashMap<Key, Arc<Replica>> =
            self.map.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = HashMap::with_capacity(wanted.len());
        let now = crate::now_ms();
        for (key, w) in wanted {
            // Without a coordinator session another broker may already
            // lead: stop taking writes (Kafka's fencing of a zombie leader).
            let leader = w.state.leader == me && session;
            let (epoch, config) = (w.state.leader_epoch, w.config);
            let replica = match current.get(&key) {
                Some(r) => {
                    if *r.log.config() != config {
                        r.log.set_config(config);
                    }
                    r.repl
                        .update(w.replicas.clone(), &w.state, now, || r.log.high_watermark());
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
                            me,
                            repl: ReplicaSet::new(me, w.replicas.clone(), &w.state, now),
                            leader: AtomicBool::new(false),
                            leader_epoch: AtomicI32::new(epoch),
                            fetcher: Mutex::new(None),
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
            replica.follow(&key.0, key.1, w.leader_addr);
            if leader {
                replica.advance();
            }
            next.insert(key, replica);
        }
        let gone: Vec<Key> = current
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        for key in &gone {
            if let Some(r) = current.get(key) {
                r.stop_following();
            }
        }
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

/// The leader's periodic ISR check (Kafka's `isr-expiration` task): drops
/// followers that have not caught up within `lag`.
pub async fn shrink_isrs(
    replicas: Arc<Replicas>,
    cluster: Cluster,
    lag: Duration,
    shutdown: CancellationToken,
) {
    let lag_ms = i64::try_from(lag.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(lag / 2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let all: Vec<(Key, Arc<Replica>)> = replicas
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for ((topic, p), r) in all {
            if !r.is_leader() {
                continue;
            }
            if let Some(change) = r.repl.shrink(r.me, crate::now_ms(), lag_ms) {
                tracing::info!(topic = %topic, partition = p, isr = ?change.isr, "shrinking the ISR");
                write_isr(&cluster, &topic, p, &r, change).await;
            }
        }
    }
}

/// Writes an ISR change to the partition state znode (conditional on the
/// version the leader last saw); a stale version lets the next image decide.
pub async fn write_isr(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    replica: &Replica,
    change: IsrChange,
) {
    if let Err(e) = cluster.write_isr(topic, partition, &change).await {
        tracing::info!(topic, partition, error = %e, "ISR change not written");
        replica.repl.isr_write_failed();
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
    let mut session = cluster.subscribe_session();
    loop {
        let img = rx.borrow_and_update().clone();
        let live = session.borrow_and_update().is_some();
        if !img.cluster_id.is_empty() {
            replicas
                .apply(&img, cluster.broker_id(), live, &logs, &defaults)
                .await;
            replicas.applied.send_replace(img);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            changed = session.changed() => if changed.is_err() { return },
        }
    }
}
