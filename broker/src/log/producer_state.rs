//! Idempotent-producer state of one partition, by Kafka's
//! `ProducerStateManager` rules: the epoch and last five batches of each
//! producer id, sequence and epoch checks, duplicate detection, and the
//! `{offset:020}.snapshot` files that carry the state across restarts.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::LogError;

const CACHED_BATCHES: usize = 5;
const SNAPSHOT_SUFFIX: &str = "snapshot";
const SNAPSHOT_VERSION: u16 = 1;
/// pid + epoch + batch count.
const ENTRY_HEAD: usize = 8 + 2 + 1;
const BATCH_META: usize = 4 + 4 + 8 + 8 + 8;

/// What is remembered of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) timestamp: i64,
}

impl BatchMeta {
    /// A stamped batch's metadata.
    pub(crate) fn of(h: &BatchHeader) -> BatchMeta {
        BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

impl ProducerEntry {
    fn add(&mut self, epoch: i16, meta: BatchMeta) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
    }
}

type Producers = HashMap<i64, ProducerEntry, foldhash::fast::RandomState>;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    producers: Producers,
}

/// The producer updates of one append: checked batch by batch against the
/// state plus the batches before them, applied only once the bytes are
/// written.
#[derive(Debug)]
pub(crate) struct PendingAppend<'a> {
    state: &'a ProducerState,
    staged: Vec<(i64, ProducerEntry)>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

impl<'a> PendingAppend<'a> {
    fn entry(&self, pid: i64) -> Option<&ProducerEntry> {
        self.staged
            .iter()
            .rev()
            .find(|(p, _)| *p == pid)
            .map(|(_, e)| e)
            .or_else(|| self.state.producers.get(&pid))
    }

    /// Checks a batch whose offsets are already assigned and records it.
    /// `Ok(Some(original))` marks a duplicate of a cached batch.
    pub(crate) fn check(&mut self, h: &BatchHeader) -> Result<Option<BatchMeta>, LogError> {
        let pid = h.producer_id;
        if pid < 0 {
            return Ok(None);
        }
        let meta = BatchMeta::of(h);
        let mut entry = match self.entry(pid) {
            // An unknown producer may start at any sequence (its earlier
            // batches may have been removed by retention).
            None => ProducerEntry::default(),
            Some(e) => {
                if h.producer_epoch < e.epoch {
                    return Err(LogError::InvalidProducerEpoch {
                        producer_id: pid,
                        got: h.producer_epoch,
                        current: e.epoch,
                    });
                }
                if h.producer_epoch == e.epoch {
                    // Only a batch already in the log is a duplicate (as
                    // Kafka's `findDuplicateBatch` on the last entry): one
                    // repeating a batch of this same append is out of
                    // sequence, and answering it as a duplicate would ack
                    // offsets that are never written.
                    if let Some(dup) = self
                        .state
                        .producers
                        .get(&pid)
                        .filter(|c| c.epoch == h.producer_epoch)
                        .and_then(|c| {
                            c.batches.iter().find(|b| {
                                b.first_seq == meta.first_seq && b.last_seq == meta.last_seq
                            })
                        })
                    {
                        return Ok(Some(*dup));
                    }
                    if let Some(last) = e.batches.back() {
                        if !in_sequence(last.last_seq, meta.first_seq) {
                            return Err(LogError::OutOfOrderSequence {
                                producer_id: pid,
                                last: last.last_seq,
                                got: meta.first_seq,
                            });
                        }
                    }
                } else if meta.first_seq != 0 {
                    return Err(LogError::OutOfOrderSequence {
                        producer_id: pid,
                        last: -1,
                        got: meta.first_seq,
                    });
                }
                e.clone()
            }
        };
        entry.add(h.producer_epoch, meta);
        self.staged.push((pid, entry));
        Ok(None)
    }

    /// The updates to apply with [`ProducerState::apply`].
    pub(crate) fn into_updates(self) -> Vec<(i64, ProducerEntry)> {
        self.staged
    }
}

impl ProducerState {
    pub(crate) fn begin(&self) -> PendingAppend<'_> {
        PendingAppend {
            state: self,
            staged: Vec::new(),
        }
    }

    pub(crate) fn apply(&mut self, updates: Vec<(i64, ProducerEntry)>) {
        for (pid, entry) in updates {
            self.producers.insert(pid, entry);
        }
    }

    /// Replays a stored batch while rebuilding: no checks, as in Kafka.
    pub(crate) fn replay(&mut self, h: &BatchHeader) {
        if h.producer_id >= 0 {
            self.producers
                .entry(h.producer_id)
                .or_default()
                .add(h.producer_epoch, BatchMeta::of(h));
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(
            6 + self.producers.len() * (ENTRY_HEAD + CACHED_BATCHES * BATCH_META),
        );
        body.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (pid, e) in &self.producers {
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut out = crc32c::crc32c(&body).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// `None` for anything but a whole snapshot with a matching CRC.
    fn decode(raw: &[u8]) -> Option<ProducerState> {
        let (crc, body) = raw.split_first_chunk::<4>()?;
        if u32::from_be_bytes(*crc) != crc32c::crc32c(body) {
            return None;
        }
        let mut r = Reader(body);
        if r.u16()? != SNAPSHOT_VERSION {
            return None;
        }
        let count = r.u32()?;
        let mut producers = Producers::default();
        for _ in 0..count {
            let pid = r.i64()?;
            let epoch = r.u16()? as i16;
            let n = r.take(1)?[0];
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: r.u32()? as i32,
                    last_seq: r.u32()? as i32,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(pid, ProducerEntry { epoch, batches });
        }
        r.0.is_empty().then_some(ProducerState { producers })
    }

    /// Writes the state as of `offset` (the log end) atomically.
    pub(crate) fn write_snapshot(&self, dir: &Path, offset: i64) -> io::Result<()> {
        let path = snapshot_path(dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            io::Write::write_all(&mut f, &self.encode())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)
    }

    /// The newest readable snapshot at or below `max_offset`, with the
    /// offset the log must be replayed from.
    pub(crate) fn load_latest(
        dir: &Path,
        max_offset: i64,
    ) -> io::Result<Option<(ProducerState, i64)>> {
        let mut offsets = list_snapshots(dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for offset in offsets.into_iter().filter(|o| *o <= max_offset) {
            let path = snapshot_path(dir, offset);
            match std::fs::read(&path).ok().and_then(|raw| Self::decode(&raw)) {
                Some(state) => return Ok(Some((state, offset))),
                None => {
                    tracing::warn!(path = %path.display(), "unreadable producer snapshot skipped")
                }
            }
        }
        Ok(None)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Option<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(i64::from_be_bytes(a))
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    super::segment::file_path(dir, offset, SNAPSHOT_SUFFIX)
}

fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(offset) = name
            .strip_suffix(".snapshot")
            .and_then(|stem| stem.parse::<i64>().ok())
        {
            out.push(offset);
        }
    }
    Ok(out)
}

/// Removes snapshots outside `[min, max]`: below the log start they
/// describe deleted data, above the log end they describe truncated data.
pub(crate) fn delete_snapshots_outside(dir: &Path, min: i64, max: i64) -> io::Result<()> {
    for offset in list_snapshots(dir)? {
        if offset < min || offset > max {
            std::fs::remove_file(snapshot_path(dir, offset))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch_with;
    use crate::log::batch::{stamp, validate_produce};
    use kafka_protocol::records::Compression;

    /// A stamped header: `count` records at `offset` from producer `pid`.
    fn header(pid: i64, epoch: i16, seq: i32, count: usize, offset: i64) -> BatchHeader {
        let b = batch_with(count, 1, 0, (pid, epoch, seq), Compression::None);
        let h = validate_produce(&b, i32::MAX).expect("valid");
        let out = stamp(&b, &h, offset, 0, None).freeze();
        validate_produce(&out, i32::MAX).expect("valid")[0]
    }

    fn append(state: &mut ProducerState, h: &BatchHeader) -> Result<Option<BatchMeta>, LogError> {
        let mut p = state.begin();
        let r = p.check(h)?;
        let updates = p.into_updates();
        state.apply(updates);
        Ok(r)
    }

    #[test]
    fn sequences_epochs_and_duplicates() {
        let mut s = ProducerState::default();
        // Unknown producer: any first sequence.
        assert_eq!(append(&mut s, &header(7, 0, 5, 3, 0)).expect("ok"), None);
        assert_eq!(append(&mut s, &header(7, 0, 8, 2, 3)).expect("ok"), None);
        // Resent batch: the original offsets come back.
        let dup = append(&mut s, &header(7, 0, 5, 3, 99))
            .expect("ok")
            .expect("dup");
        assert_eq!((dup.first_offset, dup.last_offset), (0, 2));
        // Gap.
        let e = append(&mut s, &header(7, 0, 11, 1, 5)).expect_err("gap");
        assert_eq!(e.error_code(), 45);
        // New epoch must restart at 0.
        assert_eq!(
            append(&mut s, &header(7, 1, 3, 1, 5)).map_err(|e| e.error_code()),
            Err(45)
        );
        assert_eq!(append(&mut s, &header(7, 1, 0, 1, 5)).expect("ok"), None);
        // Older epoch.
        assert_eq!(
            append(&mut s, &header(7, 0, 10, 1, 6)).map_err(|e| e.error_code()),
            Err(47)
        );
        // No producer id: no checks.
        assert_eq!(append(&mut s, &header(-1, -1, -1, 1, 6)).expect("ok"), None);
    }

    #[test]
    fn only_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerState::default();
        let mut seq = i32::MAX - 3;
        for i in 0..7 {
            append(&mut s, &header(1, 0, seq, 2, i * 2)).expect("ok");
            seq = ((i64::from(seq) + 2) % (i64::from(i32::MAX) + 1)) as i32;
        }
        assert_eq!(s.producers[&1].batches.len(), CACHED_BATCHES);
        assert_eq!(s.producers[&1].batches.back().map(|b| b.first_seq), Some(8));
        assert_eq!(
            s.producers[&1].batches.front().map(|b| b.first_seq),
            Some(0)
        );
    }

    #[test]
    fn batches_of_one_request_are_checked_in_order() {
        let s = ProducerState::default();
        let mut p = s.begin();
        assert!(p.check(&header(3, 0, 0, 2, 0)).is_ok());
        assert!(p.check(&header(3, 0, 2, 2, 2)).is_ok());
        assert_eq!(
            p.check(&header(3, 0, 9, 1, 4)).map_err(|e| e.error_code()),
            Err(45)
        );
        // A batch repeated within one request is not a duplicate of the
        // first copy, which is not in the log yet (found by broker/fuzz).
        let mut p = s.begin();
        assert!(p.check(&header(4, 0, 0, 1, 0)).is_ok());
        assert_eq!(
            p.check(&header(4, 0, 0, 1, 1)).map_err(|e| e.error_code()),
            Err(45)
        );
    }

    #[test]
    fn snapshots_round_trip_and_reject_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ProducerState::default();
        append(&mut s, &header(1, 2, 0, 4, 0)).expect("ok");
        append(&mut s, &header(9, 0, 100, 1, 4)).expect("ok");
        s.write_snapshot(dir.path(), 5).expect("write");
        ProducerState::default()
            .write_snapshot(dir.path(), 9)
            .expect("write");
        let (loaded, at) = ProducerState::load_latest(dir.path(), 8)
            .expect("io")
            .expect("found");
        assert_eq!((loaded, at), (s.clone(), 5));

        let path = snapshot_path(dir.path(), 5);
        let mut raw = std::fs::read(&path).expect("read");
        raw[10] ^= 1;
        std::fs::write(&path, raw).expect("write");
        assert!(ProducerState::load_latest(dir.path(), 8)
            .expect("io")
            .is_none());
        delete_snapshots_outside(dir.path(), 6, 100).expect("delete");
        assert_eq!(list_snapshots(dir.path()).expect("list"), vec![9]);
    }
}
