//! Snapshot files `snapshot.<zxid in hex>`: written to a temporary name,
//! synced, then renamed, so a crash never leaves a half file under the real name.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::txnlog::sync_dir;

pub fn file_name(zxid: i64) -> String {
    format!("snapshot.{zxid:x}")
}

pub fn write(dir: &Path, zxid: i64, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(file_name(zxid));
    let tmp = dir.join(format!("{}.tmp", file_name(zxid)));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(path)
}
