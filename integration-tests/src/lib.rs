//! Black-box test harness: starts `coord` (or, with `ZK_IMPL=apache`, a real Apache ZooKeeper
//! 3.8 so the tests themselves can be validated) with private data dirs on a free port, and can
//! crash, stop and restart it on those same dirs.
//!
//! Environment: `COORD_BIN` overrides `<workspace>/target/debug/coord`; `ZK_IMPL=apache` runs
//! `org.apache.zookeeper.server.ZooKeeperServerMain` from `ZK_CLASSPATH` (default: Debian's
//! `/usr/share/java/zookeeper.jar`) instead. The kazoo and zkCli tests need Debian's
//! `python3-kazoo` and `zookeeper` packages (and a JRE) whichever server is tested.

pub mod kafka;
pub mod kafka_raw;
pub mod process;
pub mod raw;
mod util;

pub use zookeeper_client as zk;

pub use crate::util::*;

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::process::STARTUP_TIMEOUT;

/// Which server the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Coord,
    Apache,
}

/// `ZK_IMPL=apache` selects real ZooKeeper; anything else (or unset) selects `coord`.
pub fn implementation() -> Impl {
    match std::env::var("ZK_IMPL") {
        Ok(v) if v.eq_ignore_ascii_case("apache") => Impl::Apache,
        _ => Impl::Coord,
    }
}

pub fn is_apache() -> bool {
    implementation() == Impl::Apache
}

/// Root of the cargo workspace (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `coord` binary under test: `COORD_BIN`, else `<workspace>/target/debug/coord`.
pub fn coord_bin() -> PathBuf {
    match std::env::var_os("COORD_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target").join("debug").join("coord"),
    }
}

/// Options for [`Coordinator::spawn_with`].
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// `--tick-time` (apache: `tickTime`). Session timeouts are clamped to [2, 20] ticks.
    pub tick_time_ms: Option<u32>,
    /// `--snap-count` (apache: `snapCount`).
    pub snap_count: Option<u32>,
    /// Extra zoo.cfg lines; passed to coord with `--config`, appended to apache's zoo.cfg.
    pub config: Option<String>,
    /// Extra command-line arguments for `coord server` (ignored under apache).
    pub extra_args: Vec<String>,
}

impl Opts {
    pub fn tick_time(mut self, ms: u32) -> Self {
        self.tick_time_ms = Some(ms);
        self
    }

    pub fn snap_count(mut self, n: u32) -> Self {
        self.snap_count = Some(n);
        self
    }
}

/// A running (or stopped, between crash and restart) server with its own data dirs.
#[derive(Debug)]
pub struct Coordinator {
    which: Impl,
    opts: Opts,
    dir: TempDir,
    child: Option<Child>,
    addr: SocketAddr,
    /// Bumped on every start so each incarnation's stderr lands in its own file.
    generation: u32,
}

impl Coordinator {
    pub fn spawn() -> Result<Self> {
        Self::spawn_with(Opts::default())
    }

    pub fn spawn_with(opts: Opts) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("coord-it-")
            .tempdir()
            .context("creating temp dir")?;
        fs::create_dir_all(dir.path().join("data"))?;
        fs::create_dir_all(dir.path().join("datalog"))?;
        let mut me = Coordinator {
            which: implementation(),
            opts,
            dir,
            child: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            generation: 0,
        };
        me.start(None)?;
        Ok(me)
    }

    /// Address a client can connect to (an unspecified bind address is mapped to loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, as ZooKeeper clients want it.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn implementation(&self) -> Impl {
        self.which
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn data_log_dir(&self) -> PathBuf {
        self.dir.path().join("datalog")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Crash: SIGKILL and reap.
    pub fn kill9(&mut self) -> Result<()> {
        process::kill9(self.child.take())
    }

    /// Clean shutdown: SIGTERM and wait (bounded). Returns the exit status.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let Some(child) = self.child.take() else {
            bail!("server is not running")
        };
        process::terminate(child, &self.stderr_path())
    }

    /// Start again on the same data dirs, preferring the previous port so that connected
    /// clients (which keep their connect string) can find the server again. A still-running
    /// server is terminated first.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        let port = self.addr.port();
        process::restart_on(port, |p| self.start(p))
    }

    /// Path of the current incarnation's stderr log.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("server-{}.stderr", self.generation))
    }

    /// Last `n` lines of the current incarnation's stderr, for failure messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        process::tail(&self.stderr_path(), n)
    }

    fn start(&mut self, port: Option<u16>) -> Result<()> {
        self.generation += 1;
        match self.which {
            Impl::Coord => self.start_coord(port.unwrap_or(0)),
            Impl::Apache => {
                let port = match port {
                    Some(p) => p,
                    None => free_port()?,
                };
                self.start_apache(port)
            }
        }
    }

    fn start_coord(&mut self, port: u16) -> Result<()> {
        let bin = coord_bin();
        if !bin.exists() {
            bail!(
                "coord binary not found at {} (build it, or set COORD_BIN)",
                bin.display()
            );
        }
        let mut cmd = Command::new(&bin);
        cmd.arg("server")
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--data-log-dir")
            .arg(self.data_log_dir());
        if let Some(t) = self.opts.tick_time_ms {
            cmd.args(["--tick-time", &t.to_string()]);
        }
        if let Some(n) = self.opts.snap_count {
            cmd.args(["--snap-count", &n.to_string()]);
        }
        if let Some(cfg) = &self.opts.config {
            let path = self.dir.path().join("zoo.cfg");
            fs::write(&path, cfg)?;
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.opts.extra_args);
        let (child, addr) = process::spawn_announcing(cmd, "zookeeper", &self.stderr_path())?;
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }

    fn start_apache(&mut self, port: u16) -> Result<()> {
        let mut cfg = format!(
            "tickTime={}\nclientPort={port}\nclientPortAddress=127.0.0.1\ndataDir={}\ndataLogDir={}\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n",
            self.opts.tick_time_ms.unwrap_or(2000),
            self.data_dir().display(),
            self.data_log_dir().display(),
        );
        if let Some(n) = self.opts.snap_count {
            cfg.push_str(&format!("snapCount={n}\n"));
        }
        if let Some(extra) = &self.opts.config {
            cfg.push_str(extra);
            cfg.push('\n');
        }
        let cfg_path = self.dir.path().join("zoo.cfg");
        fs::write(&cfg_path, cfg)?;
        let classpath = std::env::var("ZK_CLASSPATH").unwrap_or_else(|_| {
            "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar".to_string()
        });
        let stderr = File::create(self.stderr_path())?;
        let mut child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dzookeeper.admin.enableServer=false",
                // Default is one minute: far too slow to observe TTL/container reaping in a test.
                "-Dznode.container.checkIntervalMs=500",
                "-cp",
                &classpath,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning java for Apache ZooKeeper")?;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "zookeeper exited ({status}) before serving\n{}",
                    self.stderr_tail(40)
                );
            }
            // `ruok` answers before the database is loaded; `srvr` only reports a mode once the
            // server actually serves requests.
            if let Ok(out) = four_letter(addr, "srvr") {
                if out.contains("Mode: ") {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "zookeeper not serving within {STARTUP_TIMEOUT:?}\n{}",
                    self.stderr_tail(40)
                );
            }
            thread::sleep(POLL);
        }
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.stderr_tail(60));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
