//! Samples a server process while a measured phase runs: its CPU time, its resident set size
//! (peak and final) and, for context, this process's and the whole host's CPU time.

use crate::procfs;
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the background thread reads the server's VmRSS.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Started at the beginning of a phase; [`Sampler::finish`] returns what the phase used.
#[derive(Debug)]
pub struct Sampler {
    pid: Option<u32>,
    start: Instant,
    server_cpu0: Option<Duration>,
    client_cpu0: Duration,
    host_cpu0: Duration,
    stop: Arc<AtomicBool>,
    rss_thread: Option<JoinHandle<u64>>,
}

/// Resource use over one phase.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub elapsed: Duration,
    pub server_cpu: Option<Duration>,
    pub server_rss_peak_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    pub client_cpu: Duration,
    /// Busy CPU time of the whole host (all processes, all cores).
    pub host_cpu: Duration,
}

impl Sampler {
    /// Starts sampling `pid` (the server); with `None` only client and host CPU are measured.
    pub fn start(pid: Option<u32>) -> Result<Self> {
        let server_cpu0 = pid.map(|p| procfs::cpu_time(&p.to_string())).transpose()?;
        let stop = Arc::new(AtomicBool::new(false));
        let rss_thread = pid.map(|pid| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut peak = 0;
                loop {
                    peak = peak.max(procfs::rss_kib(pid).unwrap_or(0));
                    if stop.load(Ordering::Relaxed) {
                        return peak;
                    }
                    std::thread::sleep(RSS_EVERY);
                }
            })
        });
        Ok(Self {
            pid,
            start: Instant::now(),
            server_cpu0,
            client_cpu0: procfs::cpu_time("self")?,
            host_cpu0: procfs::host_busy_time()?,
            stop,
            rss_thread,
        })
    }

    /// Ends the phase.
    pub fn finish(mut self) -> Result<Usage> {
        let elapsed = self.start.elapsed();
        let server_cpu = match (self.pid, self.server_cpu0) {
            (Some(pid), Some(c0)) => Some(procfs::cpu_time(&pid.to_string())?.saturating_sub(c0)),
            _ => None,
        };
        let client_cpu = procfs::cpu_time("self")?.saturating_sub(self.client_cpu0);
        let host_cpu = procfs::host_busy_time()?.saturating_sub(self.host_cpu0);
        self.stop.store(true, Ordering::Relaxed);
        let server_rss_peak_kib = self.rss_thread.take().and_then(|t| t.join().ok());
        let server_rss_end_kib = self.pid.map(procfs::rss_kib).transpose()?;
        Ok(Usage {
            elapsed,
            server_cpu,
            server_rss_peak_kib: server_rss_peak_kib.max(server_rss_end_kib),
            server_rss_end_kib,
            client_cpu,
            host_cpu,
        })
    }
}

fn pct(cpu: Duration, wall: Duration) -> Value {
    if wall.is_zero() {
        Value::Null
    } else {
        json!((cpu.as_secs_f64() / wall.as_secs_f64() * 1000.0).round() / 10.0)
    }
}

impl Usage {
    /// Host CPU that neither this client nor the server used: other load disturbing the run.
    pub fn other_cpu(&self) -> Duration {
        self.host_cpu
            .saturating_sub(self.client_cpu + self.server_cpu.unwrap_or_default())
    }

    /// Server CPU seconds per 10^9 bytes moved: how much broker work a byte costs, which still
    /// compares brokers when the client is what limits throughput.
    pub fn server_cpu_s_per_gb(&self, bytes: u64) -> Value {
        match self.server_cpu {
            Some(c) if bytes > 0 => {
                json!((c.as_secs_f64() / (bytes as f64 / 1e9) * 1000.0).round() / 1000.0)
            }
            _ => Value::Null,
        }
    }

    /// The report fields: CPU as a percentage of one core over the phase, RSS in KiB.
    pub fn to_json(&self) -> Value {
        json!({
            "server_cpu_pct": self.server_cpu.map_or(Value::Null, |c| pct(c, self.elapsed)),
            "server_rss_peak_kib": self.server_rss_peak_kib,
            "server_rss_end_kib": self.server_rss_end_kib,
            "client_cpu_pct": pct(self.client_cpu, self.elapsed),
            "host_cpu_pct": pct(self.host_cpu, self.elapsed),
            "other_cpu_pct": pct(self.other_cpu(), self.elapsed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_own_process() -> Result<()> {
        let s = Sampler::start(Some(std::process::id()))?;
        std::thread::sleep(Duration::from_millis(20));
        let u = s.finish()?;
        assert!(u.server_rss_peak_kib.unwrap_or(0) > 0);
        assert!(u.elapsed >= Duration::from_millis(20));
        assert!(u.to_json()["server_cpu_pct"].is_number());
        Ok(())
    }
}
