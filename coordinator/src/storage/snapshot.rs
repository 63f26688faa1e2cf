//! Snapshot files `snapshot.<zxid in hex>`. The state machine streams a
//! snapshot in chunks to a thread that writes it under a temporary name,
//! syncs it and only then renames it, so a crash never leaves a half file
//! under the real name, and the whole image never sits in memory at once.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::txnlog::sync_dir;
use super::Storage;

/// Bytes handed to the writer thread at a time.
const CHUNK: usize = 4 * 1024 * 1024;
/// Chunks in flight: bounds the memory a snapshot adds to a few chunks.
const IN_FLIGHT: usize = 4;

pub fn file_name(zxid: i64) -> String {
    format!("snapshot.{zxid:x}")
}

/// Writes a whole snapshot at once, for tests that lay out files by hand.
#[cfg(test)]
pub(crate) fn write(dir: &Path, zxid: i64, bytes: &[u8]) -> io::Result<PathBuf> {
    let (path, tmp) = names(dir, zxid);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    publish(file, &tmp, &path, dir)?;
    Ok(path)
}

fn names(dir: &Path, zxid: i64) -> (PathBuf, PathBuf) {
    (
        dir.join(file_name(zxid)),
        dir.join(format!("{}.tmp", file_name(zxid))),
    )
}

/// Syncs a complete temporary file and gives it its real name.
fn publish(file: File, tmp: &Path, path: &Path, dir: &Path) -> io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    sync_dir(dir)
}

enum Piece {
    Chunk(Vec<u8>),
    /// Everything was sent: publish the file.
    Done,
}

/// The state machine's end of a snapshot being written.
pub struct SnapshotStream {
    tx: SyncSender<Piece>,
    buf: Vec<u8>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl SnapshotStream {
    /// Starts the writer thread for the snapshot at `zxid`. Snapshots are
    /// written (and old files purged) one at a time.
    pub fn start(storage: Storage, zxid: i64, lock: Arc<Mutex<()>>) -> io::Result<Self> {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || write_from(rx, storage, zxid, &lock))?;
        Ok(Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
            thread,
        })
    }

    fn send(&mut self, piece: Piece) -> io::Result<()> {
        self.tx
            .send(piece)
            .map_err(|_| io::Error::other("snapshot writer stopped"))
    }

    /// Sends what is buffered and tells the writer the snapshot is complete;
    /// the writer then syncs, publishes and purges on its own. Its handle is
    /// returned for callers that want to wait.
    pub fn finish(mut self) -> io::Result<JoinHandle<()>> {
        let last = std::mem::take(&mut self.buf);
        self.send(Piece::Chunk(last))?;
        self.send(Piece::Done)?;
        Ok(self.thread)
    }
}

impl Write for SnapshotStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Piece::Chunk(full))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_from(rx: Receiver<Piece>, storage: Storage, zxid: i64, lock: &Mutex<()>) {
    // A poisoned lock only means an earlier snapshot thread panicked.
    let _one_at_a_time = lock.lock().unwrap_or_else(|p| p.into_inner());
    let dir = storage.snap_dir();
    let (path, tmp) = names(dir, zxid);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        let mut bytes = 0usize;
        for piece in rx {
            match piece {
                Piece::Chunk(chunk) => {
                    file.write_all(&chunk)?;
                    bytes += chunk.len();
                }
                Piece::Done => {
                    publish(file, &tmp, &path, dir)?;
                    return Ok(Some(bytes));
                }
            }
        }
        Ok::<_, io::Error>(None)
    })();
    match result {
        Ok(Some(bytes)) => tracing::info!(path = %path.display(), bytes, "snapshot written"),
        Ok(None) => {
            tracing::warn!(
                zxid = format_args!("{zxid:#x}"),
                "snapshot abandoned before it was complete"
            );
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "snapshot write failed; the log still holds every transaction");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
    }
    if let Err(e) = storage.purge() {
        tracing::warn!(error = %e, "purging old snapshots and logs failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_snapshot_appears_only_when_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path(), dir.path(), 3).expect("open");
        let lock = Arc::new(Mutex::new(()));
        let mut stream = SnapshotStream::start(storage.clone(), 7, lock).expect("start");
        let payload: Vec<u8> = (0..CHUNK * 2 + 10).map(|i| i as u8).collect();
        stream.write_all(&payload[..CHUNK + 3]).expect("write");
        let path = storage.snap_dir().join(file_name(7));
        assert!(!path.exists(), "not published before finish");
        stream.write_all(&payload[CHUNK + 3..]).expect("write");
        stream
            .finish()
            .expect("finish")
            .join()
            .expect("writer thread");
        assert_eq!(std::fs::read(&path).expect("published"), payload);
        assert!(!storage
            .snap_dir()
            .join(format!("{}.tmp", file_name(7)))
            .exists());
    }
}
