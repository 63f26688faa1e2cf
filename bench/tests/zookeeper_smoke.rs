//! Smoke test: `zkbench` against a real Apache ZooKeeper (Debian package); skipped when ZooKeeper or java is absent.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ZK_JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// A ZooKeeper process killed when dropped.
struct ZooKeeper {
    child: Child,
    port: u16,
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends a four-letter-word command and returns the reply.
fn four_letter(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(cmd.as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Ready = `ruok` answers `imok` and `srvr` shows a serving standalone server (ZooKeeper says
/// `imok` a moment before it accepts sessions).
fn ready(port: u16) -> bool {
    matches!(four_letter(port, "ruok"), Ok(r) if r == "imok")
        && matches!(four_letter(port, "srvr"), Ok(r) if r.contains("Mode: standalone"))
}

fn start_zookeeper(dir: &Path) -> Result<ZooKeeper> {
    let port = free_port()?;
    let (data, log) = (dir.join("data"), dir.join("log"));
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&log)?;
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\ndataLogDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,mntr\n",
            data.display(),
            log.display()
        ),
    )?;
    let out = std::fs::File::create(dir.join("zookeeper.log"))?;
    let child = Command::new("java")
        .args([
            "-Xmx256m",
            "-cp",
            ZK_JARS,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("spawning java")?;
    let mut zk = ZooKeeper { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if let Some(status) = zk.child.try_wait()? {
            bail!("ZooKeeper exited during startup: {status}");
        }
        if Instant::now() > deadline {
            bail!("ZooKeeper not ready in 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(zk)
}

fn zkbench(zk: &ZooKeeper, args: &[&str]) -> Result<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_zkbench"))
        .args(["--server", &format!("127.0.0.1:{}", zk.port)])
        .args(["--pid", &zk.child.id().to_string()])
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "zkbench {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    let line = stdout.lines().last().context("no output")?;
    Ok(serde_json::from_str(line)?)
}

#[test]
fn zkbench_runs_every_workload_against_zookeeper() -> Result<()> {
    let have_java = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_java || !Path::new("/usr/share/java/zookeeper.jar").exists() {
        eprintln!("skipping: needs java and Debian's zookeeper package");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let zk = start_zookeeper(dir.path())?;

    for workload in ["create", "set", "get", "mix"] {
        let r = zkbench(
            &zk,
            &[
                "--workload",
                workload,
                "--sessions",
                "2",
                "--inflight",
                "4",
                "--ops",
                "400",
                "--warmup",
                "0",
                "--nodes",
                "50",
            ],
        )?;
        assert_eq!(r["workload"], workload, "{r}");
        assert_eq!(r["ops"], 400, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["p99_ms"].as_f64().is_some_and(|p| p > 0.0), "{r}");
        assert!(r["server_rss_kib"].as_u64().is_some_and(|k| k > 0), "{r}");
    }
    let mix = zkbench(
        &zk,
        &[
            "--workload",
            "mix",
            "--sessions",
            "3",
            "--inflight",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
        ],
    )?;
    let (gets, sets) = (
        mix["gets"].as_u64().unwrap_or(0),
        mix["sets"].as_u64().unwrap_or(0),
    );
    assert!(gets > sets && sets > 0, "{mix}");
    assert!(mix["ops_per_s"].as_f64().is_some_and(|x| x > 0.0), "{mix}");
    Ok(())
}
