//! Helpers shared by the tests that are not about running the server: waiting on conditions
//! with deadlines, running external tools with a time limit, 4lw queries, client sessions,
//! and reading the server's on-disk file names.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub(crate) const POLL: Duration = Duration::from_millis(25);

/// An ephemeral port that was free a moment ago (apache needs the port up front).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding probe listener")?;
    Ok(l.local_addr()?.port())
}

/// Sends a four-letter word and returns everything the server wrote before closing.
pub fn four_letter(addr: SocketAddr, word: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Polls `cond` until it returns true or `timeout` passes; false means it timed out.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Async [`wait_until`] for conditions that need a client round trip.
pub async fn wait_until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `cmd` with `stdin` text, stdout and stderr merged in write order, killing it at
/// `timeout`. Returns (exit status, merged output).
pub fn run_with_timeout(
    mut cmd: Command,
    stdin: &str,
    timeout: Duration,
) -> Result<(ExitStatus, String)> {
    let out_file = tempfile::NamedTempFile::new()?;
    let out = out_file.reopen()?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::piped()).stdout(out).stderr(err);
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    if let Some(mut si) = child.stdin.take() {
        si.write_all(stdin.as_bytes())?;
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(out_file.path()).unwrap_or_default();
            bail!("{cmd:?} did not finish within {timeout:?}; output so far:\n{text}");
        }
        thread::sleep(POLL);
    };
    let text = fs::read_to_string(out_file.path())?;
    Ok((status, text))
}

/// Asserts that `fragments` occur in `haystack` in this order; on failure shows everything.
pub fn assert_in_order(haystack: &str, fragments: &[&str]) {
    let mut pos = 0;
    for f in fragments {
        match haystack[pos..].find(f) {
            Some(i) => pos += i + f.len(),
            None => panic!(
                "expected {f:?} (after byte {pos}) in order {fragments:?}\n----- output -----\n{haystack}\n------------------"
            ),
        }
    }
}

/// Files in `dir` named `<prefix>.<hex zxid>`, sorted by zxid ascending.
pub fn zxid_files(dir: &Path, prefix: &str) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) {
            if let Ok(z) = u64::from_str_radix(hex, 16) {
                out.push((z, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Connects a `zookeeper-client` session to `addr` with the given requested session timeout.
pub async fn zk_connect(
    addr: SocketAddr,
    session_timeout: Duration,
) -> Result<zookeeper_client::Client> {
    connect_with(
        addr,
        zookeeper_client::Client::connector().with_session_timeout(session_timeout),
    )
    .await
}

/// Like [`zk_connect`] but the session is not closed when the client is dropped, so dropping
/// it behaves like a client that vanished (the session must expire on the server).
pub async fn zk_connect_detached(
    addr: SocketAddr,
    session_timeout: Duration,
) -> Result<zookeeper_client::Client> {
    let connector = zookeeper_client::Client::connector()
        .with_session_timeout(session_timeout)
        .with_detached();
    connect_with(addr, connector).await
}

async fn connect_with(
    addr: SocketAddr,
    connector: zookeeper_client::Connector,
) -> Result<zookeeper_client::Client> {
    let target = addr.to_string();
    tokio::time::timeout(Duration::from_secs(30), connector.connect(&target))
        .await
        .map_err(|_| anyhow!("no session with {addr} within 30s"))?
        .with_context(|| format!("connecting to {addr}"))
}

/// `CreateOptions` for an open-ACL node of the given mode.
pub fn open(mode: zookeeper_client::CreateMode) -> zookeeper_client::CreateOptions<'static> {
    mode.with_acls(zookeeper_client::Acls::anyone_all())
}
