//! The coordinator session of this broker's running process, kept in its log
//! directories (`coordinator-session`): id and password. A broker restarted
//! after a crash owns the same directories (their lock proves its
//! predecessor is gone), reads the session back and closes it, so its stale
//! registration and controller role go at once instead of after the session
//! timeout.

use std::io::Write;
use std::path::{Path, PathBuf};

use zookeeper_client::{SessionId, SessionInfo};

const FILE: &str = "coordinator-session";

/// Where the session is kept: every log directory, so that losing one
/// does not lose it.
#[derive(Debug, Clone, Default)]
pub struct SessionFile {
    dirs: Vec<PathBuf>,
}

impl SessionFile {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        SessionFile { dirs }
    }

    /// The session the last process recorded, if any directory holds a
    /// readable one.
    pub fn load(&self) -> Option<SessionInfo> {
        self.dirs.iter().find_map(|d| {
            let text = std::fs::read_to_string(d.join(FILE)).ok()?;
            parse(&text)
        })
    }

    /// Records `session`; a failure is logged, never fatal (without the
    /// file a restart only waits for the old session to expire).
    pub fn store(&self, session: &SessionInfo) {
        let text = format!(
            "# The coordinator session of the broker process using this directory.\n\
             session.id={:#x}\nsession.password={}\n",
            session.id().0,
            hex(session.password())
        );
        for dir in &self.dirs {
            if let Err(e) = write_private(&dir.join(FILE), text.as_bytes()) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot record the coordinator session");
            }
        }
    }

    /// Forgets the session (after a clean close there is none to take back).
    pub fn clear(&self) {
        for dir in &self.dirs {
            match std::fs::remove_file(dir.join(FILE)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the coordinator session record")
                }
            }
        }
    }
}

/// Written whole or not at all (temp file, then rename), readable by the
/// owner only: the password lets anyone take the session over.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    std::fs::rename(&tmp, path)
}

fn parse(text: &str) -> Option<SessionInfo> {
    // Our own `key=value` lines (the file is ours alone), comments skipped.
    let value = |key: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key))
            .map(|(_, v)| v.trim())
    };
    let id = i64::from_str_radix(value("session.id")?.strip_prefix("0x")?, 16).ok()?;
    let password = unhex(value("session.password")?)?;
    Some(SessionInfo::from_parts(SessionId(id), password))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_every_dir_and_clears() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        for d in &dirs {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let file = SessionFile::new(dirs.clone());
        assert!(file.load().is_none());
        let info = SessionInfo::from_parts(SessionId(0x1234_abcd), vec![0, 1, 0xfe, 0xff]);
        file.store(&info);
        std::fs::remove_file(dirs[0].join(FILE)).expect("lose one copy");
        let back = file.load().expect("read back from the other dir");
        assert_eq!(back.id(), info.id());
        assert_eq!(back.password(), info.password());
        file.clear();
        assert!(file.load().is_none());
    }

    #[test]
    fn garbage_is_no_session() {
        for text in [
            "",
            "session.id=12\nsession.password=00\n",
            "session.id=0x12\nsession.password=0g\n",
            "session.id=0x12\nsession.password=000\n",
        ] {
            assert!(parse(text).is_none(), "{text:?}");
        }
    }
}
