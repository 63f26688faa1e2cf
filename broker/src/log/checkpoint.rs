//! Kafka's per-log-dir checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): line "0", a count, then
//! `topic partition offset` lines, replaced atomically.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

pub(crate) const RECOVERY_POINT: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START: &str = "log-start-offset-checkpoint";

pub(crate) type Offsets = BTreeMap<(String, i32), i64>;

/// The offsets in `path`; a missing file is empty.
pub(crate) fn read(path: &Path) -> io::Result<Offsets> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Offsets::new()),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("bad entry count"))?;
    let mut out = Offsets::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(topic), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed line"));
        };
        let partition = p.parse().map_err(|_| bad("bad partition"))?;
        let offset = o.parse().map_err(|_| bad("bad offset"))?;
        out.insert((topic.to_owned(), partition), offset);
    }
    if out.len() != count {
        return Err(bad("entry count does not match"));
    }
    Ok(out)
}

/// Replaces `path` with `offsets`: temp file, fsync, rename.
pub(crate) fn write(path: &Path, offsets: &Offsets) -> io::Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
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
