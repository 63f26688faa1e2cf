//! A segment's sparse `.index` (offset -> file position) and `.timeindex`
//! (timestamp -> offset): kept in memory, appended to their files lazily.
//!
//! The files are a cache: recovery rebuilds them from the `.log`, so new
//! entries are written only when the segment is flushed, rolled or closed,
//! and the produce path never pays a syscall for them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One fixed-size entry of an index file.
pub(crate) trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

/// Kafka's `.index` entry: both fields relative to the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) rel_offset: u32,
    pub(crate) position: u32,
}

/// Kafka's `.timeindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) rel_offset: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel_offset: u32_at(b, 0),
            position: u32_at(b, 4),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            rel_offset: u32_at(b, 8),
        }
    }
}

/// The entries of one index file, with the first `persisted` on disk.
#[derive(Debug)]
pub(crate) struct Index<E> {
    path: PathBuf,
    file: File,
    entries: Vec<E>,
    persisted: usize,
}

impl<E: Entry> Index<E> {
    /// Opens (or creates) `path` and reads its whole entries; a torn last
    /// entry is dropped. The caller checks the entries against the log.
    pub(crate) fn open(path: &Path) -> io::Result<Index<E>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        let mut raw = vec![0u8; len - len % E::SIZE];
        file.read_exact_at(&mut raw, 0)?;
        let entries: Vec<E> = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        let persisted = entries.len();
        Ok(Index {
            path: path.to_owned(),
            file,
            entries,
            persisted,
        })
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub(crate) fn push(&mut self, e: E) {
        self.entries.push(e);
    }

    /// Keeps the first `n` entries, in memory and on disk.
    pub(crate) fn truncate(&mut self, n: usize) -> io::Result<()> {
        self.entries.truncate(n);
        if self.persisted > n {
            self.persisted = n;
            self.file.set_len((n * E::SIZE) as u64)?;
        }
        Ok(())
    }

    /// Writes the entries not yet on disk.
    pub(crate) fn persist(&mut self) -> io::Result<()> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * E::SIZE);
        for e in &self.entries[self.persisted..] {
            e.encode(&mut buf);
        }
        self.file
            .write_all_at(&buf, (self.persisted * E::SIZE) as u64)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Index<OffsetEntry> {
    /// The file position of the last indexed batch whose last offset is at
    /// or before `rel_offset`; 0 when none is.
    pub(crate) fn position_for(&self, rel_offset: u32) -> u32 {
        let i = self.entries.partition_point(|e| e.rel_offset <= rel_offset);
        i.checked_sub(1).map_or(0, |i| self.entries[i].position)
    }
}

impl Index<TimeEntry> {
    /// The relative offset to start a scan for `timestamp` at: the entry of
    /// the largest timestamp below it, or the segment start.
    pub(crate) fn offset_for(&self, timestamp: i64) -> u32 {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        i.checked_sub(1).map_or(0, |i| self.entries[i].rel_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopen_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let mut idx = Index::<OffsetEntry>::open(&path).expect("open");
        for i in 0..4 {
            idx.push(OffsetEntry {
                rel_offset: i * 10,
                position: i * 4096,
            });
        }
        idx.persist().expect("persist");
        let f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all_at(&[1, 2, 3], 32).expect("torn write");
        let idx = Index::<OffsetEntry>::open(&path).expect("reopen");
        assert_eq!(idx.entries().len(), 4);
        assert_eq!(idx.position_for(0), 0);
        assert_eq!(idx.position_for(9), 0);
        assert_eq!(idx.position_for(10), 4096);
        assert_eq!(idx.position_for(35), 3 * 4096);
    }

    #[test]
    fn truncate_shrinks_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.timeindex");
        let mut idx = Index::<TimeEntry>::open(&path).expect("open");
        for i in 0..5 {
            idx.push(TimeEntry {
                timestamp: 100 * i64::from(i),
                rel_offset: i,
            });
        }
        idx.persist().expect("persist");
        idx.truncate(2).expect("truncate");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 24);
        assert_eq!(idx.offset_for(150), 1);
        assert_eq!(idx.offset_for(0), 0);
        assert_eq!(idx.offset_for(10_000), 1);
    }
}
