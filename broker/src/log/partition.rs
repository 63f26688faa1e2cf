//! `Log`: one partition's segments, offsets and producer state. One writer
//! at a time appends under a short `std::sync::Mutex`; readers take an
//! `Arc` snapshot of the segment list and `pread` without that lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use tokio::sync::watch;

use super::batch::{self, BatchHeader};
use super::config::{LogConfig, TimestampType};
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::{self, ProducerState};
use super::segment::Segment;
use super::LogError;

/// What an append did. For a duplicate nothing was written and the offsets
/// are those the original batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub duplicate: bool,
}

/// Whole batches for a fetch, with the partition's offsets at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Where a restart left this log, from the manager's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// False when the log dir was not shut down cleanly: the partition's own
    /// clean marker is then not trusted either.
    pub dir_clean: bool,
    /// Offsets below this were fsynced; segments holding later offsets are
    /// scanned after a crash (the active segment always is).
    pub recovery_point: Option<i64>,
    pub log_start_offset: Option<i64>,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            dir_clean: true,
            recovery_point: None,
            log_start_offset: None,
        }
    }
}

/// State only the writer touches.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) producers: ProducerState,
    pub(super) unflushed_messages: i64,
    pub(super) closed: bool,
}

/// One partition's log. `Send + Sync`; share it as `Arc<Log>`.
#[derive(Debug)]
pub struct Log {
    pub(super) dir: PathBuf,
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) config: RwLock<Arc<LogConfig>>,
    /// Held for one append (or roll, truncation, retention), never across
    /// an `.await`, never together with another partition's.
    pub(super) writer: Mutex<Writer>,
    /// The published segment list, oldest first; replaced, never mutated,
    /// so a reader's snapshot stays valid.
    pub(super) segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    pub(super) log_start: AtomicI64,
    /// Stored after the bytes are readable.
    pub(super) log_end: AtomicI64,
    /// Everything below it is fsynced.
    pub(super) recovery_point: AtomicI64,
    pub(super) hw: watch::Sender<i64>,
    /// Changed only by the writer-lock holder, and before the log end
    /// moves past a new epoch's first batch, so an epoch query never sees
    /// data of an epoch it does not know.
    pub(super) epochs: RwLock<LeaderEpochCache>,
}

/// Locks that stay usable after a panic elsewhere: the data they guard is
/// only ever replaced whole.
fn relock<T>(r: std::sync::LockResult<T>) -> T {
    r.unwrap_or_else(|e| e.into_inner())
}

impl Log {
    pub(super) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        relock(self.writer.lock())
    }

    pub(super) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        relock(self.segments.read()).clone()
    }

    pub(super) fn epochs(&self) -> std::sync::RwLockReadGuard<'_, LeaderEpochCache> {
        relock(self.epochs.read())
    }

    pub(super) fn epochs_mut(&self) -> std::sync::RwLockWriteGuard<'_, LeaderEpochCache> {
        relock(self.epochs.write())
    }

    pub(super) fn publish(&self, segments: Vec<Arc<Segment>>) {
        *relock(self.segments.write()) = Arc::new(segments);
    }

    pub(super) fn io(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> LogError + '_ {
        LogError::io(op, &self.dir)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> Arc<LogConfig> {
        relock(self.config.read()).clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        *relock(self.config.write()) = Arc::new(config);
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.hw.borrow()
    }

    /// Moves the high watermark (clamped to the log end) and wakes waiting
    /// fetches when it changes.
    pub fn set_high_watermark(&self, hw: i64) {
        let hw = hw.clamp(self.log_start_offset(), self.log_end_offset());
        self.hw
            .send_if_modified(|cur| std::mem::replace(cur, hw) != hw);
    }

    pub fn subscribe_hw(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }

    /// Validates `records`, applies the idempotent-producer rules, assigns
    /// offsets and writes every batch with one write call.
    pub fn append(
        &self,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let config = self.config();
        let headers = batch::validate_produce(records, config.max_message_bytes)?;
        let log_append_time =
            (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);

        let mut w = self.lock_writer();
        if w.closed {
            return Err(LogError::Closed(format!(
                "{}-{}",
                self.topic, self.partition
            )));
        }
        let first = self.log_end_offset();
        let mut stamped = headers.clone();
        let mut next = first;
        for h in &mut stamped {
            h.base_offset = next;
            h.leader_epoch = leader_epoch;
            next = h.last_offset() + 1;
            if let Some(now) = log_append_time {
                h.max_timestamp = now;
            }
        }
        let last = next - 1;

        let mut pending = w.producers.begin();
        for h in &stamped {
            if let Some(original) = pending.check(h)? {
                return Ok(AppendInfo {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time: -1,
                    log_start_offset: self.log_start_offset(),
                    duplicate: true,
                });
            }
        }
        let updates = pending.into_updates();

        let bytes = batch::stamp(records, &headers, first, leader_epoch, log_append_time);
        self.write_batches(&mut w, &config, &bytes, &stamped, now_ms)?;
        w.producers.apply(updates);
        self.count_unflushed(&mut w, &config, &stamped)?;
        Ok(AppendInfo {
            base_offset: first,
            last_offset: last,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    /// Writes stored-form batches at the log end with one write call and
    /// publishes the new log end. New leader epochs go to the checkpoint
    /// first: a crash then leaves at worst an entry past the log end, which
    /// opening drops, never batches of an epoch the cache lacks.
    pub(super) fn write_batches(
        &self,
        w: &mut Writer,
        config: &LogConfig,
        bytes: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let Some(last) = headers.last() else {
            return Ok(());
        };
        {
            let mut epochs = self.epochs_mut();
            let mut changed = false;
            for h in headers {
                changed |= epochs.assign(h.leader_epoch, h.base_offset);
            }
            if changed {
                epochs
                    .write(&self.dir)
                    .map_err(self.io("write leader epoch checkpoint in"))?;
            }
        }
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        let active = self.maybe_roll(
            w,
            config,
            bytes.len() as u64,
            last.last_offset(),
            max_timestamp,
            now_ms,
        )?;
        active
            .append(bytes, headers, index_interval(config))
            .map_err(LogError::io("append to", active.log_path()))?;
        self.log_end
            .store(last.last_offset() + 1, Ordering::Release);
        Ok(())
    }

    /// Counts appended records towards `flush.messages`, flushing when due.
    pub(super) fn count_unflushed(
        &self,
        w: &mut Writer,
        config: &LogConfig,
        headers: &[BatchHeader],
    ) -> Result<(), LogError> {
        w.unflushed_messages += headers
            .iter()
            .map(|h| i64::from(h.record_count))
            .sum::<i64>();
        if w.unflushed_messages >= config.flush_messages {
            w.unflushed_messages = 0;
            self.flush()?;
        }
        Ok(())
    }

    /// The active segment, after rolling a new one if this append would
    /// overfill it, it is older than `segment.ms`, or offsets or positions
    /// would overflow its 4-byte index fields.
    fn maybe_roll(
        &self,
        w: &mut Writer,
        config: &LogConfig,
        append_bytes: u64,
        last_offset: i64,
        max_timestamp: i64,
        now_ms: i64,
    ) -> Result<Arc<Segment>, LogError> {
        let segments = self.segments();
        let Some(active) = segments.last() else {
            return Err(LogError::Closed(format!(
                "{}-{} has no segment",
                self.topic, self.partition
            )));
        };
        let size = active.size();
        let roll = size > 0
            && (size + append_bytes > config.segment_bytes.max(0) as u64
                || active.age_ms(max_timestamp, now_ms) > config.segment_ms
                || !active.fits(last_offset, append_bytes));
        if !roll {
            return Ok(active.clone());
        }
        let base = self.log_end_offset();
        active
            .seal()
            .map_err(LogError::io("seal", active.log_path()))?;
        let new = Arc::new(
            Segment::create(&self.dir, base, now_ms).map_err(self.io("create segment in"))?,
        );
        let mut list = segments.as_ref().clone();
        list.push(new.clone());
        self.publish(list);
        w.producers
            .write_snapshot(&self.dir, base)
            .map_err(self.io("write producer snapshot in"))?;
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled segment");
        Ok(new)
    }

    /// Whole batches from the one holding `fetch_offset`, ending before
    /// `max_offset` (the high watermark for consumers), at most `max_bytes`
    /// unless `min_one_batch` lets the first batch through whole (KIP-74).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let log_end = self.log_end_offset();
        let high_watermark = self.high_watermark();
        let log_start = self.log_start_offset();
        let out_of_range = || LogError::OffsetOutOfRange {
            offset: fetch_offset,
            log_start,
            log_end,
        };
        if fetch_offset < log_start || fetch_offset > log_end {
            return Err(out_of_range());
        }
        let mut result = ReadResult {
            records: Bytes::new(),
            high_watermark,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        let limit = max_offset.min(log_end);
        if fetch_offset >= limit {
            return Ok(result);
        }
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset() <= fetch_offset);
        let Some(first) = first.checked_sub(1) else {
            // Retention removed the segment after the range check.
            return Err(out_of_range());
        };
        for seg in &segments[first..] {
            let end = seg.size();
            let found = seg
                .find(fetch_offset, end)
                .map_err(LogError::io("read", seg.log_path()))?;
            let Some((pos, head)) = found else {
                continue;
            };
            if head.last_offset() >= limit || (head.size > max_bytes && !min_one_batch) {
                break;
            }
            let want = max_bytes
                .max(head.size)
                .min(usize::try_from(end - pos).unwrap_or(usize::MAX));
            let mut buf = match seg.read(pos, want) {
                Ok(buf) => buf,
                // A truncation raced with this read: nothing to return.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(LogError::io("read", seg.log_path())(e)),
            };
            buf.truncate(whole_batches_below(&buf, limit));
            result.records = buf.freeze();
            break;
        }
        Ok(result)
    }

    /// The first offset whose timestamp is at or after `timestamp`, with
    /// that record's timestamp (ListOffsets by time).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let segments = self.segments();
        let log_start = self.log_start_offset();
        let Some(seg) = segments.iter().find(|s| s.max_timestamp() >= timestamp) else {
            return Ok(None);
        };
        let end = seg.size();
        let io = LogError::io("read", seg.log_path());
        let start = seg.time_lookup(timestamp).max(log_start);
        let Some((mut pos, _)) = seg
            .find(start, end)
            .map_err(LogError::io("read", seg.log_path()))?
        else {
            return Ok(None);
        };
        let mut found = None;
        seg.scan(pos, end, false, |p, h| {
            if found.is_none() && h.max_timestamp >= timestamp && h.last_offset() >= log_start {
                found = Some(*h);
                pos = p;
            }
        })
        .map_err(LogError::io("read", seg.log_path()))?;
        let Some(h) = found else {
            return Ok(None);
        };
        if h.attributes & batch::LOG_APPEND_TIME_BIT != 0 {
            return Ok(Some((h.base_offset, h.max_timestamp)));
        }
        let raw = seg.read(pos, h.size).map_err(io)?;
        Ok(Some(first_record_at_or_after(
            raw.freeze(),
            &h,
            timestamp,
            log_start,
        )))
    }

    /// fdatasync of every segment written since the last flush; the
    /// recovery point moves to the log end seen before syncing.
    pub fn flush(&self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        let from = self.recovery_point();
        for seg in self.segments().iter().filter(|s| s.next_offset() > from) {
            seg.flush().map_err(LogError::io("fsync", seg.log_path()))?;
        }
        self.recovery_point.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// fsyncs segments that were rolled since the last flush (Kafka flushes
    /// a segment when it stops being active), moving the recovery point to
    /// the active segment's base. Cheap when nothing rolled.
    pub fn flush_rolled(&self) -> Result<(), LogError> {
        let segments = self.segments();
        let Some((active, rolled)) = segments.split_last() else {
            return Ok(());
        };
        let from = self.recovery_point();
        if from >= active.base_offset() {
            return Ok(());
        }
        for seg in rolled.iter().filter(|s| s.next_offset() > from) {
            seg.flush().map_err(LogError::io("fsync", seg.log_path()))?;
        }
        self.recovery_point
            .fetch_max(active.base_offset(), Ordering::AcqRel);
        Ok(())
    }

    /// Deletes old non-active segments by `retention.ms` and
    /// `retention.bytes` and moves the log start; returns how many went.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config();
        let w = self.lock_writer();
        if w.closed {
            return Ok(0);
        }
        let segments = self.segments();
        let (old, active) = segments.split_at(segments.len().saturating_sub(1));
        let mut excess = if config.retention_bytes >= 0 {
            segments.iter().map(|s| s.size() as i64).sum::<i64>() - config.retention_bytes
        } else {
            0
        };
        let doomed = old
            .iter()
            .take_while(|s| {
                let by_time =
                    config.retention_ms >= 0 && now_ms - s.newest_ms() > config.retention_ms;
                let by_size = config.retention_bytes >= 0 && excess - s.size() as i64 >= 0;
                if by_time || by_size {
                    excess -= s.size() as i64;
                }
                by_time || by_size
            })
            .count();
        if doomed == 0 {
            return Ok(0);
        }
        let kept: Vec<_> = old[doomed..].iter().chain(active).cloned().collect();
        let new_start = kept
            .first()
            .map_or(self.log_end_offset(), |s| s.base_offset());
        self.publish(kept);
        self.log_start.fetch_max(new_start, Ordering::AcqRel);
        {
            let mut epochs = self.epochs_mut();
            if epochs.truncate_from_start(self.log_start_offset()) {
                // Not fatal: opening applies the log start to the cache again.
                if let Err(e) = epochs.write(&self.dir) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the leader epoch checkpoint");
                }
            }
        }
        drop(w);
        for seg in &old[..doomed] {
            seg.delete()
                .map_err(LogError::io("delete", seg.log_path()))?;
        }
        producer_state::delete_snapshots_outside(&self.dir, new_start, i64::MAX)
            .map_err(self.io("delete snapshots in"))?;
        tracing::info!(topic = %self.topic, partition = self.partition, segments = doomed, log_start = new_start, "retention deleted segments");
        Ok(doomed)
    }

    /// Flushes, writes the producer snapshot and the clean-shutdown marker;
    /// later appends fail.
    pub fn close(&self) -> Result<(), LogError> {
        let mut w = self.lock_writer();
        if w.closed {
            return Ok(());
        }
        w.closed = true;
        if let Some(active) = self.segments().last() {
            active
                .seal()
                .map_err(LogError::io("seal", active.log_path()))?;
        }
        self.flush()?;
        let end = self.log_end_offset();
        w.producers
            .write_snapshot(&self.dir, end)
            .map_err(self.io("write producer snapshot in"))?;
        std::fs::write(self.dir.join(super::recovery::CLEAN_MARKER), b"")
            .map_err(self.io("mark clean"))
    }

    /// Marks the log closed without touching its files (it is being deleted).
    pub(super) fn abandon(&self) {
        self.lock_writer().closed = true;
    }
}

fn index_interval(config: &LogConfig) -> u64 {
    u64::try_from(config.index_interval_bytes).unwrap_or(0)
}

/// Length of the prefix of `buf` made of whole batches ending before `limit`.
fn whole_batches_below(buf: &[u8], limit: i64) -> usize {
    let mut at = 0;
    while let Some(h) = BatchHeader::parse(&buf[at..]) {
        if at + h.size > buf.len() || h.last_offset() >= limit {
            break;
        }
        at += h.size;
    }
    at
}

/// The exact record within a CreateTime batch; the batch's base offset and
/// max timestamp if its records cannot be decoded.
fn first_record_at_or_after(
    raw: Bytes,
    h: &BatchHeader,
    timestamp: i64,
    log_start: i64,
) -> (i64, i64) {
    let mut buf = raw;
    RecordBatchDecoder::decode(&mut buf)
        .ok()
        .and_then(|set| {
            set.records
                .iter()
                .find(|r| r.timestamp >= timestamp && r.offset >= log_start)
                .map(|r| (r.offset, r.timestamp))
        })
        .unwrap_or((h.base_offset, h.max_timestamp))
}

#[cfg(test)]
pub(crate) mod tests;
