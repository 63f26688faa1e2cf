//! The group coordinator at work: one task owns the pure
//! [`GroupCoordinatorState`] (in [`Core`]), runs its timers and answers
//! parked JoinGroup and SyncGroup requests when their rebalance completes.
//! Committed offsets go to the coordinator (`cluster::offsets`) with a
//! write-through cache; group membership is persisted next to them
//! (`persist.rs`) and a group is loaded on the first request that touches
//! it here. Which broker coordinates a group is derived from the live
//! brokers by rendezvous hashing, so it moves when brokers come and go and
//! only the groups of a departed broker move.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::offset_cache::OffsetCache;
use super::persist::Persist;
pub(super) use super::task::Core;
use super::task::Waiter;
use super::{
    GroupConfig, GroupCoordinatorState, GroupOverview, GroupSummary, JoinOutcome, JoinRequest,
    JoinResponse, LeaveMember, LeaveResult, SyncOutcome, SyncRequest, SyncResponse,
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

pub(super) type Job = Box<dyn FnOnce(&mut Core, i64) + Send>;

/// How many requests may wait for the group task. A job is one request's
/// small closure, and the task runs one in microseconds, so a full queue
/// means the task is stuck or badly behind: connection tasks then wait in
/// `send` (and stop reading their sockets) instead of piling up memory.
/// 1024 is well above what members keep in flight in normal operation (a
/// heartbeat or commit, plus a join or sync, per member) and drains in about
/// a millisecond, far below any session timeout.
pub(super) const JOB_QUEUE_CAPACITY: usize = 1024;

/// Handle to the coordinator task and the offsets cache; cheap to clone.
#[derive(Clone)]
pub struct GroupService {
    jobs: mpsc::Sender<Job>,
    offsets: Arc<OffsetCache>,
    cluster: Cluster,
    persist: Persist,
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
        let (jobs, rx) = mpsc::channel(JOB_QUEUE_CAPACITY);
        let persist = Persist {
            cluster: cluster.clone(),
            jobs: jobs.downgrade(),
        };
        let core = Core::new(GroupCoordinatorState::new(config), persist.clone());
        tokio::spawn(run(core, rx, cluster.clone(), shutdown));
        GroupService {
            jobs,
            offsets: Arc::new(OffsetCache::default()),
            cluster,
            persist,
        }
    }

    /// Runs `f` on the coordinator task; `None` if it has stopped. Waits
    /// while the job queue is full.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, i64) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |core, now| {
            let out = f(core, now);
            core.finish(move || {
                let _ = tx.send(out);
            });
        });
        self.jobs.send(job).await.ok()?;
        rx.await.ok()
    }

    /// Runs `f` on the coordinator task once `group` is loaded here (read
    /// from the coordinator on its first request), then persists what the
    /// group asks to. COORDINATOR_NOT_AVAILABLE if the task has stopped or
    /// the group's metadata cannot be read.
    async fn call_group<T, F>(&self, group: String, f: F) -> Result<T, ResponseError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Core, i64) -> T + Send + 'static,
    {
        let g = group.clone();
        let first = self
            .call(move |core, now| {
                if !core.is_loaded(&g) {
                    return Err(f);
                }
                let out = f(core, now);
                core.collect_store(&g);
                Ok(out)
            })
            .await
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let f = match first {
            Ok(out) => return Ok(out),
            Err(f) => f,
        };
        let stored = self.persist.load(&group).await?;
        self.call(move |core, now| {
            core.restore(now, &group, stored);
            let out = f(core, now);
            core.collect_store(&group);
            out
        })
        .await
        .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    pub async fn join(&self, group: String, req: JoinRequest) -> JoinResponse {
        let member = req.member_id.clone();
        let g = group.clone();
        let parked = self
            .call_group(g, move |core, now| {
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
            Ok(Ok(r)) => r,
            Ok(Err((member_id, rx))) => rx.await.unwrap_or_else(|_| {
                JoinResponse::error(member_id, ResponseError::RebalanceInProgress)
            }),
            Err(e) => JoinResponse::error(member, e),
        }
    }

    pub async fn sync(&self, group: String, req: SyncRequest) -> SyncResponse {
        let g = group.clone();
        let parked = self
            .call_group(g, move |core, now| {
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
            Ok(Ok(r)) => r,
            Ok(Err(rx)) => rx
                .await
                .unwrap_or_else(|_| SyncResponse::error(ResponseError::RebalanceInProgress)),
            Err(e) => SyncResponse::error(e),
        }
    }

    pub async fn heartbeat(
        &self,
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let g = group.clone();
        self.call_group(g, move |core, now| {
            core.state
                .heartbeat(now, &group, &member, instance.as_deref(), generation)
        })
        .await?
    }

    pub async fn leave(
        &self,
        group: String,
        members: Vec<LeaveMember>,
    ) -> Result<Vec<LeaveResult>, ResponseError> {
        let g = group.clone();
        self.call_group(g, move |core, now| {
            let (results, done) = core.state.leave(now, &group, &members)?;
            core.deliver(done);
            Ok(results)
        })
        .await?
    }

    pub async fn describe(&self, group: String) -> Option<GroupSummary> {
        let g = group.clone();
        self.call_group(g, move |core, _| core.state.describe(&group))
            .await
            .ok()
    }

    pub async fn list(&self, states: Vec<String>) -> Vec<GroupOverview> {
        self.call(move |core, _| core.state.list(&states))
            .await
            .unwrap_or_default()
    }

    /// DeleteGroups: the group must be empty (or only have offsets). Its
    /// stores still in flight finish first and later ones are dropped, so
    /// the deleted group's metadata cannot reappear.
    pub async fn delete(&self, group: String) -> Result<(), ResponseError> {
        let g = group.clone();
        let (member_state, slot) = self
            .call_group(group.clone(), move |core, _| {
                let deleted = core.state.delete(&g);
                let slot = match deleted {
                    Ok(()) | Err(ResponseError::GroupIdNotFound) => core.unload(&g),
                    Err(_) => None,
                };
                (deleted, slot)
            })
            .await?;
        let has_offsets = !self
            .fetch_all(&group)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?
            .is_empty();
        match member_state {
            Ok(()) => {}
            Err(ResponseError::GroupIdNotFound) if has_offsets => {}
            Err(e) => return Err(e),
        }
        if let Some(slot) = slot {
            slot.lock().await.dead = true;
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
        let g = group.clone();
        self.call_group(g, move |core, now| {
            core.state
                .validate_offset_commit(now, &group, &member, instance.as_deref(), generation)
        })
        .await?
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

    /// Groups known here, with members or with committed offsets. Groups
    /// this broker coordinates but has not loaded yet are loaded first, so
    /// that they are listed in their persisted state.
    pub async fn all_groups(&self, states: Vec<String>) -> Vec<GroupOverview> {
        let stored = match self.cluster.client().await {
            Ok(client) => offsets::groups(&client).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let img = self.cluster.image();
        let ours: Vec<String> = stored
            .into_iter()
            .filter(|g| coordinator_for(g, &img) == Some(self.cluster.broker_id()))
            .collect();
        for g in &ours {
            // A group that cannot be loaded is still listed below, as Empty.
            let _ = self.call_group(g.clone(), |_, _| ()).await;
        }
        let known: BTreeSet<String> = self
            .list(Vec::new())
            .await
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        let mut listed: BTreeMap<String, GroupOverview> = self
            .list(states.clone())
            .await
            .into_iter()
            .map(|g| (g.group_id.clone(), g))
            .collect();
        let wants_empty = states.is_empty() || states.iter().any(|s| s == "Empty");
        if wants_empty {
            // Only committed offsets (or unreadable metadata): Empty.
            for g in ours.into_iter().filter(|g| !known.contains(g)) {
                listed.entry(g.clone()).or_insert(GroupOverview {
                    group_id: g,
                    protocol_type: String::new(),
                    state: super::GroupState::Empty,
                });
            }
        }
        listed.into_values().collect()
    }
}

/// The group task: jobs in queue order, timers, and unloading the groups
/// that move to another broker when the set of live brokers changes.
async fn run(
    mut core: Core,
    mut jobs: mpsc::Receiver<Job>,
    cluster: Cluster,
    shutdown: CancellationToken,
) {
    let mut image = cluster.subscribe();
    let mut brokers = broker_set(&image.borrow_and_update());
    let mut watching = true;
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
            changed = image.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let img = image.borrow_and_update().clone();
                let now_live = broker_set(&img);
                if now_live != brokers {
                    brokers = now_live;
                    core.unload_moved(&img, cluster.broker_id());
                }
            }
            _ = tokio::time::sleep(wait) => {
                let done = core.state.tick(crate::now_ms());
                core.deliver(done);
                core.collect_all_stores();
            }
        }
        // Answers a job or a timer produced outside `call`.
        core.finish(|| {});
    }
}

fn broker_set(img: &MetadataImage) -> BTreeSet<i32> {
    img.brokers.keys().copied().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::task::unconstrained;

    use super::*;
    use crate::cluster::{BrokerInfo, SessionConfig};

    /// A service whose coordinator is unreachable: enough for the job queue.
    fn service(shutdown: &CancellationToken) -> GroupService {
        let cfg = SessionConfig::for_tests("127.0.0.1:1");
        let (cluster, _session) = Cluster::start(cfg, shutdown.clone());
        GroupService::start(GroupConfig::default(), cluster, shutdown.clone())
    }

    /// On the current-thread runtime the group task runs only when the test
    /// awaits, so the queue fills up. A bounded queue makes the next caller
    /// wait (and a caller that gives up meanwhile leaves nothing behind);
    /// an unbounded one would have queued its job at once. (`unconstrained`:
    /// tokio's task budget would otherwise make sends wait after 128 of them,
    /// whatever the bound.)
    #[tokio::test]
    async fn a_full_job_queue_makes_callers_wait_and_loses_nothing() {
        let shutdown = CancellationToken::new();
        let svc = service(&shutdown);
        let mut queued = Vec::new();
        for _ in 0..JOB_QUEUE_CAPACITY {
            let mut call = Box::pin(unconstrained(svc.call(|_, _| ())));
            assert!(futures::poll!(call.as_mut()).is_pending());
            queued.push(call);
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let mut abandoned = Box::pin(unconstrained(
            svc.call(move |_, _| flag.store(true, Ordering::SeqCst)),
        ));
        assert!(futures::poll!(abandoned.as_mut()).is_pending());
        drop(abandoned);
        let mut waiting = Box::pin(svc.call(|_, _| 7));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        for call in queued {
            assert_eq!(call.await, Some(()));
        }
        assert_eq!(waiting.await, Some(7), "a waiting caller is served");
        assert_eq!(svc.call(|_, _| ()).await, Some(()));
        assert!(
            !ran.load(Ordering::SeqCst),
            "a job was queued beyond the bound"
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_stopped_group_task_answers_coordinator_not_available() {
        let shutdown = CancellationToken::new();
        let svc = service(&shutdown);
        shutdown.cancel();
        svc.jobs.closed().await;
        let gone = ResponseError::CoordinatorNotAvailable;
        let heartbeat = svc.heartbeat("g".into(), "m".into(), None, 1).await;
        assert_eq!(heartbeat, Err(gone));
        let join = JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            require_known_member_id: true,
            supports_skip_assignment: false,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: Vec::new(),
        };
        assert_eq!(svc.join("g".into(), join).await.error_code, gone.code());
        let sync = SyncRequest {
            member_id: "m".into(),
            group_instance_id: None,
            generation_id: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: Vec::new(),
        };
        assert_eq!(svc.sync("g".into(), sync).await.error_code, gone.code());
        assert_eq!(svc.describe("g".into()).await, None);
        assert_eq!(svc.delete("g".into()).await, Err(gone));
    }

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
