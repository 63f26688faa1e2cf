//! Replication, leader side and follower side, with Kafka's rules: which
//! partitions this broker hosts and in which role ([`replicas`], following
//! the metadata image), and for each the
//! leader tracks each follower's fetch position, moves the high watermark
//! to the smallest log end in the ISR, expands the ISR when a follower has
//! caught up and shrinks it when one lags longer than
//! `replica.lag.time.max.ms`, writing each ISR change to the partition
//! state znode conditionally (Kafka's leader-written ISR path). Followers
//! run a [`fetcher`] per partition.
//!
//! Two epochs, as in Kafka: the *leader epoch* changes only when leadership
//! does (a new leader, or the same one elected anew), and is what fetchers,
//! stamped batches and pending acks=all produces compare; the *partition
//! epoch*, the state znode's version, changes with every write (ISR
//! changes too) and only fences conditional writes. An ISR change keeps
//! follower positions, the high watermark and waiting produces.

pub mod fetcher;
mod replicas;

pub use replicas::{follow, shrink_isrs, write_isr, Replica, Replicas};

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::cluster::{IsrChange, PartitionState};
use crate::log::Log;

/// Leader epochs this broker left whose final high watermark is kept for
/// the acks=all produces still waiting on them.
const ENDED_EPOCHS: usize = 4;

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
    /// This broker.
    me: i32,
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
    /// The last leader epochs this broker led and left, newest last.
    ended: VecDeque<EndedEpoch>,
}

/// How a leader epoch of this broker ended, frozen when the image moved
/// past it: every acks=all produce appended in it is answered from these
/// same numbers, so answers stay monotone in offset (an error for one batch
/// and a success for a later one would make an idempotent producer count
/// the first as written without knowing its offset).
#[derive(Debug, Clone, Copy)]
struct EndedEpoch {
    leader_epoch: i32,
    high_watermark: i64,
    /// Size of the maximal ISR at the end.
    isr: usize,
}

/// Where a pending acks=all produce stands (Kafka's `DelayedProduce` check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckState {
    /// The ISR has the batch, and the ISR is at least `min.insync.replicas`.
    Replicated,
    /// Not yet; `below_min_isr` when the high watermark passed the batch
    /// but the ISR has shrunk below `min.insync.replicas` meanwhile (Kafka's
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if it stays so until the deadline).
    Waiting { below_min_isr: bool },
    /// The leader epoch it was appended in ended before the ISR had it:
    /// NOT_LEADER_OR_FOLLOWER (the batch may be truncated).
    LeaderMoved,
}

/// Replication state of one hosted partition.
#[derive(Debug)]
pub struct ReplicaSet {
    inner: Mutex<Inner>,
    /// The leader's log end after each append: replica fetches long-poll
    /// on it (they read past the high watermark).
    appended: watch::Sender<i64>,
}

impl ReplicaSet {
    /// The replica set of broker `me` for a partition in `state`.
    pub fn new(me: i32, replicas: Vec<i32>, state: &PartitionState, now_ms: i64) -> ReplicaSet {
        let set = ReplicaSet {
            // No leader yet (-1, not the default 0: broker 0 is real), so
            // the first state ends no epoch of ours.
            inner: Mutex::new(Inner {
                me,
                leader: -1,
                ..Inner::default()
            }),
            appended: watch::Sender::new(0),
        };
        set.update(replicas, state, now_ms, || -1);
        set
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the partition's state from a new image. A new leader epoch
    /// forgets follower positions: they are re-learnt from fetches, and
    /// every follower starts as caught up now so none is dropped from the
    /// ISR before it had a chance to fetch. Leaving an epoch this broker
    /// led freezes its high watermark (`hw`, read under the lock that
    /// [`Self::advance_high_watermark`] moves it under) for the produces
    /// still waiting on it. An ISR-only change (same leader epoch, new
    /// znode version) keeps all of this.
    pub fn update(
        &self,
        replicas: Vec<i32>,
        state: &PartitionState,
        now_ms: i64,
        hw: impl FnOnce() -> i64,
    ) {
        let mut g = self.lock();
        if g.leader_epoch != state.leader_epoch || g.leader != state.leader {
            if g.leader == g.me {
                let ended = EndedEpoch {
                    leader_epoch: g.leader_epoch,
                    high_watermark: hw(),
                    isr: maximal_isr(&g),
                };
                if g.ended.len() == ENDED_EPOCHS {
                    g.ended.pop_front();
                }
                g.ended.push_back(ended);
            }
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
        high_watermark(&self.lock(), me, leo)
    }

    /// Moves the leader's high watermark in `log` forward to what the whole
    /// (maximal) ISR has. Under the lock, so a leader epoch never ends
    /// between computing a high watermark and publishing it.
    pub fn advance_high_watermark(&self, log: &Log) {
        let g = self.lock();
        if g.leader != g.me {
            return;
        }
        let hw = high_watermark(&g, g.me, log.log_end_offset());
        if hw > log.high_watermark() {
            log.set_high_watermark(hw);
        }
    }

    /// Where an acks=all produce of a batch ending at `last`, appended as
    /// leader in `leader_epoch`, stands; `hw` reads the log's high
    /// watermark. Only a change of leader epoch ends the wait early: an ISR
    /// change (shrink or expansion) leaves it to the high watermark.
    pub fn acks_all(
        &self,
        leader_epoch: i32,
        last: i64,
        hw: impl FnOnce() -> i64,
        min_isr: usize,
    ) -> AckState {
        let g = self.lock();
        let current = g.leader == g.me && g.leader_epoch == leader_epoch;
        let (hw, isr) = if current {
            (hw(), maximal_isr(&g))
        } else if let Some(e) = g.ended.iter().find(|e| e.leader_epoch == leader_epoch) {
            (e.high_watermark, e.isr)
        } else {
            return AckState::LeaderMoved;
        };
        match (hw > last, isr >= min_isr) {
            (true, true) => AckState::Replicated,
            (true, false) if current => AckState::Waiting {
                below_min_isr: true,
            },
            (false, _) if current => AckState::Waiting {
                below_min_isr: false,
            },
            _ => AckState::LeaderMoved,
        }
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

fn high_watermark(g: &Inner, me: i32, leo: i64) -> i64 {
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

/// Kafka's maximal ISR: the ISR plus a member whose expansion is in flight.
fn maximal_isr(g: &Inner) -> usize {
    let extra = g
        .pending_isr
        .iter()
        .flatten()
        .filter(|b| !g.isr.contains(b))
        .count();
    g.isr.len() + extra
}

/// The ISR change to write: same leader and leader epoch, conditional on
/// the znode version (the partition epoch) the leader last saw.
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
        let set = ReplicaSet::new(1, vec![1, 2, 3], &state(1, 0, &[1, 2, 3]), 0);
        // Followers have not fetched yet: nothing is committed.
        assert_eq!(set.high_watermark(1, 10), -1);
        assert!(set.on_follower_fetch(2, 10, 10, 0, 1).is_none());
        assert!(set.on_follower_fetch(3, 7, 10, 0, 1).is_none());
        assert_eq!(set.high_watermark(1, 10), 7);
        // Alone in the ISR, the leader's log end is the high watermark.
        let solo = ReplicaSet::new(1, vec![1], &state(1, 0, &[1]), 0);
        assert_eq!(solo.high_watermark(1, 42), 42);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_return() {
        let set = ReplicaSet::new(1, vec![1, 2, 3], &state(1, 0, &[1, 2, 3]), 0);
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
        set.update(vec![1, 2, 3], &shrunk, 40_000, || -1);
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
        let set = ReplicaSet::new(1, vec![1, 2], &state(1, 0, &[1, 2]), 0);
        set.on_follower_fetch(2, 10, 10, 0, 1);
        assert_eq!(set.high_watermark(1, 10), 10);
        set.update(vec![1, 2], &state(1, 1, &[1, 2]), 2, || -1);
        assert_eq!(set.high_watermark(1, 10), -1);
    }

    #[test]
    fn leader_isr_writes_keep_the_leader_epoch() {
        let set = ReplicaSet::new(1, vec![1, 2], &state(1, 7, &[1]), 0);
        let grow = set.on_follower_fetch(2, 0, 0, 0, 1).expect("caught up");
        assert_eq!(
            grow,
            IsrChange {
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 7,
                controller_epoch: 1,
                expected_version: 5,
            }
        );
    }

    #[test]
    fn isr_shrink_does_not_fail_a_pending_acks_all() {
        let set = ReplicaSet::new(1, vec![1, 2, 3], &state(1, 4, &[1, 2, 3]), 0);
        // The leader's log ends at 10; 2 has it all, 3 is stuck at 3.
        set.on_follower_fetch(2, 10, 10, 0, 1000);
        set.on_follower_fetch(3, 3, 10, 0, 1000);
        let mut hw = set.high_watermark(1, 10);
        assert_eq!(hw, 3);
        // A produce of offsets 5..=7 in epoch 4 waits for 3.
        let pending = |set: &ReplicaSet, hw: i64| set.acks_all(4, 7, || hw, 2);
        let waiting = AckState::Waiting {
            below_min_isr: false,
        };
        assert_eq!(pending(&set, hw), waiting);

        // The leader drops 3: same leader epoch, conditional on version 5.
        set.on_follower_fetch(2, 10, 10, hw, 31_000);
        let shrink = set.shrink(1, 35_000, 30_000).expect("3 lags");
        assert_eq!((shrink.isr.clone(), shrink.leader_epoch), (vec![1, 2], 4));
        assert_eq!(shrink.expected_version, 5);
        // The write lands: a new znode version, the same leader epoch.
        let shrunk = PartitionState {
            zk_version: 6,
            ..state(1, 4, &[1, 2])
        };
        set.update(vec![1, 2, 3], &shrunk, 35_000, || hw);
        assert_eq!(pending(&set, hw), waiting, "still waiting, not failed");
        // Follower positions survived the ISR change: the high watermark
        // moves to what the smaller ISR has, and the produce completes.
        hw = set.high_watermark(1, 10);
        assert_eq!(hw, 10);
        assert_eq!(pending(&set, hw), AckState::Replicated);

        // The controller takes 2 out too (its broker died): ISR [1] is
        // below min.insync.replicas=2, so a produce past the high watermark
        // waits for the ISR to grow back instead of being acknowledged by
        // the leader alone.
        let alone = PartitionState {
            zk_version: 7,
            ..state(1, 4, &[1])
        };
        set.update(vec![1, 2, 3], &alone, 36_000, || hw);
        assert_eq!(
            pending(&set, hw),
            AckState::Waiting {
                below_min_isr: true
            }
        );
        // 2 is back and caught up: while its expansion is in flight the
        // maximal ISR counts it, and the produce completes.
        assert!(set.on_follower_fetch(2, 10, 10, 10, 37_000).is_some());
        assert_eq!(pending(&set, hw), AckState::Replicated);
    }

    #[test]
    fn a_leader_change_answers_pending_produces_from_the_final_high_watermark() {
        let set = ReplicaSet::new(1, vec![1, 2, 3], &state(1, 4, &[1, 2, 3]), 0);
        // Two produces wait: offsets ..=5 and ..=9; the ISR reached 7.
        let first = |set: &ReplicaSet, hw: i64| set.acks_all(4, 5, || hw, 2);
        let second = |set: &ReplicaSet, hw: i64| set.acks_all(4, 9, || hw, 2);
        assert_eq!(first(&set, 7), AckState::Replicated);
        // Broker 2 is elected in epoch 5 while our high watermark is 7.
        let moved = PartitionState {
            zk_version: 6,
            ..state(2, 5, &[2, 3])
        };
        set.update(vec![1, 2, 3], &moved, 1, || 7);
        // Whatever the log's high watermark does as a follower (truncation,
        // the new leader's data), epoch 4's answers come from 7.
        assert_eq!(first(&set, 100), AckState::Replicated);
        assert_eq!(second(&set, 100), AckState::LeaderMoved);
        // A batch stamped with an epoch this broker never led here fails.
        assert_eq!(set.acks_all(5, 0, || 100, 1), AckState::LeaderMoved);
        assert_eq!(set.acks_all(3, 0, || 100, 1), AckState::LeaderMoved);
    }

    #[test]
    fn broker_zero_starts_with_no_ended_epoch() {
        // Broker id 0 leading epoch 2 from its first image: nothing ended.
        let set = ReplicaSet::new(0, vec![0, 1], &state(0, 2, &[0, 1]), 0);
        assert_eq!(set.acks_all(0, 0, || 5, 1), AckState::LeaderMoved);
        assert_eq!(set.acks_all(2, 0, || 5, 1), AckState::Replicated);
    }
}
