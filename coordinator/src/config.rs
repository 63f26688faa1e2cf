//! Server configuration: ZooKeeper's `zoo.cfg` keys, overridden by the
//! official image's `ZOO_*` environment variables and by command-line flags
//! (in that order of precedence, lowest first).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::proto::DEFAULT_MAX_BUFFER;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: invalid value {value:?}")]
    Value { key: String, value: String },
    #[error("minSessionTimeout {min} is above maxSessionTimeout {max}")]
    SessionBounds { min: u32, max: u32 },
}

/// Four-letter words answered when `4lw.commands.whitelist` is not set: the
/// read-only ones health checks and `zkServer.sh status` rely on.
const DEFAULT_4LW: &[&str] = &["ruok", "srvr", "stat", "mntr", "conf", "envi", "isro"];
/// Every four-letter word this server implements (`*` in the whitelist).
pub const ALL_4LW: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "wchs", "envi", "isro",
];

/// Keys this server acts on (besides `server.N`); with [`IGNORED_KEYS`], the
/// candidates for "did you mean" when a key is unknown.
const KNOWN_KEYS: &[&str] = &[
    "clientPort",
    "clientPortAddress",
    "dataDir",
    "dataLogDir",
    "tickTime",
    "minSessionTimeout",
    "maxSessionTimeout",
    "maxClientCnxns",
    "snapCount",
    "autopurge.snapRetainCount",
    "4lw.commands.whitelist",
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "skipACL",
];

/// Keys ZooKeeper knows that only matter to an ensemble or to features this
/// server does not have; accepted with an informational log line.
const IGNORED_KEYS: &[&str] = &[
    "initLimit",
    "syncLimit",
    "autopurge.purgeInterval",
    "admin.enableServer",
    "admin.serverPort",
    "standaloneEnabled",
    "reconfigEnabled",
    "quorumListenOnAllIPs",
    "electionPortBindRetry",
    "preAllocSize",
    "forceSync",
    "globalOutstandingLimit",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "metricsProvider.className",
    "metricsProvider.httpPort",
];

/// Where data goes when neither zoo.cfg, `--data-dir` nor `ZOO_DATA_DIR`
/// says: relative to the working directory. `coord server --help` repeats it.
pub const DEFAULT_DATA_DIR: &str = "data/coordinator";

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_port: u16,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub tick_time_ms: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// Connections allowed from one IP address; 0 means no limit.
    pub max_client_cnxns: u32,
    pub snap_count: u64,
    pub snap_retain_count: usize,
    pub four_letter_words: BTreeSet<String>,
    pub server_id: u8,
    /// `server.N=` entries (ensemble members); a single node only logs them.
    pub servers: Vec<String>,
    pub max_buffer: usize,
    pub container_check_interval_ms: u64,
    /// `skipACL=yes` turns permission checks off, as in ZooKeeper.
    pub skip_acl: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_port: 2181,
            client_port_address: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            data_log_dir: PathBuf::from(DEFAULT_DATA_DIR),
            tick_time_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            max_client_cnxns: 60,
            snap_count: 100_000,
            snap_retain_count: 3,
            four_letter_words: DEFAULT_4LW.iter().map(|s| s.to_string()).collect(),
            server_id: 0,
            servers: Vec::new(),
            max_buffer: DEFAULT_MAX_BUFFER,
            container_check_interval_ms: 60_000,
            skip_acl: false,
        }
    }
}

/// `coord server` flags. Each also reads the environment variable the official
/// ZooKeeper image documents, so the seed's compose file works unchanged.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// A zoo.cfg-style file.
    #[arg(long, env = "ZOO_CONF_FILE")]
    pub config: Option<PathBuf>,
    /// clientPort; 0 picks a free port.
    #[arg(long, env = "ZOO_PORT")]
    pub port: Option<u16>,
    /// clientPortAddress: the address to bind (default: all).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// dataDir: snapshots, and the transaction log unless --data-log-dir
    /// [default: data/coordinator, under the working directory]
    #[arg(long, env = "ZOO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// dataLogDir: the transaction log (default: dataDir).
    #[arg(long, env = "ZOO_DATA_LOG_DIR")]
    pub data_log_dir: Option<PathBuf>,
    /// tickTime in milliseconds.
    #[arg(long, env = "ZOO_TICK_TIME")]
    pub tick_time: Option<u32>,
    #[arg(long, env = "ZOO_MIN_SESSION_TIMEOUT")]
    pub min_session_timeout: Option<u32>,
    #[arg(long, env = "ZOO_MAX_SESSION_TIMEOUT")]
    pub max_session_timeout: Option<u32>,
    #[arg(long, env = "ZOO_MAX_CLIENT_CNXNS")]
    pub max_client_cnxns: Option<u32>,
    #[arg(long)]
    pub snap_count: Option<u64>,
    #[arg(long, env = "ZOO_AUTOPURGE_SNAPRETAINCOUNT")]
    pub snap_retain_count: Option<usize>,
    /// 4lw.commands.whitelist: comma-separated, or `*`.
    #[arg(long = "4lw-whitelist", env = "ZOO_4LW_COMMANDS_WHITELIST")]
    pub four_letter_words: Option<String>,
    /// myid (ZOO_MY_ID): the high byte of session ids.
    #[arg(long, env = "ZOO_MY_ID")]
    pub my_id: Option<u8>,
    /// znode.container.checkIntervalMs: how often empty containers and
    /// expired TTL nodes are looked for.
    #[arg(long)]
    pub container_check_interval_ms: Option<u64>,
    /// Ensemble members as the image takes them: `server.1=zoo1:2888:3888;2181 ...`.
    #[arg(long, env = "ZOO_SERVERS")]
    pub servers: Option<String>,
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Value {
        key: key.into(),
        value: value.into(),
    })
}

fn whitelist(value: &str) -> BTreeSet<String> {
    let words: BTreeSet<String> = value
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    if words.contains("*") {
        return ALL_4LW.iter().map(|s| s.to_string()).collect();
    }
    for w in words.iter().filter(|w| !ALL_4LW.contains(&w.as_str())) {
        tracing::warn!(word = %w, "four-letter word in 4lw.commands.whitelist is not implemented");
    }
    words
}

impl Config {
    /// Applies one `zoo.cfg` line's key; unknown keys are logged, not fatal.
    fn set(
        &mut self,
        key: &str,
        value: &str,
        explicit_timeouts: &mut (bool, bool),
    ) -> Result<(), ConfigError> {
        match key {
            "clientPort" => self.client_port = parse(key, value)?,
            "clientPortAddress" => self.client_port_address = Some(parse(key, value)?),
            "dataDir" => self.data_dir = PathBuf::from(value),
            "dataLogDir" => self.data_log_dir = PathBuf::from(value),
            "tickTime" => self.tick_time_ms = parse(key, value)?,
            "minSessionTimeout" => {
                self.min_session_timeout_ms = parse(key, value)?;
                explicit_timeouts.0 = true;
            }
            "maxSessionTimeout" => {
                self.max_session_timeout_ms = parse(key, value)?;
                explicit_timeouts.1 = true;
            }
            "maxClientCnxns" => self.max_client_cnxns = parse(key, value)?,
            "snapCount" => self.snap_count = parse(key, value)?,
            "autopurge.snapRetainCount" => self.snap_retain_count = parse(key, value)?,
            "4lw.commands.whitelist" => self.four_letter_words = whitelist(value),
            "jute.maxbuffer" => self.max_buffer = parse(key, value)?,
            "znode.container.checkIntervalMs" => {
                self.container_check_interval_ms = parse(key, value)?
            }
            "skipACL" => self.skip_acl = value.trim().eq_ignore_ascii_case("yes"),
            k if k.starts_with("server.") => self.servers.push(format!("{k}={value}")),
            k if IGNORED_KEYS.contains(&k) => {
                tracing::info!(
                    key = k,
                    "configuration key accepted but has no effect on a single node"
                )
            }
            k => {
                match common::suggest::closest(k, KNOWN_KEYS.iter().chain(IGNORED_KEYS).copied()) {
                    Some(s) => tracing::warn!("unknown key {k} ignored; did you mean {s}?"),
                    None => tracing::warn!("unknown key {k} ignored"),
                }
            }
        }
        Ok(())
    }

    /// Builds the configuration from defaults, an optional file, then flags
    /// (which clap already merged with the environment).
    pub fn load(args: &ServerArgs) -> Result<Self, ConfigError> {
        let mut cfg = Config::default();
        let mut explicit = (false, false);
        let mut data_log_dir_set = false;
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                let Some((key, value)) = line.split_once('=') else {
                    tracing::warn!(line, "configuration line without '=' ignored");
                    continue;
                };
                data_log_dir_set |= key.trim() == "dataLogDir";
                cfg.set(key.trim(), value.trim(), &mut explicit)?;
            }
        }
        if let Some(v) = args.port {
            cfg.client_port = v;
        }
        if let Some(v) = args.bind {
            cfg.client_port_address = Some(v);
        }
        if let Some(v) = &args.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &args.data_log_dir {
            cfg.data_log_dir = v.clone();
            data_log_dir_set = true;
        }
        if !data_log_dir_set {
            cfg.data_log_dir = cfg.data_dir.clone();
        }
        if let Some(v) = args.tick_time {
            cfg.tick_time_ms = v;
        }
        if let Some(v) = args.min_session_timeout {
            cfg.min_session_timeout_ms = v;
            explicit.0 = true;
        }
        if let Some(v) = args.max_session_timeout {
            cfg.max_session_timeout_ms = v;
            explicit.1 = true;
        }
        if let Some(v) = args.max_client_cnxns {
            cfg.max_client_cnxns = v;
        }
        if let Some(v) = args.snap_count {
            cfg.snap_count = v;
        }
        if let Some(v) = args.snap_retain_count {
            cfg.snap_retain_count = v;
        }
        if let Some(v) = &args.four_letter_words {
            cfg.four_letter_words = whitelist(v);
        }
        if let Some(v) = args.container_check_interval_ms {
            cfg.container_check_interval_ms = v;
        }
        if let Some(v) = args.my_id {
            cfg.server_id = v;
        }
        // Session ids carry the server id in their top byte, and 0xff there
        // marks TTL nodes' owners: ZooKeeper caps ids at 254 for this reason.
        if cfg.server_id == 255 {
            return Err(ConfigError::Value {
                key: "myid".into(),
                value: "255".into(),
            });
        }
        if let Some(v) = &args.servers {
            cfg.servers.extend(v.split_whitespace().map(String::from));
        }
        cfg.finish(explicit)
    }

    /// Derives what ZooKeeper derives from tickTime and enforces its minimums.
    fn finish(mut self, explicit: (bool, bool)) -> Result<Self, ConfigError> {
        if self.tick_time_ms == 0 {
            return Err(ConfigError::Value {
                key: "tickTime".into(),
                value: "0".into(),
            });
        }
        if !explicit.0 {
            self.min_session_timeout_ms = 2 * self.tick_time_ms;
        }
        if !explicit.1 {
            self.max_session_timeout_ms = 20 * self.tick_time_ms;
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::SessionBounds {
                min: self.min_session_timeout_ms,
                max: self.max_session_timeout_ms,
            });
        }
        // ZooKeeper keeps at least three snapshots whatever is configured.
        self.snap_retain_count = self.snap_retain_count.max(3);
        self.snap_count = self.snap_count.max(2);
        if !self.servers.is_empty() {
            tracing::info!(
                servers = ?self.servers,
                my_id = self.server_id,
                "server.N entries (ZOO_SERVERS) name an ensemble; this node runs standalone and serves clients alone"
            );
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, args: ServerArgs) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, text).expect("write cfg");
        Config::load(&ServerArgs {
            config: Some(path),
            ..args
        })
        .expect("valid config")
    }

    #[test]
    fn reads_zookeeper_keys_and_derives_timeouts() {
        let cfg = load_text(
            "# comment\ntickTime=1000\nclientPort=2182\ndataDir=/d\nmaxClientCnxns=0\nsnapCount=10\nnoSuchKey=1\ninitLimit=5\n",
            ServerArgs::default(),
        );
        assert_eq!(cfg.client_port, 2182);
        assert_eq!(
            (cfg.min_session_timeout_ms, cfg.max_session_timeout_ms),
            (2000, 20000)
        );
        assert_eq!(cfg.data_log_dir, PathBuf::from("/d"));
        assert_eq!((cfg.max_client_cnxns, cfg.snap_count), (0, 10));
    }

    #[test]
    fn server_help_names_the_default_data_dir() {
        use clap::Args as _;
        let mut cmd = ServerArgs::augment_args(clap::Command::new("server"));
        let help = cmd.render_long_help().to_string();
        assert!(help.contains(DEFAULT_DATA_DIR), "{help}");
        assert_eq!(Config::default().data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn every_known_key_is_applied() {
        // A key that reached the "unknown" arm would leave the default; each
        // value here differs from it.
        let text = KNOWN_KEYS
            .iter()
            .map(|k| match *k {
                "clientPortAddress" => format!("{k}=127.0.0.2"),
                "dataDir" | "dataLogDir" => format!("{k}=/x"),
                "4lw.commands.whitelist" => format!("{k}=ruok"),
                "skipACL" => format!("{k}=yes"),
                "minSessionTimeout" => format!("{k}=4001"),
                "maxSessionTimeout" => format!("{k}=40001"),
                "tickTime" => format!("{k}=2001"),
                _ => format!("{k}=4"),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = load_text(&text, ServerArgs::default());
        let d = Config::default();
        assert_ne!(cfg.client_port, d.client_port);
        assert_ne!(cfg.client_port_address, d.client_port_address);
        assert_ne!(cfg.data_dir, d.data_dir);
        assert_ne!(cfg.data_log_dir, d.data_log_dir);
        assert_ne!(cfg.tick_time_ms, d.tick_time_ms);
        assert_ne!(cfg.min_session_timeout_ms, d.min_session_timeout_ms);
        assert_ne!(cfg.max_session_timeout_ms, d.max_session_timeout_ms);
        assert_ne!(cfg.max_client_cnxns, d.max_client_cnxns);
        assert_ne!(cfg.snap_count, d.snap_count);
        assert_ne!(cfg.snap_retain_count, d.snap_retain_count);
        assert_ne!(cfg.four_letter_words, d.four_letter_words);
        assert_ne!(cfg.max_buffer, d.max_buffer);
        assert_ne!(
            cfg.container_check_interval_ms,
            d.container_check_interval_ms
        );
        assert_ne!(cfg.skip_acl, d.skip_acl);
        assert_eq!(KNOWN_KEYS.len(), 14, "a new key needs a line above");
    }

    #[test]
    fn flags_override_the_file() {
        let args = ServerArgs {
            port: Some(0),
            data_log_dir: Some("/log".into()),
            ..ServerArgs::default()
        };
        let cfg = load_text(
            "clientPort=2182\ndataDir=/d\nmaxSessionTimeout=9000\n",
            args,
        );
        assert_eq!(cfg.client_port, 0);
        assert_eq!(cfg.data_log_dir, PathBuf::from("/log"));
        assert_eq!(cfg.max_session_timeout_ms, 9000);
    }

    #[test]
    fn whitelist_star_and_list() {
        let cfg = load_text("4lw.commands.whitelist=*\n", ServerArgs::default());
        assert!(cfg.four_letter_words.contains("cons"));
        let cfg = load_text("4lw.commands.whitelist=srvr, ruok\n", ServerArgs::default());
        assert_eq!(cfg.four_letter_words.len(), 2);
    }

    #[test]
    fn bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, "clientPort=abc\n").expect("write");
        assert!(Config::load(&ServerArgs {
            config: Some(path),
            ..ServerArgs::default()
        })
        .is_err());
        let missing = ServerArgs {
            config: Some("/nonexistent/zoo.cfg".into()),
            ..ServerArgs::default()
        };
        assert!(matches!(
            Config::load(&missing),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn server_id_255_is_refused() {
        let args = ServerArgs {
            my_id: Some(255),
            ..ServerArgs::default()
        };
        assert!(matches!(
            Config::load(&args),
            Err(ConfigError::Value { .. })
        ));
    }

    #[test]
    fn ensemble_members_are_kept_for_the_log() {
        let args = ServerArgs {
            servers: Some("server.1=zoo1:2888:3888;2181".into()),
            my_id: Some(1),
            ..ServerArgs::default()
        };
        let cfg = Config::load(&args).expect("config");
        assert_eq!(cfg.servers.len(), 1);
        assert_eq!(cfg.server_id, 1);
    }
}
