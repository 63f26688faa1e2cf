//! Per-partition segmented logs in Kafka's on-disk layout: validation of
//! produced batches, segments with sparse indexes, idempotent-producer state,
//! leader epochs and the follower side of replication, crash recovery,
//! retention, and the manager that owns every partition of the broker's
//! `log.dirs`.

mod batch;
mod checkpoint;
mod config;
mod dir_lock;
mod follower;
mod index;
mod leader_epoch;
pub(crate) mod legacy;
mod manager;
mod partition;
mod producer_state;
mod recovery;
mod segment;

use std::path::PathBuf;

pub use batch::{encode_plain, PlainRecord};
pub use config::{ConfigError, LogConfig, TimestampType};
pub use dir_lock::{lock_dirs, DirLocks};
pub use manager::{FlushSettings, LogManager};
pub use partition::{AppendInfo, Log, ReadResult, Recovery};

/// Why a log operation failed; [`LogError::error_code`] is the one mapping
/// to Kafka's per-partition error codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("record batch of {size} bytes is larger than max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: i32 },
    #[error("producer {producer_id}: sequence {got} does not follow {last}")]
    OutOfOrderSequence {
        producer_id: i64,
        last: i32,
        got: i32,
    },
    #[error("producer {producer_id}: epoch {got} is older than {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        got: i16,
        current: i16,
    },
    #[error("unsupported compression type {0}")]
    UnsupportedCompression(i16),
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log {0} is closed")]
    Closed(String),
    #[error("log directory {0} is in use by another process (its .lock is held)")]
    DirInUse(PathBuf),
    /// Replicated batches must continue the follower's log exactly.
    #[error("replicated batches start at offset {got}, not at the log end {expected}")]
    OffsetMismatch { expected: i64, got: i64 },
}

impl LogError {
    /// The Kafka error code a client gets for this failure.
    pub fn error_code(&self) -> i16 {
        match self {
            LogError::OffsetOutOfRange { .. } => 1,
            LogError::CorruptMessage(_) => 2,
            LogError::MessageTooLarge { .. } => 10,
            LogError::OutOfOrderSequence { .. } => 45,
            LogError::InvalidProducerEpoch { .. } => 47,
            LogError::UnsupportedCompression(_) => 76,
            LogError::InvalidRecord(_) => 87,
            LogError::Io { .. } | LogError::Closed(_) | LogError::DirInUse(_) => 56,
            // Only a follower's fetcher sees it; Kafka's
            // UnexpectedAppendOffsetException is no API error either.
            LogError::OffsetMismatch { .. } => -1,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_kafka() {
        let io = LogError::Io {
            op: "write",
            path: PathBuf::from("x"),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(io.error_code(), 56);
        assert_eq!(LogError::CorruptMessage("crc".into()).error_code(), 2);
        assert_eq!(LogError::UnsupportedCompression(5).error_code(), 76);
        let oor = LogError::OffsetOutOfRange {
            offset: 9,
            log_start: 0,
            log_end: 3,
        };
        assert_eq!(oor.error_code(), 1);
    }
}
