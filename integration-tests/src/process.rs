//! Starting a server binary that announces itself with a `listening addr=`
//! line on stdout, and stopping it: shared by the coordinator and broker
//! harnesses.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::util::POLL;

/// Generous: two cores, tests in parallel, sometimes a JVM per test.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Last `n` lines of a log file, for failure messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "--- {} (last {n} lines) ---\n{}",
        path.display(),
        lines[from..].join("\n")
    )
}

/// Spawns `cmd` with stderr to `stderr_path` and waits for its
/// `listening addr=<addr> service=<service>` line (an unspecified address is
/// mapped to loopback).
pub fn spawn_announcing(
    mut cmd: Command,
    service: &str,
    stderr_path: &Path,
) -> Result<(Child, SocketAddr)> {
    let stderr = File::create(stderr_path)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    // A thread keeps draining stdout for the server's whole life so it never blocks on a
    // full pipe; the first `listening` line is handed back through the channel.
    let (tx, rx) = mpsc::channel::<String>();
    let wanted = format!("service={service}");
    thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("listening addr=") && line.split_whitespace().any(|w| w == wanted) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line);
                }
            }
        }
    });
    let program = cmd.get_program().to_string_lossy().into_owned();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let line = loop {
        match rx.recv_timeout(POLL) {
            Ok(line) => break line,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                bail!(
                    "{program} exited ({status}) before listening\n{}",
                    tail(stderr_path, 40)
                );
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{program} exited ({status}) before listening\n{}",
                tail(stderr_path, 40)
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{program} printed no `listening addr=` line within {STARTUP_TIMEOUT:?}\n{}",
                tail(stderr_path, 40)
            );
        }
    };
    let mut addr: SocketAddr = listening_addr(&line)
        .with_context(|| format!("bad listening line {line:?}"))?
        .parse()
        .with_context(|| format!("bad listening line {line:?}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok((child, addr))
}

/// The `addr=` field of a `listening` line.
pub fn listening_addr(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
}

/// Crash: SIGKILL and reap.
pub fn kill9(child: Option<Child>) -> Result<()> {
    if let Some(mut child) = child {
        // kill() fails only if the process was already reaped, which is fine for a crash.
        let _ = child.kill();
        child.wait().context("reaping killed server")?;
    }
    Ok(())
}

/// Clean shutdown: SIGTERM and wait (bounded).
pub fn terminate(mut child: Child, stderr_path: &Path) -> Result<ExitStatus> {
    let status = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .context("running kill -s TERM")?;
    if !status.success() {
        bail!("kill -s TERM {} failed: {status}", child.id());
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "server did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                tail(stderr_path, 40)
            );
        }
        thread::sleep(POLL);
    }
}

/// Runs `start` on `port` until the port is free again (a restarted server
/// wants its old port so clients that keep their address find it), falling
/// back to a fresh port after a while.
pub fn restart_on(port: u16, mut start: impl FnMut(Option<u16>) -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_err = None;
    while Instant::now() < deadline {
        match start(Some(port)) {
            Ok(()) => return Ok(()),
            // Only a taken port is worth retrying; any other failure is the server's.
            Err(e) if format!("{e:#}").contains("in use") => last_err = Some(e),
            Err(e) => return Err(e),
        }
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!("restart: port {port} unusable ({last_err:?}); falling back to a fresh port");
    start(None)
}
