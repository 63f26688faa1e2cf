//! Durable storage as ZooKeeper lays it out: snapshots in `dataDir/version-2`,
//! the transaction log in `dataLogDir/version-2`; recovery (newest valid
//! snapshot plus the log after it) and purging of files no longer needed.

pub mod snapshot;
pub mod syncer;
pub mod txnlog;

use std::io;
use std::path::{Path, PathBuf};

use crate::db::ZkDb;
use txnlog::LogWriter;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no valid snapshot and the log does not start at the first transaction (first log starts at {0:#x}): refusing to start with missing data")]
    Gap(i64),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    snap_dir: PathBuf,
    log_dir: PathBuf,
    retain: usize,
}

/// Files in `dir` named `<prefix>.<hex zxid>`, oldest first.
fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        if let Ok(zxid) = i64::from_str_radix(hex, 16) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Storage {
    pub fn open(data_dir: &Path, data_log_dir: &Path, retain: usize) -> Result<Self, StorageError> {
        let snap_dir = data_dir.join("version-2");
        let log_dir = data_log_dir.join("version-2");
        for dir in [&snap_dir, &log_dir] {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        Ok(Self {
            snap_dir,
            log_dir,
            retain,
        })
    }

    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    /// Loads the newest snapshot that passes its checksum (falling back to
    /// older ones), replays the log after it, truncates a torn tail, and opens
    /// a fresh log file for new transactions.
    pub fn recover(&self) -> Result<(ZkDb, LogWriter), StorageError> {
        let snaps = list(&self.snap_dir, "snapshot.").map_err(io_err("list", &self.snap_dir))?;
        let mut db = None;
        for (zxid, path) in snaps.iter().rev() {
            match std::fs::read(path).map(|b| ZkDb::from_snapshot(&b)) {
                Ok(Ok(loaded)) => {
                    tracing::info!(path = %path.display(), zxid = format_args!("{zxid:#x}"), nodes = loaded.tree.len(), "loaded snapshot");
                    db = Some(loaded);
                    break;
                }
                Ok(Err(e)) => {
                    tracing::error!(path = %path.display(), error = %e, "corrupt snapshot, trying the previous one")
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "unreadable snapshot, trying the previous one")
                }
            }
        }
        let had_snapshots = !snaps.is_empty();
        let mut db = db.unwrap_or_default();

        let logs = list(&self.log_dir, "log.").map_err(io_err("list", &self.log_dir))?;
        // Without a usable snapshot the log must reach back to the first zxid.
        if let Some((first, _)) = logs.first() {
            if db.last_zxid == 0 && had_snapshots && *first > 1 {
                return Err(StorageError::Gap(*first));
            }
        }
        let mut changes = Vec::new();
        let mut replayed = 0usize;
        for (i, (start, path)) in logs.iter().enumerate() {
            // Skip files that end before the snapshot: the next one starts at or below it.
            if logs
                .get(i + 1)
                .is_some_and(|(next, _)| *next <= db.last_zxid + 1)
            {
                continue;
            }
            let contents = txnlog::read(path).map_err(io_err("read", path))?;
            for entry in &contents.entries {
                if entry.zxid <= db.last_zxid {
                    continue;
                }
                db.apply(entry, &mut changes);
                changes.clear();
                replayed += 1;
            }
            if let Some(problem) = contents.problem {
                tracing::warn!(
                    path = %path.display(),
                    start = format_args!("{start:#x}"),
                    valid_bytes = contents.valid_len,
                    problem,
                    "transaction log ends in a torn or corrupt record; truncating it there"
                );
            }
            // A crashed writer leaves its preallocated zeros too: cut them, or
            // every later recovery reads them again, file after file.
            if contents.valid_len < contents.file_len {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err("open", path))?;
                file.set_len(contents.valid_len)
                    .map_err(io_err("truncate", path))?;
                file.sync_all().map_err(io_err("sync", path))?;
            }
        }
        tracing::info!(
            replayed,
            zxid = format_args!("{:#x}", db.last_zxid),
            nodes = db.tree.len(),
            sessions = db.sessions.len(),
            "recovered"
        );
        let writer = LogWriter::create(&self.log_dir, db.last_zxid + 1)
            .map_err(io_err("create log in", &self.log_dir))?;
        Ok((db, writer))
    }

    /// Keeps the newest `retain` snapshots and the log files still needed to
    /// replay from the oldest of them; deletes the rest.
    pub fn purge(&self) -> io::Result<()> {
        let snaps = list(&self.snap_dir, "snapshot.")?;
        if snaps.len() <= self.retain {
            return Ok(());
        }
        let keep_from = snaps[snaps.len() - self.retain].0;
        for (_, path) in &snaps[..snaps.len() - self.retain] {
            std::fs::remove_file(path)?;
        }
        let logs = list(&self.log_dir, "log.")?;
        // The newest log starting at or before keep_from+1 holds what follows that snapshot.
        let needed = logs
            .iter()
            .rposition(|(start, _)| *start <= keep_from + 1)
            .unwrap_or(0);
        for (_, path) in &logs[..needed] {
            std::fs::remove_file(path)?;
        }
        tracing::info!(
            snapshots_kept = self.retain,
            logs_removed = needed,
            "purged old snapshots and logs"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;
    use crate::txn::{Txn, TxnEntry};
    use bytes::BytesMut;

    fn create(zxid: i64) -> TxnEntry {
        TxnEntry {
            zxid,
            time: zxid,
            txn: Txn::Create {
                path: format!("/n{zxid}"),
                data: vec![1],
                acl: vec![Acl::open()],
                ephemeral_owner: 0,
            },
        }
    }

    fn append(writer: &mut LogWriter, zxids: std::ops::RangeInclusive<i64>) {
        let mut buf = BytesMut::new();
        for z in zxids {
            txnlog::frame(&create(z), &mut buf);
        }
        writer.append(&buf).expect("append");
        writer.sync().expect("sync");
    }

    #[test]
    fn recovers_snapshot_plus_log_and_survives_a_bad_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path(), dir.path(), 3).expect("open");
        let (mut db, mut writer) = storage.recover().expect("empty recover");
        append(&mut writer, 1..=5);
        let mut changes = Vec::new();
        for z in 1..=5 {
            db.apply(&create(z), &mut changes);
        }
        snapshot::write(storage.snap_dir(), 5, &db.snapshot()).expect("snapshot");
        writer.roll(6).expect("roll");
        append(&mut writer, 6..=8);
        for z in 6..=7 {
            db.apply(&create(z), &mut changes);
        }
        // A newer, corrupt snapshot must be skipped in favour of the good one.
        std::fs::write(
            storage.snap_dir().join(snapshot::file_name(7)),
            b"EDDYSNP1garbage",
        )
        .expect("write");
        drop(writer);

        let (db, _writer) = storage.recover().expect("recover");
        assert_eq!(db.last_zxid, 8);
        for z in 1..=8 {
            assert!(db.tree.get(&format!("/n{z}")).is_some(), "/n{z}");
        }
    }

    #[test]
    fn a_crashed_writers_preallocation_is_cut_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path(), dir.path(), 3).expect("open");
        let (_db, mut writer) = storage.recover().expect("empty recover");
        append(&mut writer, 1..=3);
        // A crash: the writer never rolls, its file keeps the zeros.
        drop(writer);
        let path = storage.log_dir.join(txnlog::file_name(1));
        let len = |p: &Path| std::fs::metadata(p).expect("stat").len();
        let crashed = len(&path);
        let (db, _writer) = storage.recover().expect("recover");
        assert_eq!(db.last_zxid, 3);
        let cut = len(&path);
        assert!(cut < crashed, "{cut} of {crashed} bytes kept");
        assert_eq!(cut, txnlog::read(&path).expect("read").valid_len);
    }

    #[test]
    fn purge_keeps_what_the_retained_snapshots_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path(), dir.path(), 3).expect("open");
        let (db, mut writer) = storage.recover().expect("recover");
        for z in [10, 20, 30, 40] {
            append(&mut writer, (z - 9)..=z);
            snapshot::write(storage.snap_dir(), z, &db.snapshot()).expect("snapshot");
            writer.roll(z + 1).expect("roll");
        }
        storage.purge().expect("purge");
        let snaps = list(storage.snap_dir(), "snapshot.").expect("list");
        assert_eq!(snaps.iter().map(|s| s.0).collect::<Vec<_>>(), [20, 30, 40]);
        let logs = list(&dir.path().join("version-2"), "log.").expect("list");
        assert_eq!(logs.iter().map(|l| l.0).collect::<Vec<_>>(), [21, 31, 41]);
    }
}
