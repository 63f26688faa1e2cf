//! Topic-level log settings (`segment.bytes`, `retention.ms`, ...) with
//! Kafka's defaults and Kafka's validation rules.

use std::collections::BTreeMap;

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The settings one partition's log runs with. Durations are milliseconds
/// and sizes bytes, as in Kafka's keys; `i64::MAX` means "never" for the
/// flush settings and -1 "unlimited" for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: i32,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: i32,
    pub timestamp_type: TimestampType,
    pub index_interval_bytes: i32,
    pub flush_messages: i64,
    pub flush_ms: i64,
    /// Not used by the log itself; kept here so `acks=all` reads the
    /// topic's effective value from the same place.
    pub min_insync_replicas: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            min_insync_replicas: 1,
        }
    }
}

/// A topic config Kafka would answer with INVALID_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config {0}")]
    Unknown(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: &'static str,
    },
}

/// Topic configs Kafka knows but this log does not act on: accepted (with
/// a loose check where Kafka's is simple) so tools that set them work.
const ACCEPTED_ONLY: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

impl LogConfig {
    /// `defaults` with a topic's overrides applied, rejecting what Kafka
    /// rejects (unknown names, values out of range).
    pub fn from_topic_configs(
        defaults: &LogConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut cfg = defaults.clone();
        for (key, value) in overrides {
            let v = value.trim();
            match key.as_str() {
                "segment.bytes" => cfg.segment_bytes = at_least(key, v, 14)?,
                "segment.ms" => cfg.segment_ms = at_least(key, v, 1)?,
                "retention.ms" => cfg.retention_ms = at_least(key, v, -1)?,
                "retention.bytes" => cfg.retention_bytes = at_least(key, v, i64::MIN)?,
                "max.message.bytes" => cfg.max_message_bytes = at_least(key, v, 0)?,
                "index.interval.bytes" => cfg.index_interval_bytes = at_least(key, v, 0)?,
                "flush.messages" => cfg.flush_messages = at_least(key, v, 1)?,
                "flush.ms" => cfg.flush_ms = at_least(key, v, 0)?,
                "min.insync.replicas" => cfg.min_insync_replicas = at_least(key, v, 1)?,
                "message.timestamp.type" => {
                    cfg.timestamp_type = match v {
                        "CreateTime" => TimestampType::CreateTime,
                        "LogAppendTime" => TimestampType::LogAppendTime,
                        _ => return Err(invalid(key, v, "expected CreateTime or LogAppendTime")),
                    }
                }
                "cleanup.policy" => {
                    let ok = v
                        .split(',')
                        .map(str::trim)
                        .all(|p| p == "delete" || p == "compact");
                    if !ok {
                        return Err(invalid(key, v, "expected delete and/or compact"));
                    }
                }
                "compression.type" => {
                    const TYPES: &[&str] =
                        &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
                    if !TYPES.contains(&v) {
                        return Err(invalid(key, v, "unknown compression type"));
                    }
                }
                k if ACCEPTED_ONLY.contains(&k) => {}
                _ => return Err(ConfigError::Unknown(key.clone())),
            }
        }
        Ok(cfg)
    }
}

fn invalid(key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

fn at_least<T: std::str::FromStr + PartialOrd + Copy>(
    key: &str,
    value: &str,
    min: T,
) -> Result<T, ConfigError> {
    let n: T = value
        .parse()
        .map_err(|_| invalid(key, value, "not a number in range"))?;
    if n < min {
        return Err(invalid(key, value, "below the minimum"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<LogConfig, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogConfig::from_topic_configs(&LogConfig::default(), &map)
    }

    #[test]
    fn overrides_apply_over_defaults() {
        let cfg = with(&[
            ("segment.bytes", "1024"),
            ("retention.ms", "-1"),
            ("message.timestamp.type", "LogAppendTime"),
            ("cleanup.policy", "compact,delete"),
            ("preallocate", "false"),
        ])
        .expect("valid");
        assert_eq!(cfg.segment_bytes, 1024);
        assert_eq!(cfg.retention_ms, -1);
        assert_eq!(cfg.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(cfg.max_message_bytes, 1_048_588);
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert!(with(&[("segment.bytes", "10")]).is_err());
        assert!(with(&[("segment.bytes", "4294967296")]).is_err());
        assert!(with(&[("retention.ms", "-2")]).is_err());
        assert!(with(&[("message.timestamp.type", "Now")]).is_err());
        assert!(with(&[("flush.messages", "0")]).is_err());
        assert_eq!(
            with(&[("no.such.key", "1")]),
            Err(ConfigError::Unknown("no.such.key".into()))
        );
    }
}
