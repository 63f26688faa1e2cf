//! One segment: the `{base:020}.log` file of stored batches and its two
//! indexes. The partition's writer appends; readers `pread` concurrently up
//! to the published size, so a reader never sees a half-written batch.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::BytesMut;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::index::{Index, OffsetEntry, TimeEntry};

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `<dir>/<offset:020>.<suffix>`, Kafka's file naming.
pub(crate) fn file_path(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{offset:020}.{suffix}"))
}

#[derive(Debug)]
pub(crate) struct Segment {
    dir: PathBuf,
    base_offset: i64,
    file: File,
    /// Bytes readers may read; stored after the bytes are written.
    size: AtomicU64,
    /// One past the last offset stored (the base offset when empty).
    next_offset: AtomicI64,
    /// Largest batch maxTimestamp, -1 when empty: drives time retention.
    max_timestamp: AtomicI64,
    /// Wall-clock creation time: `segment.ms` counts from it until a batch
    /// with a timestamp arrives.
    created_ms: i64,
    /// Second handles on the index files, so an fsync runs without the
    /// index lock.
    index_files: [File; 2],
    /// Index state; readers lock it only for a binary search.
    state: Mutex<IndexState>,
}

#[derive(Debug)]
struct IndexState {
    offsets: Index<OffsetEntry>,
    times: Index<TimeEntry>,
    bytes_since_entry: u64,
    /// Relative last offset of the batch holding `max_timestamp`.
    max_ts_rel_offset: u32,
    /// The first batch's maxTimestamp: `segment.ms` counts from it, as in Kafka.
    rolling_base: Option<i64>,
}

/// What a scan of the `.log` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// End of the last valid batch.
    pub(crate) valid_end: u64,
    /// Bytes after it that were cut off.
    pub(crate) truncated: u64,
}

impl Segment {
    /// A new empty segment; stale files of the same name are emptied.
    pub(crate) fn create(dir: &Path, base_offset: i64, created_ms: i64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(file_path(dir, base_offset, LOG_SUFFIX))?;
        let seg = Segment::with_file(dir, base_offset, file, created_ms)?;
        {
            let mut st = seg.lock();
            st.offsets.truncate(0)?;
            st.times.truncate(0)?;
        }
        Ok(seg)
    }

    /// An existing segment with its index files as found; call
    /// [`Segment::recover`] or [`Segment::load_tail`] before use.
    pub(crate) fn open(dir: &Path, base_offset: i64, created_ms: i64) -> io::Result<Segment> {
        let file = OpenOptions::new().read(true).write(true).open(file_path(
            dir,
            base_offset,
            LOG_SUFFIX,
        ))?;
        let seg = Segment::with_file(dir, base_offset, file, created_ms)?;
        let len = seg.file.metadata()?.len();
        seg.size.store(len, Ordering::Release);
        Ok(seg)
    }

    fn with_file(dir: &Path, base_offset: i64, file: File, created_ms: i64) -> io::Result<Segment> {
        let offsets = Index::open(&file_path(dir, base_offset, INDEX_SUFFIX))?;
        let times = Index::open(&file_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
        let index_files = [offsets.file().try_clone()?, times.file().try_clone()?];
        Ok(Segment {
            created_ms,
            index_files,
            dir: dir.to_owned(),
            base_offset,
            file,
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            state: Mutex::new(IndexState {
                offsets,
                times,
                bytes_since_entry: 0,
                max_ts_rel_offset: 0,
                rolling_base: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, IndexState> {
        // Index state stays consistent even if a holder panicked: every
        // update is a push or a truncate.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// How long this segment has been filling, by Kafka's rule: the new
    /// batch's timestamp minus the first batch's, else wall-clock age.
    pub(crate) fn age_ms(&self, incoming_timestamp: i64, now_ms: i64) -> i64 {
        match self.lock().rolling_base {
            Some(first) if first >= 0 => incoming_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// The newest data's age for time retention: the largest timestamp, or
    /// the creation time for a segment without timestamps.
    pub(crate) fn newest_ms(&self) -> i64 {
        match self.max_timestamp() {
            ts if ts >= 0 => ts,
            _ => self.created_ms,
        }
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        file_path(&self.dir, self.base_offset, LOG_SUFFIX)
    }

    /// Offsets this far from the base still fit a 4-byte relative offset.
    pub(crate) fn fits(&self, last_offset: i64, extra_bytes: u64) -> bool {
        u32::try_from(last_offset - self.base_offset).is_ok()
            && u32::try_from(self.size() + extra_bytes).is_ok()
    }

    fn rel(&self, offset: i64) -> u32 {
        // Callers roll before an offset stops fitting (see `fits`).
        u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX)
    }

    /// Writes whole stamped batches at the end and publishes them.
    pub(crate) fn append(
        &self,
        bytes: &[u8],
        batches: &[BatchHeader],
        index_interval: u64,
    ) -> io::Result<()> {
        let start = self.size.load(Ordering::Acquire);
        if let Err(e) = self.file.write_all_at(bytes, start) {
            // Drop a partial write so the next append starts clean.
            let _ = self.file.set_len(start);
            return Err(e);
        }
        let mut pos = start;
        let mut st = self.lock();
        for h in batches {
            self.note_batch(&mut st, pos, h, index_interval);
            pos += h.size as u64;
        }
        drop(st);
        self.size
            .store(start + bytes.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Index bookkeeping for one batch at `pos`, as Kafka's `LogSegment`:
    /// an offset entry (keyed by the batch's last offset) once more than
    /// `index_interval` bytes went by, and a time entry then if the largest
    /// timestamp grew.
    fn note_batch(&self, st: &mut IndexState, pos: u64, h: &BatchHeader, index_interval: u64) {
        if st.rolling_base.is_none() {
            st.rolling_base = Some(h.max_timestamp);
        }
        let last_rel = self.rel(h.last_offset());
        if h.max_timestamp > self.max_timestamp() {
            self.max_timestamp.store(h.max_timestamp, Ordering::Release);
            st.max_ts_rel_offset = last_rel;
        }
        if st.bytes_since_entry > index_interval {
            st.offsets.push(OffsetEntry {
                rel_offset: last_rel,
                position: u32::try_from(pos).unwrap_or(u32::MAX),
            });
            Self::maybe_time_entry(st, self.max_timestamp());
            st.bytes_since_entry = 0;
        }
        st.bytes_since_entry += h.size as u64;
        self.next_offset
            .store(h.last_offset() + 1, Ordering::Release);
    }

    fn maybe_time_entry(st: &mut IndexState, max_timestamp: i64) {
        if st.times.last().is_none_or(|e| max_timestamp > e.timestamp) && max_timestamp >= 0 {
            let rel_offset = st.max_ts_rel_offset;
            st.times.push(TimeEntry {
                timestamp: max_timestamp,
                rel_offset,
            });
        }
    }

    /// Reads the header at `pos` if a whole one lies before `end`.
    pub(crate) fn header_at(&self, pos: u64, end: u64) -> io::Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > end {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(BatchHeader::parse(&buf))
    }

    /// Walks the batches in `[from, end)`, calling `f` for each valid one,
    /// and stops at the first batch that is torn, not v2, or (with
    /// `verify_crc`) fails its CRC.
    pub(crate) fn scan(
        &self,
        from: u64,
        end: u64,
        verify_crc: bool,
        mut f: impl FnMut(u64, &BatchHeader),
    ) -> io::Result<u64> {
        let mut pos = from;
        let mut buf = BytesMut::new();
        while let Some(h) = self.header_at(pos, end)? {
            let batch_end = pos + h.size as u64;
            if h.magic != 2 || batch_end > end || h.base_offset < self.base_offset {
                break;
            }
            if verify_crc {
                buf.resize(h.size, 0);
                self.file.read_exact_at(&mut buf, pos)?;
                if !batch::crc_ok(buf.split().freeze()) {
                    break;
                }
            }
            f(pos, &h);
            pos = batch_end;
        }
        Ok(pos)
    }

    /// Rebuilds both indexes from the `.log`, truncating it after the last
    /// valid batch. Used for segments a crash may have torn.
    pub(crate) fn recover(&self, index_interval: u64) -> io::Result<ScanEnd> {
        {
            let mut st = self.lock();
            st.offsets.truncate(0)?;
            st.times.truncate(0)?;
            st.bytes_since_entry = 0;
            st.rolling_base = None;
        }
        self.next_offset.store(self.base_offset, Ordering::Release);
        self.max_timestamp.store(-1, Ordering::Release);
        let file_len = self.file.metadata()?.len();
        let valid_end = self.scan_and_index(0, file_len, true, index_interval)?;
        self.cut(valid_end, file_len)
    }

    /// Trusts the index files of a cleanly closed segment after checking
    /// their entries lie inside the `.log`, then reads the headers after the
    /// last entry to learn the end offset.
    pub(crate) fn load_tail(&self, index_interval: u64) -> io::Result<ScanEnd> {
        let file_len = self.file.metadata()?.len();
        let from = {
            let mut st = self.lock();
            let good = st
                .offsets
                .entries()
                .iter()
                .zip(std::iter::once(None).chain(st.offsets.entries().iter().map(Some)))
                .take_while(|(e, prev)| {
                    u64::from(e.position) < file_len
                        && prev
                            .is_none_or(|p| p.rel_offset < e.rel_offset && p.position < e.position)
                })
                .count();
            st.offsets.truncate(good)?;
            let good_times = st
                .times
                .entries()
                .iter()
                .zip(std::iter::once(None).chain(st.times.entries().iter().map(Some)))
                .take_while(|(e, prev)| prev.is_none_or(|p| p.timestamp < e.timestamp))
                .count();
            st.times.truncate(good_times)?;
            if let Some(t) = st.times.last().copied() {
                st.max_ts_rel_offset = t.rel_offset;
                self.max_timestamp.store(t.timestamp, Ordering::Release);
            }
            st.rolling_base = self.header_at(0, file_len)?.map(|h| h.max_timestamp);
            st.offsets.last().map_or(0, |e| u64::from(e.position))
        };
        let valid_end = self.scan_and_index(from, file_len, false, index_interval)?;
        self.cut(valid_end, file_len)
    }

    fn scan_and_index(
        &self,
        from: u64,
        end: u64,
        verify_crc: bool,
        index_interval: u64,
    ) -> io::Result<u64> {
        let mut headers = Vec::new();
        let valid_end = self.scan(from, end, verify_crc, |pos, h| headers.push((pos, *h)))?;
        let mut st = self.lock();
        // Re-reading from an indexed batch: it is already in the index.
        let skip_first = from > 0;
        for (i, (pos, h)) in headers.iter().enumerate() {
            if skip_first && i == 0 {
                self.next_offset
                    .store(h.last_offset() + 1, Ordering::Release);
                if h.max_timestamp > self.max_timestamp() {
                    self.max_timestamp.store(h.max_timestamp, Ordering::Release);
                    st.max_ts_rel_offset = self.rel(h.last_offset());
                }
                st.bytes_since_entry = h.size as u64;
                continue;
            }
            self.note_batch(&mut st, *pos, h, index_interval);
        }
        Ok(valid_end)
    }

    fn cut(&self, valid_end: u64, file_len: u64) -> io::Result<ScanEnd> {
        if valid_end < file_len {
            self.file.set_len(valid_end)?;
        }
        self.size.store(valid_end, Ordering::Release);
        Ok(ScanEnd {
            valid_end,
            truncated: file_len - valid_end,
        })
    }

    /// Position of the batch holding `offset` (its first batch with a last
    /// offset >= `offset`) and its header, reading no further than `end`.
    pub(crate) fn find(&self, offset: i64, end: u64) -> io::Result<Option<(u64, BatchHeader)>> {
        let mut pos = if offset <= self.base_offset {
            0
        } else {
            u64::from(self.lock().offsets.position_for(self.rel(offset)))
        };
        while let Some(h) = self.header_at(pos, end)? {
            if h.size as u64 + pos > end {
                return Ok(None);
            }
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// The offset a scan for `timestamp` should start at.
    pub(crate) fn time_lookup(&self, timestamp: i64) -> i64 {
        self.base_offset + i64::from(self.lock().times.offset_for(timestamp))
    }

    /// `len` bytes at `pos` into a buffer sized once.
    pub(crate) fn read(&self, pos: u64, len: usize) -> io::Result<BytesMut> {
        let mut buf = BytesMut::zeroed(len);
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Drops every batch from the one holding `offset` on, then rebuilds
    /// the indexes of what is left.
    pub(crate) fn truncate_to(&self, offset: i64, index_interval: u64) -> io::Result<()> {
        let size = self.size();
        if let Some((pos, _)) = self.find(offset, size)? {
            self.file.set_len(pos)?;
            self.size.store(pos, Ordering::Release);
        }
        self.recover(index_interval).map(|_| ())
    }

    /// Adds the final time entry Kafka writes when a segment stops being
    /// active (so its largest timestamp survives a restart), and writes the
    /// pending index entries.
    pub(crate) fn seal(&self) -> io::Result<()> {
        let mut st = self.lock();
        Self::maybe_time_entry(&mut st, self.max_timestamp());
        st.offsets.persist()?;
        st.times.persist()
    }

    /// fdatasync of the `.log` and both indexes.
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.file.sync_data()?;
        {
            let mut st = self.lock();
            st.offsets.persist()?;
            st.times.persist()?;
        }
        self.index_files.iter().try_for_each(File::sync_data)
    }

    /// Renames the files to `.deleted` (so a crash mid-way leaves nothing a
    /// restart would load), then removes them.
    pub(crate) fn delete(&self) -> io::Result<()> {
        let st = self.lock();
        let paths = [
            self.log_path(),
            st.offsets.path().to_owned(),
            st.times.path().to_owned(),
        ];
        drop(st);
        for p in &paths {
            let mut deleted = p.clone().into_os_string();
            deleted.push(".deleted");
            std::fs::rename(p, &deleted)?;
            std::fs::remove_file(&deleted)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::batch::{stamp, validate_produce};

    fn append_batches(seg: &Segment, count: usize, interval: u64) {
        for i in 0..count {
            let b = batch(2, 100, 1000 + i as i64);
            let h = validate_produce(&b, i32::MAX).expect("valid");
            let out = stamp(&b, &h, seg.next_offset(), 0, None);
            let h = validate_produce(&out.clone().freeze(), i32::MAX).expect("valid");
            seg.append(&out, &h, interval).expect("append");
        }
    }

    #[test]
    fn append_find_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = Segment::create(dir.path(), 0, 0).expect("create");
        append_batches(&seg, 50, 500);
        assert_eq!(seg.next_offset(), 100);
        let size = seg.size();
        let (pos, h) = seg.find(41, size).expect("io").expect("found");
        assert_eq!(h.base_offset, 40);
        assert!(pos > 0);
        assert!(seg.find(100, size).expect("io").is_none());
        seg.seal().expect("seal");
        drop(seg);

        let seg = Segment::open(dir.path(), 0, 0).expect("open");
        let end = seg.load_tail(500).expect("load");
        assert_eq!(end.truncated, 0);
        assert_eq!(seg.next_offset(), 100);
        assert_eq!(seg.max_timestamp(), 1000 + 49 + 1);
        assert_eq!(seg.find(41, size).expect("io").map(|f| f.0), Some(pos));
    }

    #[test]
    fn recover_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = Segment::create(dir.path(), 10, 0).expect("create");
        append_batches(&seg, 3, 4096);
        let good = seg.size();
        seg.file.write_all_at(&[7u8; 30], good).expect("garbage");
        drop(seg);
        let seg = Segment::open(dir.path(), 10, 0).expect("open");
        let end = seg.recover(4096).expect("recover");
        assert_eq!(
            end,
            ScanEnd {
                valid_end: good,
                truncated: 30
            }
        );
        assert_eq!(seg.next_offset(), 16);
        assert_eq!(std::fs::metadata(seg.log_path()).expect("meta").len(), good);
    }

    #[test]
    fn truncate_to_drops_the_batch_holding_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = Segment::create(dir.path(), 0, 0).expect("create");
        append_batches(&seg, 10, 0);
        seg.truncate_to(7, 0).expect("truncate");
        assert_eq!(seg.next_offset(), 6);
        assert!(seg.find(6, seg.size()).expect("io").is_none());
        assert_eq!(
            seg.find(5, seg.size())
                .expect("io")
                .map(|f| f.1.base_offset),
            Some(4)
        );
    }
}
