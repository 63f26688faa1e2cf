//! Replication, leader side and follower side, with Kafka's rules: the
//! leader tracks each follower's fetch position, moves the high watermark
//! to the smallest log end in the ISR, expands the ISR when a follower has
//! caught up and shrinks it when one lags longer than
//! `replica.lag.time.max.ms`, writing each ISR change to the partition
//! state znode conditionally (Kafka's leader-written ISR path). Followers
//! run a [`fetcher`] per partition.

pub mod fetcher;

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::cluster::PartitionState;

/// A follower as the leader sees it.
#[derive(Debug, Clone, Copy)]
struct Follower {
    /// Its log end: the offset it last fetched from.
    leo: i64,
    /// When it last fetched from at or past the leader's log end.
    caught_up_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    leader: i32,
    leader_epoch: i32,
    controller_epoch: i32,
    /// The state znode's version: the token for conditional ISR writes.
    zk_version: i32,
    followers: HashMap<i32, Follower>,
    /// The ISR an in-flight write proposes; no second write until the
    /// image shows the outcome. Until then the high watermark counts the
    /// union of both (Kafka's "maximal ISR"): a joining follower must have
    /// everything acknowledged from the moment it may be elected.
    pending_isr: Option<Vec<i32>>,
}

/// Replication state of one hosted partition.
#[derive(Debug)]
pub struct ReplicaSet {
    inner: Mutex<Inner>,
    /// The leader's log end after each append: replica fetches long-poll
    /// on it (they read past the high watermark).
    appended: watch::Sender<i64>,
}

/// An ISR change the leader must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub controller_epoch: i32,
    pub expected_version: i32,
}

impl ReplicaSet {
    pub fn new(replicas: Vec<i32>, state: &PartitionState, now_ms: i64) -> ReplicaSet {
        let set = ReplicaSet {
            inner: Mutex::new(Inner::default()),
            appended: watch::Sender::new(0),
        };
        set.update(replicas, state, now_ms);
        set
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the partition's state from a new image. A new leader epoch
    /// forgets follower positions: they are re-learnt from fetches, and
    /// every follower starts as caught up now so none is dropped from the
    /// ISR before it had a chance to fetch.
    pub fn update(&self, replicas: Vec<i32>, state: &PartitionState, now_ms: i64) {
        let mut g = self.lock();
        if g.leader_epoch != state.leader_epoch || g.leader != state.leader {
            g.followers.clear();
        }
        for &r in &replicas {
            g.followers.entry(r).or_insert(Follower {
                leo: -1,
                caught_up_ms: now_ms,
            });
        }
        g.replicas = replicas;
        g.isr = state.isr.clone();
        g.leader = state.leader;
        g.leader_epoch = state.leader_epoch;
        g.controller_epoch = state.controller_epoch;
        // Every image passes through here; only a rewrite of this
        // partition's state settles an in-flight ISR write.
        if g.zk_version != state.zk_version {
            g.pending_isr = None;
        }
        g.zk_version = state.zk_version;
    }

    pub fn isr(&self) -> Vec<i32> {
        self.lock().isr.clone()
    }

    pub fn notify_appended(&self, leo: i64) {
        self.appended.send_replace(leo);
    }

    pub fn subscribe_appended(&self) -> watch::Receiver<i64> {
        self.appended.subscribe()
    }

    /// The high watermark the leader (`me`, log end `leo`) may expose: the
    /// smallest log end in the ISR.
    pub fn high_watermark(&self, me: i32, leo: i64) -> i64 {
        let g = self.lock();
        g.isr
            .iter()
            .chain(g.pending_isr.iter().flatten())
            .map(|&b| {
                if b == me {
                    leo
                } else {
                    g.followers.get(&b).map_or(-1, |f| f.leo)
                }
            })
            .min()
            .unwrap_or(leo)
            .max(-1)
    }

    /// Records a follower's fetch at `fetch_offset` while the leader's log
    /// ends at `leo` and its high watermark is `hw`; returns the ISR
    /// expansion to write if the follower has caught up.
    pub fn on_follower_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        leo: i64,
        hw: i64,
        now_ms: i64,
    ) -> Option<IsrChange> {
        let mut g = self.lock();
        let f = g.followers.entry(follower).or_insert(Follower {
            leo: fetch_offset,
            caught_up_ms: now_ms,
        });
        f.leo = fetch_offset;
        if fetch_offset >= leo {
            f.caught_up_ms = now_ms;
        }
        let rejoin = !g.isr.contains(&follower)
            && g.replicas.contains(&follower)
            && fetch_offset >= hw
            && g.pending_isr.is_none();
        if !rejoin {
            return None;
        }
        let mut isr = g.isr.clone();
        isr.push(follower);
        g.pending_isr = Some(isr.clone());
        Some(change(&g, isr))
    }

    /// The ISR without the followers that have not caught up for
    /// `lag_ms` (Kafka's `maybeShrinkIsr`), if that removes anyone.
    pub fn shrink(&self, me: i32, now_ms: i64, lag_ms: i64) -> Option<IsrChange> {
        let mut g = self.lock();
        if g.pending_isr.is_some() || g.leader != me {
            return None;
        }
        let isr: Vec<i32> = g
            .isr
            .iter()
            .copied()
            .filter(|&b| {
                b == me
                    || g.followers
                        .get(&b)
                        .is_some_and(|f| now_ms - f.caught_up_ms <= lag_ms)
            })
            .collect();
        if isr.len() == g.isr.len() {
            return None;
        }
        g.pending_isr = Some(isr.clone());
        Some(change(&g, isr))
    }

    /// An ISR write failed (a stale version): allow the next attempt.
    pub fn isr_write_failed(&self) {
        self.lock().pending_isr = None;
    }
}

fn change(g: &Inner, isr: Vec<i32>) -> IsrChange {
    IsrChange {
        isr,
        leader: g.leader,
        leader_epoch: g.leader_epoch,
        controller_epoch: g.controller_epoch,
        expected_version: g.zk_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, epoch: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            controller_epoch: 1,
            zk_version: 5,
        }
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_log_end() {
        let set = ReplicaSet::new(vec![1, 2, 3], &state(1, 0, &[1, 2, 3]), 0);
        // Followers have not fetched yet: nothing is committed.
        assert_eq!(set.high_watermark(1, 10), -1);
        assert!(set.on_follower_fetch(2, 10, 10, 0, 1).is_none());
        assert!(set.on_follower_fetch(3, 7, 10, 0, 1).is_none());
        assert_eq!(set.high_watermark(1, 10), 7);
        // Alone in the ISR, the leader's log end is the high watermark.
        let solo = ReplicaSet::new(vec![1], &state(1, 0, &[1]), 0);
        assert_eq!(solo.high_watermark(1, 42), 42);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_return() {
        let set = ReplicaSet::new(vec![1, 2, 3], &state(1, 0, &[1, 2, 3]), 0);
        set.on_follower_fetch(2, 10, 10, 0, 1000);
        set.on_follower_fetch(3, 3, 10, 0, 1000);
        // 2 keeps up; 3 stays behind.
        set.on_follower_fetch(2, 10, 10, 0, 39_000);
        set.on_follower_fetch(3, 4, 10, 0, 39_000);
        let shrink = set.shrink(1, 40_000, 30_000).expect("3 lags");
        assert_eq!(shrink.isr, vec![1, 2]);
        assert_eq!(shrink.expected_version, 5);
        // One write at a time.
        assert!(set.shrink(1, 40_000, 30_000).is_none());
        // The shrink lands: the state znode is at a new version.
        let shrunk = PartitionState {
            zk_version: 6,
            ..state(1, 0, &[1, 2])
        };
        set.update(vec![1, 2, 3], &shrunk, 40_000);
        // Below the high watermark: not back yet; at it: back.
        assert!(set.on_follower_fetch(3, 5, 12, 10, 41_000).is_none());
        let grow = set
            .on_follower_fetch(3, 10, 12, 10, 41_000)
            .expect("caught up");
        assert_eq!(grow.isr, vec![1, 2, 3]);
        // While the expansion is being written, 3 already holds the high
        // watermark back: it may be elected as soon as the write lands.
        set.on_follower_fetch(2, 12, 12, 10, 41_000);
        assert_eq!(set.high_watermark(1, 12), 10);
    }

    #[test]
    fn a_new_leader_epoch_forgets_follower_positions() {
        let set = ReplicaSet::new(vec![1, 2], &state(1, 0, &[1, 2]), 0);
        set.on_follower_fetch(2, 10, 10, 0, 1);
        assert_eq!(set.high_watermark(1, 10), 10);
        set.update(vec![1, 2], &state(1, 1, &[1, 2]), 2);
        assert_eq!(set.high_watermark(1, 10), -1);
    }
}
