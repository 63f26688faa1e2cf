//! The group coordinator at work: one task owns the pure
//! [`GroupCoordinatorState`], runs its timers and answers parked JoinGroup
//! and SyncGroup requests when their rebalance completes. Committed offsets
//! go to the coordinator (`cluster::offsets`) with a write-through cache.
//! Which broker coordinates a group is derived from the live brokers by
//! rendezvous hashing, so it moves when brokers come and go and only the
//! groups of a departed broker move.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    Completion, GroupConfig, GroupCoordinatorState, GroupOverview, GroupSummary, JoinOutcome,
    JoinRequest, JoinResponse, LeaveMember, LeaveResult, Response, SyncOutcome, SyncRequest,
    SyncResponse,
};
use crate::cluster::offsets::{self, CommittedOffset, GroupOffsets};
use crate::cluster::{AdminError, Cluster, MetadataImage};

/// The broker that coordinates `group` among the live brokers: the highest
/// CRC-32C of (group, broker id). Every broker computes the same answer.
pub fn coordinator_for(group: &str, img: &MetadataImage) -> Option<i32> {
    img.brokers
        .keys()
        .copied()
        .max_by_key(|b| crc32c::crc32c_append(crc32c::crc32c(group.as_bytes()), &b.to_be_bytes()))
}

type Job = Box<dyn FnOnce(&mut Core, i64) + Send>;

/// State owned by the coordinator task.
struct Core {
    state: GroupCoordinatorState,
    /// Parked requests by (group, member id).
    waiters: HashMap<(String, String), Waiter>,
}

enum Waiter {
    Join(oneshot::Sender<JoinResponse>),
    Sync(oneshot::Sender<SyncResponse>),
}

impl Core {
    fn deliver(&mut self, completions: Vec<Completion>) {
        for c in completions {
            let waiter = self.waiters.remove(&(c.group_id, c.member_id));
            match (waiter, c.response) {
                (Some(Waiter::Join(tx)), Response::Join(r)) => {
                    let _ = tx.send(r);
                }
                (Some(Waiter::Sync(tx)), Response::Sync(r)) => {
                    let _ = tx.send(r);
                }
                // Nobody waiting (connection gone) or a mismatch the state
                // machine never produces: nothing to answer.
                _ => {}
            }
        }
    }
}

/// Handle to the coordinator task and the offsets cache; cheap to clone.
#[derive(Clone)]
pub struct GroupService {
    jobs: mpsc::UnboundedSender<Job>,
    offsets: Arc<OffsetCache>,
    cluster: Cluster,
}

impl std::fmt::Debug for GroupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupService").finish_non_exhaustive()
    }
}

impl GroupService {
    pub fn start(
        config: GroupConfig,
        cluster: Cluster,
        shutdown: CancellationToken,
    ) -> GroupService {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(config, rx, shutdown));
        GroupService {
            jobs,
            offsets: Arc::new(OffsetCache::default()),
            cluster,
        }
    }

    /// Runs `f` on the coordinator task; `None` if it has stopped.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, i64) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |core, now| {
            let _ = tx.send(f(core, now));
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }

    pub async fn join(&self, group: String, req: JoinRequest) -> JoinResponse {
        let member = req.member_id.clone();
        let parked = self
            .call(move |core, now| {
                let (outcome, done) = core.state.join(now, &group, req);
                core.deliver(done);
                match outcome {
                    JoinOutcome::Done(r) => Ok(r),
                    JoinOutcome::Pending { member_id } => {
                        let (tx, rx) = oneshot::channel();
                        // A second join from the same member replaces the
                        // first, which Kafka leaves unanswered.
                        core.waiters
                            .insert((group, member_id.clone()), Waiter::Join(tx));
                        Err((member_id, rx))
                    }
                }
            })
            .await;
        match parked {
            Some(Ok(r)) => r,
            Some(Err((member_id, rx))) => rx.await.unwrap_or_else(|_| {
                JoinResponse::error(member_id, ResponseError::RebalanceInProgress)
            }),
            None => JoinResponse::error(member, ResponseError::CoordinatorNotAvailable),
        }
    }

    pub async fn sync(&self, group: String, req: SyncRequest) -> SyncResponse {
        let parked = self
            .call(move |core, now| {
                let member = req.member_id.clone();
                let (outcome, done) = core.state.sync(now, &group, req);
                core.deliver(done);
                match outcome {
                    SyncOutcome::Done(r) => Ok(r),
                    SyncOutcome::Pending => {
                        let (tx, rx) = oneshot::channel();
                        core.waiters.insert((group, member), Waiter::Sync(tx));
                        Err(rx)
                    }
                }
            })
            .await;
        match parked {
            Some(Ok(r)) => r,
            Some(Err(rx)) => rx
                .await
                .unwrap_or_else(|_| SyncResponse::error(ResponseError::RebalanceInProgress)),
            None => SyncResponse::error(ResponseError::CoordinatorNotAvailable),
        }
    }

    pub async fn heartbeat(
        &self,
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.call(move |core, now| {
            core.state
                .heartbeat(now, &group, &member, instance.as_deref(), generation)
        })
        .await
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
    }

    pub async fn leave(
        &self,
        group: String,
        members: Vec<LeaveMember>,
    ) -> Result<Vec<LeaveResult>, ResponseError> {
        self.call(move |core, now| {
            let (results, done) = core.state.leave(now, &group, &members)?;
            core.deliver(done);
            Ok(results)
        })
        .await
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
    }

    pub async fn describe(&self, group: String) -> Option<GroupSummary> {
        self.call(move |core, _| core.state.describe(&group)).await
    }

    pub async fn list(&self, states: Vec<String>) -> Vec<GroupOverview> {
        self.call(move |core, _| core.state.list(&states))
            .await
            .unwrap_or_default()
    }

    /// DeleteGroups: the group must be empty (or only have offsets).
    pub async fn delete(&self, group: String) -> Result<(), ResponseError> {
        let g = group.clone();
        let member_state = self.call(move |core, _| core.state.delete(&g)).await;
        let has_offsets = !self
            .fetch_all(&group)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?
            .is_empty();
        match member_state {
            Some(Ok(())) => {}
            Some(Err(ResponseError::GroupIdNotFound)) if has_offsets => {}
            Some(Err(e)) => return Err(e),
            None => return Err(ResponseError::CoordinatorNotAvailable),
        }
        let client = self
            .cluster
            .client()
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        offsets::delete_group(&client, &group)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        self.offsets.forget(&group);
        Ok(())
    }

    /// Kafka's OffsetCommit validation against the group's membership.
    pub async fn validate_commit(
        &self,
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.call(move |core, now| {
            core.state
                .validate_offset_commit(now, &group, &member, instance.as_deref(), generation)
        })
        .await
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
    }

    /// Stores offsets durably, then in the cache.
    pub async fn commit(
        &self,
        group: &str,
        entries: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), AdminError> {
        let slot = self.offsets.slot(group, &self.cluster.image());
        let mut cached = slot.lock().await;
        let client = self.cluster.client().await?;
        offsets::commit(&client, group, &entries).await?;
        if let Some(map) = cached.as_mut() {
            for (t, p, c) in entries {
                map.insert((t, p), c);
            }
        }
        Ok(())
    }

    /// Every committed offset of `group` (from the cache, loaded once).
    pub async fn fetch_all(&self, group: &str) -> Result<GroupOffsets, AdminError> {
        let slot = self.offsets.slot(group, &self.cluster.image());
        let mut cached = slot.lock().await;
        if let Some(map) = cached.as_ref() {
            return Ok(map.clone());
        }
        let client = self.cluster.client().await?;
        let map = offsets::load(&client, group).await?;
        *cached = Some(map.clone());
        Ok(map)
    }

    /// OffsetDelete.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), AdminError> {
        let slot = self.offsets.slot(group, &self.cluster.image());
        let mut cached = slot.lock().await;
        let client = self.cluster.client().await?;
        offsets::delete(&client, group, partitions).await?;
        if let Some(map) = cached.as_mut() {
            for key in partitions {
                map.remove(key);
            }
        }
        Ok(())
    }

    /// Groups known here, with members or with committed offsets.
    pub async fn all_groups(&self, states: Vec<String>) -> Vec<GroupOverview> {
        let mut listed: BTreeMap<String, GroupOverview> = self
            .list(states.clone())
            .await
            .into_iter()
            .map(|g| (g.group_id.clone(), g))
            .collect();
        let wants_empty = states.is_empty() || states.iter().any(|s| s == "Empty");
        if wants_empty {
            if let Ok(client) = self.cluster.client().await {
                let img = self.cluster.image();
                for g in offsets::groups(&client).await.unwrap_or_default() {
                    if coordinator_for(&g, &img) == Some(self.cluster.broker_id()) {
                        listed.entry(g.clone()).or_insert(GroupOverview {
                            group_id: g,
                            protocol_type: String::new(),
                            state: super::GroupState::Empty,
                        });
                    }
                }
            }
        }
        listed.into_values().collect()
    }
}

/// Per-group cached offsets, dropped whenever the set of live brokers
/// changes (a group may have been coordinated elsewhere meanwhile) or a
/// topic comes or goes (a deleted topic's offsets are deleted with it).
#[derive(Default)]
struct OffsetCache {
    inner: Mutex<(Fingerprint, HashMap<String, Slot>)>,
}

/// Live brokers, and the topic ids XOR-ed together.
type Fingerprint = (Vec<i32>, u128);

type Slot = Arc<tokio::sync::Mutex<Option<GroupOffsets>>>;

impl OffsetCache {
    fn slot(&self, group: &str, img: &MetadataImage) -> Slot {
        let brokers: Vec<i32> = img.brokers.keys().copied().collect();
        let topics = img
            .topics
            .values()
            .fold(0u128, |acc, t| acc ^ t.id.as_u128());
        let fingerprint = (brokers, topics);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.0 != fingerprint {
            *inner = (fingerprint, HashMap::new());
        }
        inner.1.entry(group.to_owned()).or_default().clone()
    }

    fn forget(&self, group: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .remove(group);
    }
}

async fn run(
    config: GroupConfig,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    shutdown: CancellationToken,
) {
    let mut core = Core {
        state: GroupCoordinatorState::new(config),
        waiters: HashMap::new(),
    };
    loop {
        let now = crate::now_ms();
        let wait = core
            .state
            .next_deadline()
            .map(|d| Duration::from_millis(u64::try_from(d - now).unwrap_or(0)))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job(&mut core, crate::now_ms()),
                None => return,
            },
            _ = tokio::time::sleep(wait) => {
                let done = core.state.tick(crate::now_ms());
                core.deliver(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::BrokerInfo;

    fn image(ids: &[i32]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for &id in ids {
            img.brokers.insert(
                id,
                BrokerInfo {
                    id,
                    rack: None,
                    endpoints: Vec::new(),
                    epoch: 0,
                },
            );
        }
        img
    }

    #[test]
    fn coordinators_spread_and_only_a_departed_brokers_groups_move() {
        let three = image(&[1, 2, 3]);
        let two = image(&[1, 3]);
        let mut per_broker = BTreeMap::new();
        for i in 0..300 {
            let g = format!("group-{i}");
            let before = coordinator_for(&g, &three).expect("live broker");
            *per_broker.entry(before).or_insert(0) += 1;
            let after = coordinator_for(&g, &two).expect("live broker");
            if before != 2 {
                assert_eq!(before, after, "{g} moved although its broker stayed");
            }
        }
        assert!(per_broker.values().all(|&n| n > 50), "{per_broker:?}");
        assert_eq!(coordinator_for("g", &image(&[])), None);
    }
}
