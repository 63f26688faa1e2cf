//! The machine's physical limits for a broker: one loopback TCP stream and sequential file
//! writes made durable with fdatasync.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

/// Bytes per second through one loopback TCP connection, writer and reader each on its own
/// thread, for about `secs`.
pub fn loopback_tcp(secs: Duration) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding loopback listener")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> Result<(u64, Duration)> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let mut first: Option<Instant> = None;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            total += n as u64;
        }
        Ok((total, first.map(|t| t.elapsed()).unwrap_or_default()))
    });
    let mut conn = TcpStream::connect(addr)?;
    let buf = vec![0x5au8; CHUNK];
    let deadline = Instant::now() + secs;
    while Instant::now() < deadline {
        conn.write_all(&buf)?;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    drop(conn);
    let (total, elapsed) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(total as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Bytes per second of writing `bytes` sequentially in 1 MiB chunks to a new file in `dir` and
/// then fdatasync-ing it (the time includes the sync, like `dd conv=fdatasync`).
pub fn sequential_write(dir: &Path, bytes: u64) -> Result<f64> {
    let path = dir.join(format!("kafkabench-seqwrite-{}.tmp", std::process::id()));
    let result = (|| -> Result<f64> {
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        // Not all zeroes, so no layer below can cheat on a zero page.
        let buf: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
        let start = Instant::now();
        let mut written = 0u64;
        while written < bytes {
            f.write_all(&buf)?;
            written += CHUNK as u64;
        }
        f.sync_data()?;
        Ok(written as f64 / start.elapsed().as_secs_f64().max(1e-9))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something() -> Result<()> {
        assert!(loopback_tcp(Duration::from_millis(50))? > 0.0);
        let dir = tempfile::tempdir()?;
        assert!(sequential_write(dir.path(), 4 << 20)? > 0.0);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }
}
