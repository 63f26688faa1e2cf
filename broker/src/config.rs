//! Broker configuration from Kafka's own sources, in Kafka's precedence:
//! `server.properties` < `KAFKA_*` environment (the cp-kafka image's rule) <
//! `--override key=value`. Unknown keys are ignored, as Kafka does, with a
//! warning that suggests the closest known key; Kafka keys this broker does
//! not honour are warned about by name.

mod keys;

use keys::{ignored_notice, Origin};

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::ElectionPolicy;
use crate::group::GroupConfig;
use crate::log::LogConfig;

/// Environment variables of the cp-kafka image that configure the JVM or
/// log4j, not the broker: recognised so they are ignored quietly.
const NON_BROKER_ENV: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("--override needs key=value, got {0:?}")]
    Override(String),
}

impl ConfigError {
    fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// One `NAME://host:port` entry of `listeners` or `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface (bind) or this machine's name (advertise).
    pub host: String,
    pub port: u16,
}

impl Listener {
    fn parse_list(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
        let invalid = |reason: &str| ConfigError::invalid(key, value, reason);
        let mut out = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, rest) = item
                .split_once("://")
                .ok_or_else(|| invalid("expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid("expected NAME://host:port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port.parse().map_err(|_| invalid("bad port"))?;
            out.push(Listener {
                name: name.to_ascii_uppercase(),
                host: host.to_owned(),
                port,
            });
        }
        if out.is_empty() {
            return Err(invalid("no listener"));
        }
        Ok(out)
    }
}

/// Everything the broker reads at start, with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// -1: take the id stored in `meta.properties`, or generate one through
    /// the coordinator (`/brokers/seqid`) as Kafka does.
    pub broker_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Option<Vec<Listener>>,
    pub rack: Option<String>,
    pub log_dirs: Vec<PathBuf>,
    /// `None` is dev mode: the coordinator runs inside this process.
    pub zookeeper_connect: Option<String>,
    pub zookeeper_session_timeout: Duration,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub min_insync_replicas: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: usize,
    /// `max.connections`: beyond it new connections wait to be accepted.
    pub max_connections: u32,
    /// `max.connections.per.ip` and its `.overrides`: beyond it a new
    /// connection from that address is closed at once.
    pub max_connections_per_ip: u32,
    pub max_connections_per_ip_overrides: HashMap<IpAddr, u32>,
    pub log_retention_check_interval: Duration,
    pub log_flush_interval_messages: Option<u64>,
    pub log_flush_interval_ms: Option<u64>,
    pub log_flush_scheduler_interval: Duration,
    pub reserved_broker_max_id: i32,
    /// Consumer groups: `group.min|max.session.timeout.ms`,
    /// `group.initial.rebalance.delay.ms`.
    pub group: GroupConfig,
    pub offset_metadata_max_bytes: usize,
    /// A follower that has not caught up for this long leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `unclean.leader.election.enable`, `auto.leader.rebalance.enable`.
    pub election: ElectionPolicy,
    /// Topic-level defaults (`log.segment.bytes` and friends).
    pub log: LogConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_id: -1,
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: String::new(),
                port: 9092,
            }],
            advertised_listeners: None,
            rack: None,
            log_dirs: vec![PathBuf::from("/tmp/kafka-logs")],
            zookeeper_connect: None,
            zookeeper_session_timeout: Duration::from_millis(18_000),
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            max_connections: i32::MAX as u32,
            max_connections_per_ip: i32::MAX as u32,
            max_connections_per_ip_overrides: HashMap::new(),
            log_retention_check_interval: Duration::from_millis(300_000),
            log_flush_interval_messages: None,
            log_flush_interval_ms: None,
            log_flush_scheduler_interval: Duration::from_millis(1000),
            reserved_broker_max_id: 1000,
            group: GroupConfig::default(),
            offset_metadata_max_bytes: 4096,
            replica_lag_time_max: Duration::from_millis(30_000),
            election: ElectionPolicy::default(),
            log: LogConfig::default(),
        }
    }
}

/// `max.connections.per.ip.overrides`: `address:count,...`. Kafka also takes
/// host names there; only addresses are taken here, and a name is refused
/// rather than silently never matching.
fn per_ip_overrides(key: &str, value: &str) -> Result<HashMap<IpAddr, u32>, ConfigError> {
    let invalid = |reason: &str| ConfigError::invalid(key, value, reason);
    let mut out = HashMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (ip, count) = item
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected address:count"))?;
        let ip: IpAddr = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| invalid("only IP addresses are supported, not host names"))?;
        let count = count.parse().map_err(|_| invalid("bad count"))?;
        out.insert(ip, count);
    }
    Ok(out)
}

/// The raw key/value layers before they are interpreted.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub overrides: Vec<String>,
}

impl BrokerConfig {
    /// Builds the configuration from the file, `env` (pass
    /// `std::env::vars()`), then the overrides.
    pub fn load(
        sources: &Sources,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BrokerConfig, ConfigError> {
        let mut props = BTreeMap::new();
        let mut origins = BTreeMap::new();
        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            props.extend(parse_properties(&text));
        }
        for (key, value, name) in env_entries(env) {
            origins.insert(key.clone(), Origin::Env(name));
            props.insert(key, value);
        }
        for o in &sources.overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::Override(o.clone()))?;
            origins.insert(k.trim().to_owned(), Origin::Override);
            props.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Self::from_layers(&props, &origins)
    }

    /// Interprets `props` (unknown and unhonoured keys are warned about,
    /// not fatal, as Kafka does).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        Self::from_layers(props, &BTreeMap::new())
    }

    /// As [`Self::from_properties`], with where each key came from, so a
    /// warning about it names the file, the environment variable or the
    /// override that set it.
    fn from_layers(
        props: &BTreeMap<String, String>,
        origins: &BTreeMap<String, Origin>,
    ) -> Result<BrokerConfig, ConfigError> {
        let mut builder = Builder::default();
        let has_log_dirs = props.contains_key("log.dirs");
        for (key, value) in props {
            if !builder.apply(key, value, has_log_dirs)? {
                let origin = origins.get(key).cloned().unwrap_or(Origin::File);
                tracing::warn!("{}", ignored_notice(key, &origin));
            }
        }
        builder.finish()
    }

    /// The listeners clients are told about: `advertised.listeners`, else
    /// `listeners` with an empty host replaced by `localhost` (dev mode's
    /// audience) and port 0 by the port actually bound.
    pub fn advertised(&self, bound: &[(String, u16)]) -> Vec<Listener> {
        let base = self
            .advertised_listeners
            .clone()
            .unwrap_or_else(|| self.listeners.clone());
        base.into_iter()
            .map(|mut l| {
                if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                    l.host = "localhost".into();
                }
                if l.port == 0 {
                    if let Some((_, p)) = bound.iter().find(|(n, _)| *n == l.name) {
                        l.port = *p;
                    }
                }
                l
            })
            .collect()
    }

    pub fn first_log_dir(&self) -> &Path {
        self.log_dirs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("."))
    }
}

/// The configuration as keys are applied, with what Kafka resolves only
/// once every key is in.
#[derive(Debug, Default)]
struct Builder {
    cfg: BrokerConfig,
    topic_defaults: BTreeMap<String, String>,
    // Kafka's precedence among the retention and roll spellings: ms >
    // minutes > hours, whatever order the lines come in.
    retention: (Option<i64>, Option<i64>, Option<i64>),
    roll: (Option<i64>, Option<i64>),
}

impl Builder {
    /// Applies one key; `false` when this broker does not act on it.
    fn apply(&mut self, key: &str, v: &str, has_log_dirs: bool) -> Result<bool, ConfigError> {
        match key {
            "broker.id" => self.cfg.broker_id = num(key, v)?,
            "listeners" => self.cfg.listeners = Listener::parse_list(key, v)?,
            "advertised.listeners" => {
                self.cfg.advertised_listeners = Some(Listener::parse_list(key, v)?)
            }
            "broker.rack" => self.cfg.rack = Some(v.to_owned()),
            "log.dirs" | "log.dir" => {
                if key == "log.dirs" || !has_log_dirs {
                    self.cfg.log_dirs = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect();
                }
            }
            "zookeeper.connect" => {
                self.cfg.zookeeper_connect = Some(v.to_owned()).filter(|s| !s.is_empty())
            }
            "zookeeper.session.timeout.ms" => {
                self.cfg.zookeeper_session_timeout = Duration::from_millis(num(key, v)?)
            }
            "num.partitions" => self.cfg.num_partitions = positive(key, v)?,
            "default.replication.factor" => self.cfg.default_replication_factor = positive(key, v)?,
            "min.insync.replicas" => {
                self.cfg.min_insync_replicas = positive(key, v)?;
                self.topic_defaults
                    .insert("min.insync.replicas".into(), v.to_owned());
            }
            "auto.create.topics.enable" => self.cfg.auto_create_topics_enable = boolean(key, v)?,
            "delete.topic.enable" => self.cfg.delete_topic_enable = boolean(key, v)?,
            "message.max.bytes" => {
                self.cfg.message_max_bytes = positive(key, v)?;
                self.topic_defaults
                    .insert("max.message.bytes".into(), v.to_owned());
            }
            "socket.request.max.bytes" => self.cfg.socket_request_max_bytes = positive(key, v)?,
            "max.connections" => self.cfg.max_connections = num(key, v)?,
            "max.connections.per.ip" => self.cfg.max_connections_per_ip = num(key, v)?,
            "max.connections.per.ip.overrides" => {
                self.cfg.max_connections_per_ip_overrides = per_ip_overrides(key, v)?
            }
            "log.retention.check.interval.ms" => {
                self.cfg.log_retention_check_interval = Duration::from_millis(positive(key, v)?)
            }
            "log.flush.interval.messages" => {
                self.cfg.log_flush_interval_messages = Some(positive(key, v)?);
                self.topic_defaults
                    .insert("flush.messages".into(), v.to_owned());
            }
            "log.flush.interval.ms" => {
                self.cfg.log_flush_interval_ms = Some(positive(key, v)?);
                self.topic_defaults.insert("flush.ms".into(), v.to_owned());
            }
            "log.flush.scheduler.interval.ms" => {
                self.cfg.log_flush_scheduler_interval = Duration::from_millis(positive(key, v)?)
            }
            "reserved.broker.max.id" => self.cfg.reserved_broker_max_id = positive(key, v)?,
            "group.min.session.timeout.ms" => {
                self.cfg.group.min_session_timeout_ms = positive(key, v)?
            }
            "group.max.session.timeout.ms" => {
                self.cfg.group.max_session_timeout_ms = positive(key, v)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.cfg.group.initial_rebalance_delay_ms = num(key, v)?
            }
            "group.max.size" => self.cfg.group.max_size = positive(key, v)?,
            "offset.metadata.max.bytes" => self.cfg.offset_metadata_max_bytes = positive(key, v)?,
            "unclean.leader.election.enable" => self.cfg.election.unclean = boolean(key, v)?,
            "auto.leader.rebalance.enable" => self.cfg.election.preferred = boolean(key, v)?,
            "leader.imbalance.check.interval.seconds" => {
                self.cfg.election.preferred_check_interval = Duration::from_secs(positive(key, v)?)
            }
            "replica.lag.time.max.ms" => {
                self.cfg.replica_lag_time_max = Duration::from_millis(positive(key, v)?)
            }
            "log.segment.bytes" => {
                self.topic_defaults
                    .insert("segment.bytes".into(), v.to_owned());
            }
            "log.retention.bytes" => {
                self.topic_defaults
                    .insert("retention.bytes".into(), v.to_owned());
            }
            "log.index.interval.bytes" => {
                self.topic_defaults
                    .insert("index.interval.bytes".into(), v.to_owned());
            }
            "log.message.timestamp.type" => {
                self.topic_defaults
                    .insert("message.timestamp.type".into(), v.to_owned());
            }
            "log.retention.ms" => self.retention.0 = Some(num::<i64>(key, v)?),
            "log.retention.minutes" => self.retention.1 = Some(num::<i64>(key, v)?),
            "log.retention.hours" => self.retention.2 = Some(num::<i64>(key, v)?),
            "log.roll.ms" => self.roll.0 = Some(num::<i64>(key, v)?),
            "log.roll.hours" => self.roll.1 = Some(num::<i64>(key, v)?),
            // Only PLAINTEXT is spoken: a map that names nothing else asks for
            // nothing this broker lacks.
            "listener.security.protocol.map" => {
                let plaintext = v.split(',').filter(|e| !e.trim().is_empty()).all(|e| {
                    e.split_once(':')
                        .is_some_and(|(_, p)| p.trim().eq_ignore_ascii_case("PLAINTEXT"))
                });
                return Ok(plaintext);
            }
            // Replication dials the leader's PLAINTEXT endpoint.
            "inter.broker.listener.name" => return Ok(v.trim().eq_ignore_ascii_case("PLAINTEXT")),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(mut self) -> Result<BrokerConfig, ConfigError> {
        let retention_ms = self
            .retention
            .0
            .or(self.retention.1.map(|m| m * 60_000))
            .or(self.retention.2.map(|h| h * 3_600_000));
        if let Some(ms) = retention_ms {
            self.topic_defaults
                .insert("retention.ms".into(), ms.to_string());
        }
        if let Some(ms) = self.roll.0.or(self.roll.1.map(|h| h * 3_600_000)) {
            self.topic_defaults
                .insert("segment.ms".into(), ms.to_string());
        }
        self.cfg.log = LogConfig::from_topic_configs(&LogConfig::default(), &self.topic_defaults)
            .map_err(|e| ConfigError::invalid("log.*", "", e.to_string()))?;
        Ok(self.cfg)
    }
}

/// Java `.properties` text: `key=value`, `key: value` or `key value`,
/// `#`/`!` comments, `\` line continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            logical.push_str(stripped);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(['=', ':', ' ', '\t']);
        let (k, v) = match split {
            Some(i) => (
                &entry[..i],
                entry[i + 1..].trim_start_matches(['=', ':', ' ', '\t']),
            ),
            None => (entry.as_str(), ""),
        };
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    out
}

/// The cp-kafka image's rule: `KAFKA_` stripped, lower case, `___` -> `-`,
/// `__` -> `_`, `_` -> `.` (`KAFKA_ZOOKEEPER_CONNECT` -> `zookeeper.connect`).
pub fn env_properties(env: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    env_entries(env)
        .map(|(key, value, _)| (key, value))
        .collect()
}

/// [`env_properties`] with each key's variable name: `(key, value, name)`.
fn env_entries(
    env: impl IntoIterator<Item = (String, String)>,
) -> impl Iterator<Item = (String, String, String)> {
    env.into_iter().filter_map(|(name, value)| {
        let rest = name.strip_prefix("KAFKA_")?;
        if NON_BROKER_ENV.contains(&name.as_str()) {
            tracing::info!(env = name, "not a broker setting, ignored");
            return None;
        }
        let key = rest
            .to_ascii_lowercase()
            .replace("___", "\u{0}")
            .replace("__", "\u{1}")
            .replace('_', ".")
            .replace('\u{0}', "-")
            .replace('\u{1}', "_");
        Some((key, value, name))
    })
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, v, "not a number"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    key: &str,
    v: &str,
) -> Result<T, ConfigError> {
    let n: T = num(key, v)?;
    if n <= T::default() {
        return Err(ConfigError::invalid(key, v, "must be positive"));
    }
    Ok(n)
}

fn boolean(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, v, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limit_keys_are_honoured_and_host_names_refused() {
        let props = BTreeMap::from([
            ("max.connections".to_owned(), "100".to_owned()),
            ("max.connections.per.ip".to_owned(), "0".to_owned()),
            (
                "max.connections.per.ip.overrides".to_owned(),
                "127.0.0.1:5,[::1]:7".to_owned(),
            ),
        ]);
        let cfg = BrokerConfig::from_properties(&props).expect("valid");
        assert_eq!((cfg.max_connections, cfg.max_connections_per_ip), (100, 0));
        assert_eq!(
            cfg.max_connections_per_ip_overrides,
            HashMap::from([
                (IpAddr::from([127, 0, 0, 1]), 5),
                ("::1".parse().expect("ip"), 7)
            ])
        );
        for bad in ["kafka1:5", "127.0.0.1", "127.0.0.1:x"] {
            let props = BTreeMap::from([(
                "max.connections.per.ip.overrides".to_owned(),
                bad.to_owned(),
            )]);
            assert!(
                matches!(
                    BrokerConfig::from_properties(&props),
                    Err(ConfigError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties(
            "# comment\n! other\nbroker.id=3\nlisteners: PLAINTEXT://:9093\nlog.dirs /a,\\\n  /b\n",
        );
        assert_eq!(p["broker.id"], "3");
        assert_eq!(p["listeners"], "PLAINTEXT://:9093");
        assert_eq!(p["log.dirs"], "/a,/b");
    }

    #[test]
    fn env_mapping_follows_the_image_rule() {
        let env = [
            ("KAFKA_ZOOKEEPER_CONNECT", "zoo1:2181"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka1:9092"),
            ("KAFKA_LOG4J_LOGGERS", "kafka.controller=INFO"),
            ("KAFKA_CONFLUENT_SUPPORT___X__Y_Z", "1"),
            ("PATH", "/bin"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
        let p = env_properties(env);
        assert_eq!(p["zookeeper.connect"], "zoo1:2181");
        assert_eq!(p["advertised.listeners"], "PLAINTEXT://kafka1:9092");
        assert_eq!(p["confluent.support-x_y.z"], "1");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn precedence_file_env_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("server.properties");
        std::fs::write(
            &file,
            "broker.id=1\nnum.partitions=2\nlog.retention.hours=1\n",
        )
        .expect("write");
        let sources = Sources {
            file: Some(file),
            overrides: vec!["num.partitions=6".into()],
        };
        let env = [("KAFKA_BROKER_ID".to_owned(), "2".to_owned())];
        let cfg = BrokerConfig::load(&sources, env).expect("config");
        assert_eq!(cfg.broker_id, 2);
        assert_eq!(cfg.num_partitions, 6);
        assert_eq!(cfg.log.retention_ms, 3_600_000);
    }

    #[test]
    fn bad_values_are_errors() {
        let props = BTreeMap::from([("num.partitions".to_owned(), "zero".to_owned())]);
        assert!(BrokerConfig::from_properties(&props).is_err());
        let props = BTreeMap::from([("listeners".to_owned(), "nonsense".to_owned())]);
        assert!(BrokerConfig::from_properties(&props).is_err());
    }

    #[test]
    fn advertised_defaults_to_localhost_and_bound_port() {
        let props = BTreeMap::from([("listeners".to_owned(), "PLAINTEXT://:0".to_owned())]);
        let cfg = BrokerConfig::from_properties(&props).expect("config");
        let adv = cfg.advertised(&[("PLAINTEXT".into(), 40000)]);
        assert_eq!(adv[0].host, "localhost");
        assert_eq!(adv[0].port, 40000);
    }
    #[test]
    fn every_honoured_key_is_applied_and_no_other() {
        for key in keys::HONOURED {
            // An empty value is invalid for most keys: an error also shows
            // that the key reached its own arm.
            let value = match *key {
                "inter.broker.listener.name" => "PLAINTEXT",
                "listener.security.protocol.map" => "PLAINTEXT:PLAINTEXT",
                _ => "",
            };
            let applied = Builder::default().apply(key, value, false);
            assert!(!matches!(applied, Ok(false)), "{key} is not applied");
        }
        for key in keys::NOT_HONOURED {
            let applied = Builder::default().apply(key, "1", false);
            assert!(matches!(applied, Ok(false)), "{key} is applied");
        }
    }

    #[test]
    fn plaintext_only_protocol_maps_are_honoured() {
        let mut b = Builder::default();
        assert!(matches!(
            b.apply(
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
                false
            ),
            Ok(true)
        ));
        assert!(matches!(
            b.apply("listener.security.protocol.map", "SSL:SSL", false),
            Ok(false)
        ));
        assert!(matches!(
            b.apply("inter.broker.listener.name", "plaintext", false),
            Ok(true)
        ));
        assert!(matches!(
            b.apply("inter.broker.listener.name", "INTERNAL", false),
            Ok(false)
        ));
    }
}
