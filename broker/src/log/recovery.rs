//! Opening a partition's log: leftover-file cleanup, trusting or scanning
//! segments (torn tails cut off), rebuilding producer state from the
//! newest snapshot and checking the leader epoch cache against the log;
//! also truncation, which rebuilds the same state.

use crate::now_ms;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::config::LogConfig;
use super::leader_epoch::LeaderEpochCache;
use super::partition::{Log, Recovery, Writer};
use super::producer_state::{self, ProducerState};
use super::segment::{self, Segment};
use super::LogError;

/// Written by `Log::close`, removed by `Log::open`: its absence means the
/// last run did not close this log.
pub(crate) const CLEAN_MARKER: &str = ".kafka_cleanshutdown";

/// Suffixes of files an interrupted delete, compaction or write left.
const LEFTOVER_SUFFIXES: &[&str] = &[".deleted", ".cleaned", ".swap", ".tmp"];

/// `<topic>-<partition>`, Kafka's partition directory name.
pub(crate) fn dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

impl Log {
    /// Opens (creating if needed) `<root>/<topic>-<partition>/`, trusting
    /// the files only if the partition's clean-shutdown marker is there.
    pub fn open(
        root: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Log, LogError> {
        Log::open_with(root, topic, partition, config, Recovery::default())
    }

    /// [`Log::open`] with what the manager's checkpoints know.
    pub fn open_with(
        root: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
        recovery: Recovery,
    ) -> Result<Log, LogError> {
        let dir = root.join(dir_name(topic, partition));
        let io = |op| LogError::io(op, &dir);
        std::fs::create_dir_all(&dir).map_err(io("create"))?;
        let marker = dir.join(CLEAN_MARKER);
        let clean = recovery.dir_clean && marker.exists();
        let bases = clean_dir_and_list_segments(&dir).map_err(io("list"))?;
        let now = now_ms();
        let interval = u64::try_from(config.index_interval_bytes).unwrap_or(0);

        let created = bases.is_empty();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let seg = Segment::open(&dir, base, now).map_err(io("open segment in"))?;
            let next_base = bases.get(i + 1).copied();
            let scan = !clean
                && next_base.is_none_or(|next| recovery.recovery_point.is_some_and(|rp| next > rp));
            let end = if scan {
                seg.recover(interval)
            } else {
                seg.load_tail(interval)
            }
            .map_err(LogError::io("recover", seg.log_path()))?;
            segments.push(Arc::new(seg));
            if end.truncated > 0 {
                tracing::warn!(segment = %file_display(&dir, base), bytes = end.truncated, "truncated invalid bytes at the end of a segment");
                // Anything after a torn segment cannot be trusted to follow it.
                for &later in &bases[i + 1..] {
                    Segment::open(&dir, later, now)
                        .and_then(|s| s.delete())
                        .map_err(io("delete segment in"))?;
                    tracing::warn!(segment = %file_display(&dir, later), "deleted segment after a torn one");
                }
                break;
            }
        }
        if segments.is_empty() {
            let base = recovery.log_start_offset.unwrap_or(0).max(0);
            segments.push(Arc::new(
                Segment::create(&dir, base, now).map_err(io("create segment in"))?,
            ));
        }
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let first_base = segments.first().map_or(0, |s| s.base_offset());
        let log_start = recovery
            .log_start_offset
            .map_or(first_base, |s| s.max(first_base))
            .min(log_end);

        let producers = rebuild_producers(&dir, &segments, log_start, log_end)?;
        let epochs = load_epochs(&dir, &segments, log_start, log_end)?;
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(io("remove clean marker in"))?;
        }
        let (hw, _) = watch::channel(log_end);
        if created {
            tracing::info!(dir = %dir.display(), log_start, "created log");
        } else {
            tracing::info!(dir = %dir.display(), clean, log_start, log_end, segments = segments.len(), "opened log");
        }
        Ok(Log {
            dir,
            topic: topic.to_owned(),
            partition,
            config: RwLock::new(Arc::new(config)),
            writer: Mutex::new(Writer {
                producers,
                unflushed_messages: 0,
                closed: false,
            }),
            segments: RwLock::new(Arc::new(segments)),
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            recovery_point: AtomicI64::new(log_end),
            hw,
            epochs: RwLock::new(epochs),
        })
    }

    /// Removes every batch at and after the one holding `offset` (for a
    /// follower diverging from its leader), keeping indexes, producer state,
    /// the leader epoch cache and the high watermark (never above the new
    /// end) consistent. At or below the log start everything goes and the
    /// log restarts empty at `offset` (Kafka's `truncateFullyAndStartAt`),
    /// ready for the leader's batches from there.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        let mut w = self.lock_writer();
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        // Held throughout so that no epoch query pairs the old epochs with
        // the new log end.
        let mut epochs = self.epochs_mut();
        let config = self.config();
        let interval = u64::try_from(config.index_interval_bytes).unwrap_or(0);
        let segments = self.segments();
        let start = self.log_start_offset();
        let keep = if offset <= start {
            0
        } else {
            segments.partition_point(|s| s.base_offset() < offset)
        };
        // Dropped files go first: a new segment may reuse a dropped one's name.
        for seg in &segments[keep..] {
            seg.delete()
                .map_err(LogError::io("delete", seg.log_path()))?;
        }
        let mut kept: Vec<_> = segments[..keep].to_vec();
        if let Some(last) = kept.last() {
            last.truncate_to(offset, interval)
                .map_err(LogError::io("truncate", last.log_path()))?;
        } else {
            let seg = Segment::create(&self.dir, offset.max(0), now_ms())
                .map_err(self.io("create segment in"))?;
            kept.push(Arc::new(seg));
            self.log_start.store(offset.max(0), Ordering::Release);
        }
        let end = kept.last().map_or(offset, |s| s.next_offset());
        self.publish(kept);
        self.log_end.store(end, Ordering::Release);
        self.recovery_point.fetch_min(end, Ordering::AcqRel);
        self.set_high_watermark(self.high_watermark().min(end));
        let epochs_changed = epochs.truncate_from_end(end);
        producer_state::delete_snapshots_outside(&self.dir, i64::MIN, end)
            .map_err(self.io("delete snapshots in"))?;
        w.producers = rebuild_producers(&self.dir, &self.segments(), self.log_start_offset(), end)?;
        // The file after the log: a crash in between leaves entries past the
        // log end, which opening drops.
        if epochs_changed {
            epochs
                .write(&self.dir)
                .map_err(self.io("write leader epoch checkpoint in"))?;
        }
        drop(epochs);
        tracing::info!(topic = %self.topic, partition = self.partition, offset, log_end = end, "truncated log");
        Ok(())
    }
}

fn file_display(dir: &Path, base: i64) -> String {
    segment::file_path(dir, base, segment::LOG_SUFFIX)
        .display()
        .to_string()
}

/// Deletes leftovers and index files without a `.log`; returns the base
/// offsets of the segments, ascending.
fn clean_dir_and_list_segments(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            tracing::info!(path = %path.display(), "removing leftover file");
            std::fs::remove_file(&path)?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            segment::LOG_SUFFIX => bases.push(base),
            segment::INDEX_SUFFIX | segment::TIME_INDEX_SUFFIX => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !bases.contains(&base) {
            std::fs::remove_file(&path)?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Producer state as of `log_end`: the newest usable snapshot, then the
/// batch headers after it. Writes a fresh snapshot when it had to replay.
fn rebuild_producers(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_start: i64,
    log_end: i64,
) -> Result<ProducerState, LogError> {
    let io = |op| LogError::io(op, dir);
    let loaded = ProducerState::load_latest(dir, log_end).map_err(io("read snapshots in"))?;
    let snapshot_at = loaded.as_ref().map(|(_, at)| *at);
    let (mut state, from) = loaded.unwrap_or((ProducerState::default(), log_start));
    let from = from.max(log_start);
    let first = segments
        .partition_point(|s| s.base_offset() <= from)
        .saturating_sub(1);
    let mut replayed = false;
    for seg in &segments[first..] {
        let end = seg.size();
        let Some((pos, _)) = seg
            .find(from, end)
            .map_err(LogError::io("read", seg.log_path()))?
        else {
            continue;
        };
        seg.scan(pos, end, false, |_, h| {
            if h.last_offset() >= from && h.base_offset < log_end {
                state.replay(h);
                replayed = true;
            }
        })
        .map_err(LogError::io("read", seg.log_path()))?;
    }
    // A snapshot at the log end saves the next restart this replay, and
    // keeps state whose snapshot is about to be deleted below.
    if replayed || snapshot_at.is_some_and(|at| at != log_end) {
        state
            .write_snapshot(dir, log_end)
            .map_err(io("write producer snapshot in"))?;
    }
    producer_state::delete_snapshots_outside(dir, log_start, log_end)
        .map_err(io("delete snapshots in"))?;
    Ok(state)
}

/// The leader epoch cache as of `[log_start, log_end)`: the checkpoint
/// without entries past the end or before the start, or, when it is missing
/// or unreadable, the epochs of the stored batch headers. Rewrites the
/// checkpoint when that changed it.
fn load_epochs(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_start: i64,
    log_end: i64,
) -> Result<LeaderEpochCache, LogError> {
    let loaded = match LeaderEpochCache::read(dir) {
        Ok(loaded) => loaded,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            tracing::warn!(error = %e, "rebuilding the leader epoch cache from the log");
            None
        }
        Err(e) => return Err(LogError::io("read leader epoch checkpoint in", dir)(e)),
    };
    let (mut cache, mut changed) = match loaded {
        Some(cache) => (cache, false),
        None => {
            let mut cache = LeaderEpochCache::default();
            for seg in segments {
                seg.scan(0, seg.size(), false, |_, h| {
                    if h.last_offset() >= log_start {
                        cache.assign(h.leader_epoch, h.base_offset);
                    }
                })
                .map_err(LogError::io("read", seg.log_path()))?;
            }
            (cache, true)
        }
    };
    changed |= cache.truncate_from_end(log_end);
    changed |= cache.truncate_from_start(log_start);
    if changed {
        cache
            .write(dir)
            .map_err(LogError::io("write leader epoch checkpoint in", dir))?;
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::{batch, batch_with};
    use crate::log::partition::tests::{offsets_in, small_config};
    use kafka_protocol::records::Compression;
    use std::os::unix::fs::FileExt;

    fn fill(log: &Log, batches: usize) {
        for i in 0..batches {
            log.append(&batch(5, 50, 1000 + i as i64), 0, 0)
                .expect("append");
        }
    }

    fn active_log_file(log: &Log) -> std::path::PathBuf {
        log.segments().last().expect("segment").log_path()
    }

    #[test]
    fn empty_dir_starts_at_zero_and_leftovers_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("my.topic-with-dash-3");
        std::fs::create_dir_all(&part).expect("mkdir");
        for f in [
            "00000000000000000000.log.deleted",
            "x.cleaned",
            "y.swap",
            "00000000000000000077.index",
        ] {
            std::fs::write(part.join(f), b"junk").expect("write");
        }
        let log =
            Log::open(dir.path(), "my.topic-with-dash", 3, LogConfig::default()).expect("open");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        let mut names: Vec<_> = std::fs::read_dir(&part)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "00000000000000000000.index",
                "00000000000000000000.log",
                "00000000000000000000.timeindex",
                "leader-epoch-checkpoint"
            ]
        );
    }

    #[test]
    fn clean_restart_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
        fill(&log, 30);
        let p = batch_with(2, 5, 0, (9, 0, 0), Compression::None);
        log.append(&p, 0, 0).expect("append");
        let before = log.read(0, 1 << 20, i64::MAX, false).expect("read").records;
        let segments = log.segments().len();
        log.close().expect("close");
        assert!(log.dir().join(CLEAN_MARKER).exists());
        drop(log);

        let log = Log::open(dir.path(), "t", 0, small_config()).expect("reopen");
        assert!(!log.dir().join(CLEAN_MARKER).exists());
        assert_eq!(log.log_end_offset(), 152);
        assert_eq!(log.segments().len(), segments);
        assert_eq!(
            log.read(0, 1 << 20, i64::MAX, false).expect("read").records,
            before
        );
        assert!(
            std::fs::metadata(log.segments()[0].log_path().with_extension("index"))
                .expect("index")
                .len()
                > 0
        );
        // Producer state came back from the snapshot.
        assert!(log.append(&p, 0, 0).expect("append").duplicate);
        let next = batch_with(1, 5, 0, (9, 0, 2), Compression::None);
        assert_eq!(log.append(&next, 0, 0).expect("append").base_offset, 152);
    }

    #[test]
    fn crash_truncates_torn_tail_and_rebuilds_producers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
        fill(&log, 7);
        let p = batch_with(2, 5, 0, (9, 0, 0), Compression::None);
        log.append(&p, 0, 0).expect("append");
        let end = log.log_end_offset();
        let path = active_log_file(&log);
        let good_len = std::fs::metadata(&path).expect("meta").len();
        // A torn write: half a batch after the last whole one.
        let half = batch(5, 50, 0);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.write_all_at(&half[..half.len() / 2], good_len)
            .expect("write");
        drop(log);

        let log = Log::open(dir.path(), "t", 0, small_config()).expect("recover");
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), good_len);
        assert!(log.append(&p, 0, 0).expect("append").duplicate);
        assert_eq!(
            log.append(&batch(1, 1, 0), 0, 0)
                .expect("append")
                .base_offset,
            end
        );
    }

    #[test]
    fn crash_with_a_bad_crc_drops_that_batch_and_later_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
        let sizes: Vec<_> = (0..4)
            .map(|i| {
                let b = batch(5, 50, i);
                log.append(&b, 0, 0).expect("append");
                b.len() as u64
            })
            .collect();
        let path = active_log_file(&log);
        drop(log);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.write_all_at(&[0xff], sizes[0] + sizes[1] + 70)
            .expect("flip");
        let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("recover");
        assert_eq!(log.log_end_offset(), 10);
        let r = log.read(0, 1 << 20, i64::MAX, false).expect("read");
        assert_eq!(offsets_in(&r.records), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn recovery_point_decides_which_segments_are_scanned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
        fill(&log, 30);
        let segs = log.segments();
        let victim = segs[1].clone();
        drop(log);
        // Damage the end of a sealed segment.
        let len = victim.size();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(victim.log_path())
            .expect("open");
        f.write_all_at(&[0xff; 4], len - 4).expect("flip");

        let trusting = Recovery {
            dir_clean: false,
            recovery_point: Some(segs[3].base_offset()),
            log_start_offset: None,
        };
        let log = Log::open_with(dir.path(), "t", 0, small_config(), trusting).expect("open");
        assert_eq!(log.segments().len(), segs.len());
        drop(log);

        let scanning = Recovery {
            dir_clean: false,
            recovery_point: Some(0),
            log_start_offset: None,
        };
        let log = Log::open_with(dir.path(), "t", 0, small_config(), scanning).expect("open");
        assert_eq!(log.segments().len(), 2);
        assert!(log.log_end_offset() < segs[2].base_offset());
    }

    #[test]
    fn truncate_to_keeps_state_consistent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
        let p = |seq| batch_with(5, 50, 0, (4, 0, seq), Compression::None);
        for i in 0..30 {
            log.append(&p(i * 5), 0, 0).expect("append");
        }
        log.set_high_watermark(150);
        log.truncate_to(52).expect("truncate");
        // The batch holding 52 (50..54) goes whole.
        assert_eq!(log.log_end_offset(), 50);
        assert_eq!(log.high_watermark(), 50);
        assert_eq!(
            log.read(50, 100, i64::MAX, true)
                .expect("read")
                .records
                .len(),
            0
        );
        assert_eq!(
            log.read(45, 1 << 20, i64::MAX, true)
                .map(|r| offsets_in(&r.records))
                .expect("read"),
            (45..50).collect::<Vec<_>>()
        );
        // The producer continues from sequence 50, and the dropped batch is no duplicate.
        let again = log.append(&p(50), 0, 0).expect("append");
        assert!(!again.duplicate);
        assert_eq!(again.base_offset, 50);
        log.truncate_to(0).expect("truncate all");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(
            log.append(&batch(1, 1, 0), 0, 0)
                .expect("append")
                .base_offset,
            0
        );
        log.close().expect("close");
        drop(log);
        let log = Log::open(dir.path(), "t", 0, small_config()).expect("reopen");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 1));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Cutting the active segment anywhere leaves exactly the batches
        /// that were whole before the cut.
        #[test]
        fn any_cut_recovers_to_a_batch_boundary(counts in proptest::collection::vec(1usize..6, 1..12), cut_frac in 0.0f64..1.0) {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
            let mut ends = vec![(0u64, 0i64)];
            for (i, n) in counts.iter().enumerate() {
                let b = batch(*n, 20, i as i64);
                let info = log.append(&b, 0, 0).expect("append");
                let prev = ends.last().map_or(0, |e| e.0);
                ends.push((prev + b.len() as u64, info.last_offset + 1));
            }
            let path = active_log_file(&log);
            drop(log);
            let total = ends.last().map_or(0, |e| e.0);
            let cut = (total as f64 * cut_frac) as u64;
            std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(cut).expect("cut");
            let expect = ends.iter().rev().find(|(len, _)| *len <= cut).map_or(0, |e| e.1);
            let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("recover");
            proptest::prop_assert_eq!(log.log_end_offset(), expect);
        }
    }
}
