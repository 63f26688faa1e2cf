//! Black-box harness for the `broker` binary: a broker in dev mode (its own
//! in-process coordinator), or one of several brokers sharing a
//! [`crate::Coordinator`], each with private log dirs on free ports; crash,
//! stop and restart on the same data. Also locates the real Kafka clients
//! the tests drive (kcat, Debian's and PyPI's Python clients).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::{process, workspace_root};

/// The `broker` binary under test: `BROKER_BIN`, else `<workspace>/target/debug/broker`.
pub fn broker_bin() -> PathBuf {
    match std::env::var_os("BROKER_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target").join("debug").join("broker"),
    }
}

/// Python with PyPI's current clients (confluent-kafka 2.x, kafka-python 3.x):
/// `PYPI_PYTHON`, else the venv `.ci/run` creates.
pub fn pypi_python() -> PathBuf {
    match std::env::var_os("PYPI_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace_root()
            .join(".venv-clients")
            .join("bin")
            .join("python"),
    }
}

/// Debian's Python, which has python3-confluent-kafka (librdkafka 2.0.2) and
/// python3-kafka (kafka-python 2.0.2).
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// The Python test scripts' directory.
pub fn py_dir() -> PathBuf {
    workspace_root().join("integration-tests").join("py")
}

/// How to start a broker.
#[derive(Clone, Debug, Default)]
pub struct BrokerOpts {
    /// `zookeeper.connect`; `None` runs dev mode with an in-process coordinator.
    pub zookeeper: Option<String>,
    pub broker_id: Option<i32>,
    /// Extra `--override key=value` settings.
    pub overrides: Vec<(String, String)>,
    /// Extra environment variables (`KAFKA_*` settings, as the image takes them).
    pub env: Vec<(String, String)>,
}

impl BrokerOpts {
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.overrides.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn zookeeper(mut self, connect: impl Into<String>) -> Self {
        self.zookeeper = Some(connect.into());
        self
    }

    pub fn id(mut self, id: i32) -> Self {
        self.broker_id = Some(id);
        self
    }
}

/// A running (or, between crash and restart, stopped) broker process.
#[derive(Debug)]
pub struct KafkaBroker {
    opts: BrokerOpts,
    dir: TempDir,
    child: Option<Child>,
    addr: SocketAddr,
    generation: u32,
}

impl KafkaBroker {
    /// Dev mode: broker plus in-process coordinator, defaults otherwise.
    pub fn dev() -> Result<Self> {
        Self::spawn(BrokerOpts::default())
    }

    pub fn spawn(opts: BrokerOpts) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("broker-it-")
            .tempdir()
            .context("creating temp dir")?;
        let mut me = KafkaBroker {
            opts,
            dir,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            generation: 0,
        };
        me.start(None)?;
        Ok(me)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("kafka-logs")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill9(&mut self) -> Result<()> {
        process::kill9(self.child.take())
    }

    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let Some(child) = self.child.take() else {
            bail!("broker is not running")
        };
        process::terminate(child, &self.stderr_path())
    }

    /// Starts again on the same data and, if it can, the same port.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        let port = self.addr.port();
        process::restart_on(port, |p| self.start(p))
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("broker-{}.stderr", self.generation))
    }

    pub fn stderr_tail(&self, n: usize) -> String {
        process::tail(&self.stderr_path(), n)
    }

    fn start(&mut self, port: Option<u16>) -> Result<()> {
        self.generation += 1;
        let bin = broker_bin();
        if !bin.exists() {
            bail!(
                "broker binary not found at {} (build it, or set BROKER_BIN)",
                bin.display()
            );
        }
        let mut cmd = Command::new(&bin);
        cmd.arg("start")
            .env("RUST_LOG", "info")
            .args(["--data-dir"])
            .arg(self.dir.path())
            .args(["--coordinator-port", "0"])
            .arg("--override")
            .arg(format!(
                "listeners=PLAINTEXT://127.0.0.1:{}",
                port.unwrap_or(0)
            ))
            .arg("--override")
            .arg(format!("log.dirs={}", self.log_dir().display()));
        if let Some(zk) = &self.opts.zookeeper {
            cmd.arg("--override").arg(format!("zookeeper.connect={zk}"));
        }
        if let Some(id) = self.opts.broker_id {
            cmd.arg("--override").arg(format!("broker.id={id}"));
        }
        for (k, v) in &self.opts.overrides {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        let (child, addr) = process::spawn_announcing(cmd, "kafka", &self.stderr_path())?;
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = process::kill9(self.child.take());
    }
}
