//! What the group task owns: the pure [`GroupCoordinatorState`], the parked
//! JoinGroup/SyncGroup requests, and which groups have been loaded from the
//! coordinator. Each step's answers are sent only once the snapshots it
//! asked to persist are stored (Kafka answers SyncGroup after `storeGroup`),
//! so a member never holds a generation that a restart would forget.

use std::collections::HashMap;
use std::mem;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::persist::{new_slot, Persist, Slot, Store};
use super::service::coordinator_for;
use super::znode::Stored;
use super::{Completion, GroupCoordinatorState, JoinResponse, Response, SyncResponse};
use crate::cluster::MetadataImage;

pub(super) struct Core {
    pub(super) state: GroupCoordinatorState,
    /// Parked requests by (group, member id).
    pub(super) waiters: HashMap<(String, String), Waiter>,
    /// Groups whose persisted metadata was read since this broker began
    /// coordinating them, with their store slot; a group not in here is
    /// loaded before any request touches it.
    loaded: HashMap<String, Slot>,
    /// Orders stores: a later snapshot of a group has a larger number.
    next_seq: u64,
    /// Answers produced by the current step.
    replies: Vec<(Waiter, Response)>,
    /// Snapshots the current step asked to persist.
    stores: Vec<Store>,
    persist: Persist,
}

pub(super) enum Waiter {
    Join(oneshot::Sender<JoinResponse>),
    Sync(oneshot::Sender<SyncResponse>),
}

impl Core {
    pub(super) fn new(state: GroupCoordinatorState, persist: Persist) -> Self {
        Self {
            state,
            waiters: HashMap::new(),
            loaded: HashMap::new(),
            next_seq: 0,
            replies: Vec::new(),
            stores: Vec::new(),
            persist,
        }
    }

    pub(super) fn is_loaded(&self, group: &str) -> bool {
        self.loaded.contains_key(group)
    }

    pub(super) fn slot(&self, group: &str) -> Option<&Slot> {
        self.loaded.get(group)
    }

    /// Takes the group over from what was read; a group loaded meanwhile
    /// (by a concurrent request) is kept.
    pub(super) fn restore(&mut self, now: i64, group: &str, stored: Stored) {
        if self.is_loaded(group) {
            return;
        }
        self.loaded.insert(group.to_owned(), new_slot(&stored));
        if let Some(snapshot) = stored.snapshot {
            self.state.restore(now, group, snapshot);
        }
    }

    /// Forgets the group: it is deleted, or coordinated elsewhere now.
    /// Returns its slot, so the caller can fence stores still in flight.
    pub(super) fn unload(&mut self, group: &str) -> Option<Slot> {
        let done = self.state.unload(group);
        self.deliver(done);
        self.loaded.remove(group)
    }

    /// Unloads every group that another broker coordinates in `img`.
    pub(super) fn unload_moved(&mut self, img: &MetadataImage, me: i32) {
        let moved: Vec<String> = self
            .loaded
            .keys()
            .filter(|g| coordinator_for(g, img) != Some(me))
            .cloned()
            .collect();
        for group in moved {
            tracing::info!(group, "group coordinated elsewhere now; unloaded");
            self.unload(&group);
        }
    }

    /// Pairs answers with their parked requests, to be sent by `finish`.
    pub(super) fn deliver(&mut self, completions: Vec<Completion>) {
        for c in completions {
            if let Some(waiter) = self.waiters.remove(&(c.group_id, c.member_id)) {
                self.replies.push((waiter, c.response));
            }
        }
    }

    /// Queues the snapshot `group` asked to persist in the current step.
    pub(super) fn collect_store(&mut self, group: &str) {
        if let Some(snapshot) = self.state.take_store(group) {
            self.queue_store(group.to_owned(), snapshot);
        }
    }

    /// Queues every pending snapshot (after timers fired).
    pub(super) fn collect_all_stores(&mut self) {
        for (group, snapshot) in self.state.take_all_stores() {
            self.queue_store(group, snapshot);
        }
    }

    fn queue_store(&mut self, group: String, snapshot: super::GroupSnapshot) {
        // Every group in the state was loaded first, so it has a slot.
        let Some(slot) = self.loaded.get(&group).map(Arc::clone) else {
            return;
        };
        self.next_seq += 1;
        self.stores.push(Store {
            group,
            seq: self.next_seq,
            snapshot,
            slot,
        });
    }

    /// Ends a step: sends its answers and then runs `done`, at once or,
    /// when it asked for stores, once they are written (on another task, so
    /// that the group task never waits for the coordinator).
    pub(super) fn finish(&mut self, done: impl FnOnce() + Send + 'static) {
        let replies = mem::take(&mut self.replies);
        let stores = mem::take(&mut self.stores);
        if stores.is_empty() {
            send(replies);
            done();
            return;
        }
        let persist = self.persist.clone();
        tokio::spawn(async move {
            for store in stores {
                persist.write(store).await;
            }
            send(replies);
            done();
        });
    }
}

fn send(replies: Vec<(Waiter, Response)>) {
    for reply in replies {
        match reply {
            (Waiter::Join(tx), Response::Join(r)) => {
                let _ = tx.send(r);
            }
            (Waiter::Sync(tx), Response::Sync(r)) => {
                let _ = tx.send(r);
            }
            // A mismatch the state machine never produces: dropping the
            // sender answers the parked request as abandoned.
            _ => {}
        }
    }
}
