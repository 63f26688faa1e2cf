//! Linux /proc readers: resident set size (VmRSS), CPU time of a process and of the whole host.

use anyhow::{anyhow, Context, Result};
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on Linux).
const USER_HZ: u64 = 100;

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss_kib(&text).ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// Extracts `VmRSS:   1234 kB` from the text of a /proc/PID/status file.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU time consumed so far by process `pid` ("self" works too).
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_cpu_ticks(&text).ok_or_else(|| anyhow!("malformed {path}"))?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    // after_comm starts at field 3 (state); utime is field 14 => index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time all cores have spent busy (not idle, not waiting for I/O) since boot, from /proc/stat.
pub fn host_busy_time() -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks = parse_host_busy_ticks(&text).ok_or_else(|| anyhow!("malformed /proc/stat"))?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Busy ticks of the aggregate `cpu` line: everything but idle and iowait (guest time is
/// already counted in user/nice, so only the first eight fields are summed).
pub fn parse_host_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let (idle, iowait) = (*fields.get(3)?, *fields.get(4)?);
    Some(fields.iter().sum::<u64>() - idle - iowait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tjava\nVmPeak:\t  999 kB\nVmRSS:\t   123456 kB\nThreads: 4\n";
        assert_eq!(parse_vm_rss_kib(status), Some(123_456));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn parses_stat_ticks_with_spaces_in_comm() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn parses_host_busy_ticks() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_host_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(parse_host_busy_ticks("intr 1 2\n"), None);
    }

    #[test]
    fn reads_own_process() -> Result<()> {
        let pid = std::process::id();
        assert!(rss_kib(pid)? > 0);
        cpu_time("self")?;
        host_busy_time()?;
        Ok(())
    }
}
