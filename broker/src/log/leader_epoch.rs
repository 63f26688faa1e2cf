//! Kafka's `LeaderEpochFileCache`: where each leader epoch's first batch
//! sits in one partition's log, kept in `<partition dir>/leader-epoch-checkpoint`
//! (line "0", an entry count, then `epoch start_offset` lines). A follower
//! asks the leader for the end offset of its own latest epoch
//! (OffsetsForLeaderEpoch) and truncates what lies past it: the tail a
//! former leader wrote that the new leader never had.

use std::io;
use std::path::Path;

use super::checkpoint;

pub(crate) const CHECKPOINT: &str = "leader-epoch-checkpoint";

/// The first offset written in one leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub(crate) epoch: i32,
    pub(crate) start_offset: i64,
}

/// Entries with strictly increasing epochs and start offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` when it is newer than
    /// every cached epoch; returns whether the cache changed. Batches with
    /// no epoch (-1) or an older one add nothing, as in Kafka.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 || self.latest_epoch().is_some_and(|l| epoch <= l) {
            return false;
        }
        // An entry at or past this start was assigned for a write that never
        // landed (the checkpoint is written before the data): it is stale.
        self.truncate_from_end(start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Drops the epochs starting at or after `end` (the new log end after a
    /// truncation); returns whether any went.
    pub(crate) fn truncate_from_end(&mut self, end: i64) -> bool {
        let keep = self.entries.partition_point(|e| e.start_offset < end);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Kafka's `truncateFromStart`: epochs starting at or before the new log
    /// start collapse into the latest of them, which now starts there, so
    /// the cache never points below the log.
    pub(crate) fn truncate_from_start(&mut self, start: i64) -> bool {
        let below = self.entries.partition_point(|e| e.start_offset <= start);
        let Some(last_below) = below.checked_sub(1) else {
            return false;
        };
        let first = EpochEntry {
            epoch: self.entries[last_below].epoch,
            start_offset: start,
        };
        let changed = last_below > 0 || self.entries[0] != first;
        self.entries.drain(..last_below);
        self.entries[0] = first;
        changed
    }

    /// Kafka's `endOffsetFor`: the latest epoch ends at the log end; an
    /// older one at the start of the next cached epoch, reported with the
    /// largest cached epoch at or below it (the follower truncates to that
    /// offset and asks again for that epoch if it differs). An epoch below
    /// every cached one ends where the first cached epoch starts (its data
    /// is gone from this log). `None` stands for Kafka's UNDEFINED_EPOCH /
    /// UNDEFINED_EPOCH_OFFSET: no epoch asked for, none known, or one newer
    /// than this log has seen.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let next = self.entries.get(higher)?;
        let found = higher
            .checked_sub(1)
            .map_or(epoch, |floor| self.entries[floor].epoch);
        Some((found, next.start_offset))
    }

    /// Reads `<dir>/leader-epoch-checkpoint`: `Ok(None)` when there is none,
    /// an `InvalidData` error when it is malformed or not monotonic.
    pub(crate) fn read(dir: &Path) -> io::Result<Option<LeaderEpochCache>> {
        let path = dir.join(CHECKPOINT);
        let parsed = checkpoint::read_entries(&path, |f| match f {
            [epoch, offset] => Some(EpochEntry {
                epoch: epoch.parse().ok()?,
                start_offset: offset.parse().ok()?,
            }),
            _ => None,
        })?;
        let Some(entries) = parsed else {
            return Ok(None);
        };
        let increasing = entries
            .first()
            .is_none_or(|e| e.epoch >= 0 && e.start_offset >= 0)
            && entries
                .windows(2)
                .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
        if !increasing {
            return Err(checkpoint::invalid(&path, "entries are not increasing"));
        }
        Ok(Some(LeaderEpochCache { entries }))
    }

    /// Replaces the checkpoint: temp file, fsync, rename.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        checkpoint::write_entries(
            &dir.join(CHECKPOINT),
            self.entries.len(),
            self.entries
                .iter()
                .map(|e| format!("{} {}", e.epoch, e.start_offset)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(epoch, start) in entries {
            assert!(c.assign(epoch, start));
        }
        c
    }

    fn entries(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_only_newer_epochs() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(2, 15));
        assert!(!c.assign(1, 20));
        assert!(!c.assign(-1, 20));
        assert_eq!(c.latest_epoch(), Some(2));
        // An entry whose write never landed is replaced.
        assert!(c.assign(3, 30));
        assert!(c.assign(4, 30));
        assert_eq!(entries(&c), [(0, 0), (2, 10), (4, 30)]);
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(0, 0), (1, 10), (3, 20)]);
        assert!(!c.truncate_from_end(21));
        assert!(c.truncate_from_end(20));
        assert_eq!(entries(&c), [(0, 0), (1, 10)]);
        assert!(!c.truncate_from_start(0));
        assert!(c.truncate_from_start(5));
        assert_eq!(entries(&c), [(0, 5), (1, 10)]);
        assert!(c.truncate_from_start(12));
        assert_eq!(entries(&c), [(1, 12)]);
        assert!(!c.truncate_from_start(12));
        assert!(c.truncate_from_end(0));
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 5), (3, 20), (4, 30)]);
        assert_eq!(c.end_offset_for(4, 42), Some((4, 42)));
        assert_eq!(c.end_offset_for(3, 42), Some((3, 30)));
        // Epoch 2 never led here: its writes end where epoch 3 begins.
        assert_eq!(c.end_offset_for(2, 42), Some((1, 20)));
        assert_eq!(c.end_offset_for(1, 42), Some((1, 20)));
        assert_eq!(c.end_offset_for(0, 42), Some((0, 5)));
        assert_eq!(c.end_offset_for(5, 42), None);
        assert_eq!(c.end_offset_for(-1, 42), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 0), None);
    }

    #[test]
    fn checkpoint_round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(LeaderEpochCache::read(dir.path()).expect("missing"), None);
        let c = cache(&[(0, 0), (7, 1234)]);
        c.write(dir.path()).expect("write");
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT)).expect("read");
        assert_eq!(text, "0\n2\n0 0\n7 1234\n");
        assert_eq!(LeaderEpochCache::read(dir.path()).expect("read"), Some(c));
        for bad in ["1\n0\n", "0\n2\n0 0\n", "0\n2\n3 0\n2 5\n", "0\n1\n0 x\n"] {
            std::fs::write(dir.path().join(CHECKPOINT), bad).expect("write");
            let err = LeaderEpochCache::read(dir.path()).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }
}
