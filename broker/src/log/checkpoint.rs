//! Kafka's checkpoint file format (line "0", a count, then one entry per
//! line, replaced atomically) and the per-log-dir files in it
//! (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`:
//! `topic partition offset` lines). `leader-epoch-checkpoint` uses the same
//! format.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

pub(crate) const RECOVERY_POINT: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START: &str = "log-start-offset-checkpoint";

pub(crate) type Offsets = BTreeMap<(String, i32), i64>;

/// The offsets in `path`; a missing file is empty.
pub(crate) fn read(path: &Path) -> io::Result<Offsets> {
    let entries = read_entries(path, |f| match f {
        [topic, p, o] => Some(((topic.to_string(), p.parse().ok()?), o.parse().ok()?)),
        _ => None,
    })?;
    Ok(entries.unwrap_or_default().into_iter().collect())
}

/// Replaces `path` with `offsets`: temp file, fsync, rename.
pub(crate) fn write(path: &Path, offsets: &Offsets) -> io::Result<()> {
    write_entries(
        path,
        offsets.len(),
        offsets
            .iter()
            .map(|((topic, partition), offset)| format!("{topic} {partition} {offset}")),
    )
}

/// Kafka's `CheckpointFile` format, shared with `leader-epoch-checkpoint`:
/// the entries of `path` (`None` if there is no file), each line's
/// space-separated fields turned into an entry by `parse`. A wrong version,
/// count or line is an `InvalidData` error naming the file.
pub(crate) fn read_entries<T>(
    path: &Path,
    mut parse: impl FnMut(&[&str]) -> Option<T>,
) -> io::Result<Option<Vec<T>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(invalid(path, "unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| invalid(path, "bad entry count"))?;
    let mut out = Vec::with_capacity(count.min(1024));
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        out.push(parse(&fields).ok_or_else(|| invalid(path, "malformed line"))?);
    }
    if out.len() != count {
        return Err(invalid(path, "entry count does not match"));
    }
    Ok(Some(out))
}

/// Replaces `path` with `count` entry lines in Kafka's checkpoint format:
/// temp file, fsync, rename.
pub(crate) fn write_entries(
    path: &Path,
    count: usize,
    lines: impl Iterator<Item = String>,
) -> io::Result<()> {
    let mut text = format!("0\n{count}\n");
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// An `InvalidData` error about the file at `path`.
pub(crate) fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RECOVERY_POINT);
        assert!(read(&path).expect("missing is empty").is_empty());
        let offsets = Offsets::from([(("a.b-c".to_owned(), 3), 42), (("t".to_owned(), 0), 0)]);
        write(&path, &offsets).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "0\n2\na.b-c 3 42\nt 0 0\n");
        assert_eq!(read(&path).expect("read"), offsets);
        std::fs::write(&path, "0\n3\nt 0 1\n").expect("write");
        assert!(read(&path).is_err());
    }
}
