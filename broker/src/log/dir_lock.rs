//! Exclusive ownership of the log directories: Kafka's `.lock` file in each,
//! held with an OS file lock for the process's life. Holding them proves that
//! no earlier process of this broker still runs, which is what lets a
//! restarted broker take over its predecessor's coordinator session at once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::LogError;

/// Kafka's name for the lock file of a log directory.
const LOCK_FILE: &str = ".lock";

/// The locks on every log directory; released when dropped (or when the
/// process dies, however it dies).
#[derive(Debug)]
pub struct DirLocks {
    _files: Vec<File>,
}

/// Creates each directory if needed and locks it, failing if another process
/// holds any of them.
pub fn lock_dirs(dirs: &[PathBuf]) -> Result<DirLocks, LogError> {
    let files = dirs
        .iter()
        .map(|dir| lock_one(dir))
        .collect::<Result<_, _>>()?;
    Ok(DirLocks { _files: files })
}

fn lock_one(dir: &Path) -> Result<File, LogError> {
    std::fs::create_dir_all(dir).map_err(LogError::io("create", dir))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(LogError::io("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::DirInUse(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(LogError::io("lock", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dirs = vec![dir.path().join("a"), dir.path().join("b")];
        let first = lock_dirs(&dirs).expect("first lock");
        match lock_dirs(&dirs[1..]) {
            Err(LogError::DirInUse(d)) => assert_eq!(d, dirs[1]),
            other => panic!("expected DirInUse, got {other:?}"),
        }
        drop(first);
        lock_dirs(&dirs).expect("lock after release");
    }
}
