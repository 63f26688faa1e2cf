//! The four-letter words (`srvr`, `stat`, `mntr`, `conf`, `cons`, `wchs`,
//! `envi`, `isro`) answered from the state machine's view of the server.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::core::Core;

/// The ZooKeeper release whose protocol and behaviour this server follows;
/// tools such as kazoo parse the digits before the first `-`.
pub const ZK_VERSION: &str = concat!("3.8.4-eddy-", env!("CARGO_PKG_VERSION"), ", built on eddy");

impl Core {
    pub(super) fn four_letter(&self, word: &str) -> String {
        match word {
            "srvr" => self.srvr(false),
            "stat" => self.srvr(true),
            "mntr" => self.mntr(),
            "conf" => self.conf(),
            "cons" => self.cons(),
            "wchs" => self.wchs(),
            "envi" => envi(),
            "isro" => "rw".into(),
            _ => String::new(),
        }
    }

    fn connections(&self) -> usize {
        self.sessions.values().filter(|s| s.conn.is_some()).count()
    }

    fn srvr(&self, with_clients: bool) -> String {
        let l = self.stats.latency();
        let mut s = format!("Zookeeper version: {ZK_VERSION}\n");
        if with_clients {
            s.push_str("Clients:\n");
            s.push_str(&self.cons());
            s.push('\n');
        }
        let _ = write!(
            s,
            "Latency min/avg/max: {}/{:.4}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: 0\nZxid: {:#x}\nMode: standalone\nNode count: {}\n",
            l.min as u64,
            l.avg,
            l.max as u64,
            self.stats.received.load(Ordering::Relaxed),
            self.stats.sent.load(Ordering::Relaxed),
            self.connections(),
            self.machine.db.last_zxid,
            self.machine.db.tree.len(),
        );
        s
    }

    fn mntr(&self) -> String {
        let l = self.stats.latency();
        let data_size: usize = self
            .machine
            .db
            .tree
            .nodes()
            .map(|(p, n)| p.len() + n.data.len())
            .sum();
        let rows: Vec<(&str, String)> = vec![
            ("zk_version", ZK_VERSION.into()),
            ("zk_server_state", "standalone".into()),
            ("zk_avg_latency", format!("{:.4}", l.avg)),
            ("zk_max_latency", format!("{}", l.max as u64)),
            ("zk_min_latency", format!("{}", l.min as u64)),
            (
                "zk_packets_received",
                self.stats.received.load(Ordering::Relaxed).to_string(),
            ),
            (
                "zk_packets_sent",
                self.stats.sent.load(Ordering::Relaxed).to_string(),
            ),
            ("zk_num_alive_connections", self.connections().to_string()),
            ("zk_outstanding_requests", "0".into()),
            ("zk_znode_count", self.machine.db.tree.len().to_string()),
            ("zk_watch_count", self.machine.watches.count().to_string()),
            (
                "zk_ephemerals_count",
                self.machine.db.tree.ephemeral_count().to_string(),
            ),
            ("zk_approximate_data_size", data_size.to_string()),
            ("zk_global_sessions", self.sessions.len().to_string()),
            (
                "zk_uptime",
                self.stats.started.elapsed().as_millis().to_string(),
            ),
            ("zk_last_zxid", format!("{:#x}", self.machine.db.last_zxid)),
        ];
        rows.into_iter()
            .map(|(k, v)| format!("{k}\t{v}\n"))
            .collect()
    }

    fn conf(&self) -> String {
        let c = &self.cfg;
        format!(
            "clientPort={}\nclientPortAddress={}\ndataDir={}\ndataLogDir={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nserverId={}\nsnapCount={}\n",
            c.client_port,
            c.client_port_address.map_or_else(|| "0.0.0.0".to_string(), |a| a.to_string()),
            c.data_dir.join("version-2").display(),
            c.data_log_dir.join("version-2").display(),
            c.tick_time_ms,
            c.max_client_cnxns,
            c.min_session_timeout_ms,
            c.max_session_timeout_ms,
            c.server_id,
            c.snap_count,
        )
    }

    fn cons(&self) -> String {
        let mut s = String::new();
        for (id, live) in &self.sessions {
            if let Some(conn) = &live.conn {
                let _ = writeln!(
                    s,
                    " /{}[1](queued=0,recved={},sent={},sid={:#x},to={})",
                    conn.peer,
                    conn.stats.received.load(Ordering::Relaxed),
                    conn.stats.sent.load(Ordering::Relaxed),
                    id,
                    live.timeout_ms,
                );
            }
        }
        s
    }

    fn wchs(&self) -> String {
        let watchers = self.machine.watches.by_session().count();
        format!(
            "{watchers} connections watching {} paths\nTotal watches:{}\n",
            self.machine.watches.path_count(),
            self.machine.watches.count()
        )
    }
}

fn envi() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "Environment:\nzookeeper.version={ZK_VERSION}\nhost.name={}\nos.name={}\nos.arch={}\nuser.dir={cwd}\n",
        host.trim(),
        std::env::consts::OS,
        std::env::consts::ARCH,
    )
}
