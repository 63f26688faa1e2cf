//! The group task's I/O for membership: loading a group's persisted
//! metadata when this broker first sees a request for it, and storing the
//! snapshots the state machine asks for (`group::znode`).
//!
//! Stores run outside the group task, so they are ordered per group by a
//! [`Slot`]: each store carries a sequence number from the task, and one
//! that finds a later one already tried is dropped. The slot also keeps
//! the znode version this broker last read or wrote, which makes every
//! write conditional: if another broker wrote meanwhile (it coordinates the
//! group now), ours fails and the group is unloaded here.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use tokio::sync::mpsc;

use super::service::{Core, Job};
use super::znode::{self, StoreError, Stored};
use super::GroupSnapshot;
use crate::cluster::Cluster;

/// A group's write ordering and fencing state, shared by its stores.
pub(super) type Slot = Arc<tokio::sync::Mutex<SlotState>>;

#[derive(Debug)]
pub(super) struct SlotState {
    version: Version,
    /// The sequence number of the newest store tried: an older one that
    /// comes later is dropped even when that try failed, so that what is
    /// stored never goes back in time.
    last_seq: u64,
    /// The group was deleted or another broker took it over: store nothing more.
    pub(super) dead: bool,
}

/// What this broker knows of the metadata znode.
#[derive(Debug, Clone, Copy)]
enum Version {
    /// There is none: a write creates it.
    Absent,
    /// At this version, as this broker last read or wrote it.
    At(i32),
    /// A write's outcome is unknown (the session failed): read it again.
    Unknown,
}

pub(super) fn new_slot(stored: &Stored) -> Slot {
    Arc::new(tokio::sync::Mutex::new(SlotState {
        version: stored.version.map_or(Version::Absent, Version::At),
        last_seq: 0,
        dead: false,
    }))
}

/// One snapshot to write.
pub(super) struct Store {
    pub(super) group: String,
    pub(super) seq: u64,
    pub(super) snapshot: GroupSnapshot,
    pub(super) slot: Slot,
}

/// Loads and stores group metadata; cheap to clone.
#[derive(Clone)]
pub(super) struct Persist {
    pub(super) cluster: Cluster,
    /// For unloading a group after a conflict; weak, so that the task
    /// still stops once every `GroupService` handle is gone.
    pub(super) jobs: mpsc::WeakSender<Job>,
}

impl Persist {
    /// The group's persisted metadata. Failing to read it must not start
    /// the group afresh (that would be the rebalance this avoids), so the
    /// request is answered COORDINATOR_NOT_AVAILABLE and retried.
    pub(super) async fn load(&self, group: &str) -> Result<Stored, ResponseError> {
        let loaded = match self.cluster.client().await {
            Ok(client) => znode::load(&client, group).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        loaded.map_err(|error| {
            tracing::warn!(group, error, "group metadata unavailable");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// Writes `store` unless a later snapshot of the group was written
    /// already. A failed write is logged and the members carry on: only a
    /// restart before the next successful store would make them rejoin.
    pub(super) async fn write(&self, store: Store) {
        let conflict = {
            let mut slot = store.slot.lock().await;
            if slot.dead || store.seq <= slot.last_seq {
                return;
            }
            slot.last_seq = store.seq;
            match self.try_write(&slot, &store).await {
                Ok(version) => {
                    slot.version = Version::At(version);
                    false
                }
                Err(StoreError::Conflict) => {
                    slot.dead = true;
                    true
                }
                Err(e) => {
                    tracing::warn!(group = store.group, error = %e, "group metadata not stored");
                    slot.version = Version::Unknown;
                    false
                }
            }
        };
        if conflict {
            tracing::warn!(
                group = store.group,
                "group metadata changed by another coordinator; unloading the group"
            );
            self.unload(store.group, store.slot).await;
        }
    }

    async fn try_write(&self, slot: &SlotState, store: &Store) -> Result<i32, StoreError> {
        let client = self
            .cluster
            .client()
            .await
            .map_err(|_| StoreError::Zk(zookeeper_client::Error::ConnectionLoss))?;
        let expected = match slot.version {
            Version::Absent => None,
            Version::At(v) => Some(v),
            Version::Unknown => {
                let stored = znode::load(&client, &store.group).await?;
                let newer = stored
                    .snapshot
                    .is_some_and(|s| s.generation_id > store.snapshot.generation_id);
                if newer {
                    return Err(StoreError::Conflict);
                }
                stored.version
            }
        };
        znode::store(&client, &store.group, &store.snapshot, expected).await
    }

    /// Drops the group from the task, unless it was reloaded meanwhile
    /// (then `slot` is no longer its slot).
    async fn unload(&self, group: String, slot: Slot) {
        let Some(jobs) = self.jobs.upgrade() else {
            return;
        };
        let job: Job = Box::new(move |core: &mut Core, _| {
            if core.slot(&group).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                core.unload(&group);
            }
        });
        // The task is gone if this fails: nothing left to unload.
        let _ = jobs.send(job).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::cluster::offsets;
    use crate::cluster::SessionConfig;
    use crate::group::{GroupConfig, GroupCoordinatorState, MemberSnapshot};

    /// An in-process coordinator (as `broker start` runs in dev mode).
    async fn coordinator(dir: &Path, stop: CancellationToken) -> String {
        let cfg = coordinator::config::Config {
            client_port: 0,
            data_dir: dir.to_owned(),
            data_log_dir: dir.to_owned(),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("bound").port();
        let (ready, started) = tokio::sync::oneshot::channel();
        tokio::spawn(coordinator::server::run(cfg, listener, stop, move |_| {
            let _ = ready.send(());
        }));
        started.await.expect("the coordinator started");
        format!("127.0.0.1:{port}")
    }

    fn snapshot(generation_id: i32, leader: &str) -> GroupSnapshot {
        GroupSnapshot {
            generation_id,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader_id: Some(leader.into()),
            members: vec![MemberSnapshot {
                member_id: leader.into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocols: Vec::new(),
                assignment: bytes::Bytes::from_static(b"a"),
            }],
        }
    }

    /// Stores of one group that finish out of order, a store after another
    /// broker took the group over, and stores after the group went.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_and_foreign_stores_never_overwrite_newer_metadata() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stop = CancellationToken::new();
        let connect = coordinator(dir.path(), stop.clone()).await;
        let cfg = SessionConfig::for_tests(connect);
        let (cluster, _session) = Cluster::start(cfg, stop.clone());
        let client = cluster.client().await.expect("a session");
        let (jobs, mut queued) = mpsc::channel::<Job>(8);
        let persist = Persist {
            cluster,
            jobs: jobs.downgrade(),
        };
        let mut core = Core::new(
            GroupCoordinatorState::new(GroupConfig::default()),
            persist.clone(),
        );
        let g = "orders/eu";
        let read = |client| async move {
            let stored = znode::load(client, g).await.expect("read");
            stored.snapshot.map(|s| (s.generation_id, s.leader_id))
        };

        let stored = persist.load(g).await.expect("load");
        assert!(stored.snapshot.is_none() && stored.version.is_none());
        core.restore(0, g, stored);
        let slot = Arc::clone(core.slot(g).expect("loaded"));
        let store = |seq, generation| Store {
            group: g.to_owned(),
            seq,
            snapshot: snapshot(generation, "ours"),
            slot: Arc::clone(&slot),
        };
        // The later snapshot finished first: the earlier one is dropped.
        persist.write(store(2, 2)).await;
        persist.write(store(1, 1)).await;
        assert_eq!(read(&client).await, Some((2, Some("ours".into()))));

        // Another broker coordinates the group now and wrote generation 3.
        let theirs = znode::load(&client, g).await.expect("read");
        znode::store(&client, g, &snapshot(3, "theirs"), theirs.version)
            .await
            .expect("their store");
        persist.write(store(3, 3)).await;
        assert_eq!(read(&client).await, Some((3, Some("theirs".into()))));
        assert!(slot.lock().await.dead);
        let unload = queued.recv().await.expect("an unload job");
        unload(&mut core, 0);
        assert!(!core.is_loaded(g), "the group is unloaded here");
        persist.write(store(4, 4)).await;
        assert_eq!(read(&client).await, Some((3, Some("theirs".into()))));

        // A group removed with its offsets (DeleteGroups, or its last offsets
        // went with a topic) is created again by the next store.
        let stored = persist.load(g).await.expect("load");
        core.restore(0, g, stored);
        offsets::delete_group(&client, g).await.expect("delete");
        let slot = Arc::clone(core.slot(g).expect("loaded"));
        persist
            .write(Store {
                group: g.to_owned(),
                seq: 5,
                snapshot: snapshot(4, "ours"),
                slot,
            })
            .await;
        assert_eq!(read(&client).await, Some((4, Some("ours".into()))));
        stop.cancel();
    }
}
