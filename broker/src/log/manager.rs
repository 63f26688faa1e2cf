//! `LogManager`: every partition log in the broker's `log.dirs`, their
//! checkpoint files and clean-shutdown markers, and the background tasks
//! for retention and flushing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::checkpoint;
use super::config::LogConfig;
use super::partition::{Log, Recovery};
use super::recovery::{dir_name, CLEAN_MARKER};
use super::LogError;
use crate::now_ms;

/// How often the background flusher looks at the logs and writes the
/// checkpoint files (`log.flush.scheduler.interval.ms`,
/// `log.flush.offset.checkpoint.interval.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushSettings {
    pub scheduler_interval: Duration,
    pub checkpoint_interval: Duration,
}

impl Default for FlushSettings {
    fn default() -> Self {
        FlushSettings {
            scheduler_interval: Duration::from_millis(1000),
            checkpoint_interval: Duration::from_millis(60_000),
        }
    }
}

type Key = (String, i32);

#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<PathBuf>,
    /// Short critical sections only (map lookups and inserts); never held
    /// while a log does I/O, except a new partition's directory creation.
    logs: RwLock<HashMap<Key, Arc<Log>>>,
}

fn relock<T>(r: std::sync::LockResult<T>) -> T {
    r.unwrap_or_else(|e| e.into_inner())
}

/// `(topic, partition)` from a `<topic>-<partition>` directory name; topic
/// names may hold '-' themselves, so the partition follows the last one.
fn parse_dir_name(name: &str) -> Option<Key> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    (!topic.is_empty()
        && partition >= 0
        && partition.to_string().len() == name.len() - topic.len() - 1)
        .then(|| (topic.to_owned(), partition))
}

fn read_checkpoint(dir: &Path, name: &str) -> checkpoint::Offsets {
    let path = dir.join(name);
    checkpoint::read(&path).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable checkpoint");
        checkpoint::Offsets::new()
    })
}

impl LogManager {
    /// Loads every `<topic>-<partition>` directory of `dirs`, recovering
    /// logs of a dir without a clean-shutdown marker, and finishes deletes
    /// a crash interrupted.
    pub fn open(dirs: Vec<PathBuf>, default_config: &LogConfig) -> Result<LogManager, LogError> {
        let mut logs = HashMap::new();
        for root in &dirs {
            let io = |op| LogError::io(op, root);
            std::fs::create_dir_all(root).map_err(io("create"))?;
            let marker = root.join(CLEAN_MARKER);
            let dir_clean = marker.exists();
            let recovery_points = read_checkpoint(root, checkpoint::RECOVERY_POINT);
            let log_starts = read_checkpoint(root, checkpoint::LOG_START);
            for entry in std::fs::read_dir(root).map_err(io("list"))? {
                let entry = entry.map_err(io("list"))?;
                if !entry.file_type().map_err(io("stat in"))?.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with("-delete") {
                    std::fs::remove_dir_all(entry.path())
                        .map_err(io("remove deleted partition in"))?;
                    continue;
                }
                let Some(key) = parse_dir_name(&name) else {
                    continue;
                };
                if logs.contains_key(&key) {
                    tracing::error!(dir = %entry.path().display(), "partition found in two log dirs; this copy is ignored");
                    continue;
                }
                let recovery = Recovery {
                    dir_clean,
                    recovery_point: recovery_points.get(&key).copied(),
                    log_start_offset: log_starts.get(&key).copied(),
                };
                let log = Log::open_with(root, &key.0, key.1, default_config.clone(), recovery)?;
                logs.insert(key, Arc::new(log));
            }
            if dir_clean {
                std::fs::remove_file(&marker).map_err(io("remove clean marker in"))?;
            }
        }
        Ok(LogManager {
            dirs,
            logs: RwLock::new(logs),
        })
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        relock(self.logs.read())
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// The existing log, or a new one in the log dir holding the fewest
    /// partitions.
    pub fn get_or_create(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Log>, LogError> {
        if let Some(log) = self.get(topic, partition) {
            return Ok(log);
        }
        let mut logs = relock(self.logs.write());
        let key = (topic.to_owned(), partition);
        if let Some(log) = logs.get(&key) {
            return Ok(log.clone());
        }
        let root = self
            .dirs
            .iter()
            .min_by_key(|d| {
                logs.values()
                    .filter(|l| l.dir().parent() == Some(d.as_path()))
                    .count()
            })
            .ok_or_else(|| LogError::Closed("no log.dirs configured".into()))?;
        let log = Arc::new(Log::open(root, topic, partition, config)?);
        logs.insert(key, log.clone());
        Ok(log)
    }

    /// Removes a partition: the directory is renamed to
    /// `<topic>-<partition>.<uuid>-delete` at once and removed in the
    /// background. Returns whether it existed.
    pub fn delete(&self, topic: &str, partition: i32) -> Result<bool, LogError> {
        let Some(log) = relock(self.logs.write()).remove(&(topic.to_owned(), partition)) else {
            return Ok(false);
        };
        log.abandon();
        let dir = log.dir().to_owned();
        let doomed = dir.with_file_name(format!(
            "{}.{}-delete",
            dir_name(topic, partition),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::rename(&dir, &doomed).map_err(LogError::io("rename for delete", &dir))?;
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&doomed) {
                tracing::warn!(dir = %doomed.display(), error = %e, "could not remove deleted partition");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
        Ok(true)
    }

    /// Applies a topic's new effective config to its open partitions.
    pub fn update_config(&self, topic: &str, config: LogConfig) {
        for log in relock(self.logs.read())
            .values()
            .filter(|l| l.topic() == topic)
        {
            log.set_config(config.clone());
        }
    }

    pub fn all(&self) -> Vec<Arc<Log>> {
        relock(self.logs.read()).values().cloned().collect()
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Runs time and size retention on every log; returns segments deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        self.all()
            .iter()
            .map(|log| {
                log.enforce_retention(now_ms).unwrap_or_else(|e| {
                    tracing::error!(topic = log.topic(), partition = log.partition(), error = %e, "retention failed");
                    0
                })
            })
            .sum()
    }

    /// Rewrites both checkpoint files of every log dir.
    pub fn write_checkpoints(&self) -> Result<(), LogError> {
        let logs = self.all();
        for root in &self.dirs {
            let mut recovery = checkpoint::Offsets::new();
            let mut starts = checkpoint::Offsets::new();
            for log in logs
                .iter()
                .filter(|l| l.dir().parent() == Some(root.as_path()))
            {
                let key = (log.topic().to_owned(), log.partition());
                recovery.insert(key.clone(), log.recovery_point());
                starts.insert(key, log.log_start_offset());
            }
            for (name, offsets) in [
                (checkpoint::RECOVERY_POINT, &recovery),
                (checkpoint::LOG_START, &starts),
            ] {
                let path = root.join(name);
                checkpoint::write(&path, offsets)
                    .map_err(LogError::io("write checkpoint", &path))?;
            }
        }
        Ok(())
    }

    /// One flusher pass: logs past their `flush.ms` are flushed whole, the
    /// others only for segments rolled since the last pass.
    fn flush_pass(&self, last_flush: &mut HashMap<Key, i64>, now_ms: i64) {
        for log in self.all() {
            let key = (log.topic().to_owned(), log.partition());
            let last = *last_flush.entry(key.clone()).or_insert(now_ms);
            let flush_ms = log.config().flush_ms;
            let result = if flush_ms != i64::MAX && now_ms - last >= flush_ms {
                last_flush.insert(key, now_ms);
                log.flush()
            } else {
                log.flush_rolled()
            };
            if let Err(e) = result {
                tracing::error!(topic = log.topic(), partition = log.partition(), error = %e, "flush failed");
            }
        }
    }

    /// Starts the retention and flush tasks; they stop when `shutdown` is
    /// cancelled. File work runs on the blocking pool.
    pub fn spawn_background(
        self: &Arc<Self>,
        shutdown: CancellationToken,
        retention_check_interval: Duration,
        flush: FlushSettings,
    ) -> Vec<JoinHandle<()>> {
        let retention = {
            let mgr = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(retention_check_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    let mgr = mgr.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || mgr.enforce_retention(now_ms())).await;
                }
            })
        };
        let flusher = {
            let mgr = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(flush.scheduler_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut last_checkpoint = now_ms();
                let mut last_flush = HashMap::new();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    let mgr = mgr.clone();
                    let now = now_ms();
                    let checkpoint_due = u128::try_from(now - last_checkpoint)
                        .is_ok_and(|waited| waited >= flush.checkpoint_interval.as_millis());
                    if checkpoint_due {
                        last_checkpoint = now;
                    }
                    let pass = tokio::task::spawn_blocking(move || {
                        mgr.flush_pass(&mut last_flush, now);
                        if checkpoint_due {
                            if let Err(e) = mgr.write_checkpoints() {
                                tracing::error!(error = %e, "checkpoint write failed");
                            }
                        }
                        last_flush
                    });
                    match pass.await {
                        Ok(state) => last_flush = state,
                        Err(_) => break,
                    }
                }
            })
        };
        vec![retention, flusher]
    }

    /// Shutdown: closes every log, writes the checkpoints, then marks each
    /// log dir clean. A log that fails to close leaves its dir unmarked, so
    /// the next start recovers it.
    pub fn close_all(&self) -> Result<(), LogError> {
        let mut failed_dirs = Vec::new();
        for log in self.all() {
            if let Err(e) = log.close() {
                tracing::error!(topic = log.topic(), partition = log.partition(), error = %e, "close failed");
                failed_dirs.extend(log.dir().parent().map(Path::to_owned));
            }
        }
        self.write_checkpoints()?;
        for root in self.dirs.iter().filter(|d| !failed_dirs.contains(d)) {
            let marker = root.join(CLEAN_MARKER);
            std::fs::write(&marker, b"").map_err(LogError::io("write", &marker))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch;

    #[test]
    fn dir_names_split_at_the_last_dash() {
        assert_eq!(parse_dir_name("a-b.c-12"), Some(("a-b.c".into(), 12)));
        assert_eq!(parse_dir_name("t-0"), Some(("t".into(), 0)));
        assert_eq!(parse_dir_name("t-01"), None);
        assert_eq!(parse_dir_name("t--1"), Some(("t-".into(), 1)));
        assert_eq!(parse_dir_name("lost+found"), None);
        assert_eq!(parse_dir_name("t-0.abc-delete"), None);
    }

    #[test]
    fn create_spread_close_and_reload() {
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let dirs = vec![a.path().to_owned(), b.path().to_owned()];
        let mgr = LogManager::open(dirs.clone(), &LogConfig::default()).expect("open");
        for p in 0..4 {
            let log = mgr
                .get_or_create("orders-v1.x", p, LogConfig::default())
                .expect("create");
            log.append(&batch(p as usize + 1, 10, 0), 0, 0)
                .expect("append");
        }
        assert_eq!(std::fs::read_dir(a.path()).expect("ls").count(), 2);
        assert_eq!(std::fs::read_dir(b.path()).expect("ls").count(), 2);
        assert!(mgr.get("orders-v1.x", 4).is_none());
        mgr.close_all().expect("close");
        for d in &dirs {
            assert!(d.join(CLEAN_MARKER).exists());
            let rp = checkpoint::read(&d.join(checkpoint::RECOVERY_POINT)).expect("checkpoint");
            assert_eq!(rp.len(), 2);
        }
        drop(mgr);

        let mgr = LogManager::open(dirs.clone(), &LogConfig::default()).expect("reopen");
        assert!(!a.path().join(CLEAN_MARKER).exists());
        assert_eq!(mgr.all().len(), 4);
        let log = mgr.get("orders-v1.x", 2).expect("loaded");
        assert_eq!(log.log_end_offset(), 3);
    }

    #[test]
    fn delete_renames_then_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mgr =
            LogManager::open(vec![dir.path().to_owned()], &LogConfig::default()).expect("open");
        let log = mgr
            .get_or_create("t", 0, LogConfig::default())
            .expect("create");
        log.append(&batch(1, 1, 0), 0, 0).expect("append");
        assert!(mgr.delete("t", 0).expect("delete"));
        assert!(!mgr.delete("t", 0).expect("delete"));
        assert!(mgr.get("t", 0).is_none());
        assert!(log.append(&batch(1, 1, 0), 0, 0).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
        // A delete a crash interrupted finishes on open.
        std::fs::create_dir_all(dir.path().join("t-1.0123abcd-delete")).expect("mkdir");
        let mgr =
            LogManager::open(vec![dir.path().to_owned()], &LogConfig::default()).expect("open");
        assert!(mgr.all().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn config_updates_reach_open_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mgr =
            LogManager::open(vec![dir.path().to_owned()], &LogConfig::default()).expect("open");
        let log = mgr
            .get_or_create("t", 0, LogConfig::default())
            .expect("create");
        let other = mgr
            .get_or_create("u", 0, LogConfig::default())
            .expect("create");
        let small = LogConfig {
            max_message_bytes: 10,
            ..LogConfig::default()
        };
        mgr.update_config("t", small);
        assert_eq!(
            log.append(&batch(1, 100, 0), 0, 0)
                .map_err(|e| e.error_code()),
            Err(10)
        );
        assert!(other.append(&batch(1, 100, 0), 0, 0).is_ok());
    }

    #[tokio::test]
    async fn background_tasks_apply_retention_and_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mgr = Arc::new(
            LogManager::open(vec![dir.path().to_owned()], &LogConfig::default()).expect("open"),
        );
        let cfg = LogConfig {
            segment_bytes: 200,
            retention_ms: 1,
            ..LogConfig::default()
        };
        let log = mgr.get_or_create("t", 0, cfg).expect("create");
        for _ in 0..5 {
            log.append(&batch(1, 100, 0), 0, 0).expect("append");
        }
        assert_eq!(log.segments().len(), 5);
        let token = CancellationToken::new();
        let settings = FlushSettings {
            scheduler_interval: Duration::from_millis(5),
            checkpoint_interval: Duration::from_millis(1),
        };
        let tasks = mgr.spawn_background(token.clone(), Duration::from_millis(5), settings);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while log.segments().len() > 1 || !dir.path().join(checkpoint::LOG_START).exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "retention did not run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(log.log_start_offset(), 4);
        token.cancel();
        for t in tasks {
            t.await.expect("task ends");
        }
    }
}
