//! Server-wide counters behind the four-letter words, updated without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    latency_count: AtomicU64,
    latency_total_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
        }
    }
}

/// Latency figures in milliseconds, as `srvr` prints them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub count: u64,
}

impl ServerStats {
    pub fn record_latency(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_total_us.fetch_add(us, Ordering::Relaxed);
        self.latency_min_us.fetch_min(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn latency(&self) -> Latency {
        let count = self.latency_count.load(Ordering::Relaxed);
        let total = self.latency_total_us.load(Ordering::Relaxed);
        let min = self.latency_min_us.load(Ordering::Relaxed);
        let max = self.latency_max_us.load(Ordering::Relaxed);
        if count == 0 {
            return Latency {
                min: 0.0,
                avg: 0.0,
                max: 0.0,
                count,
            };
        }
        Latency {
            min: min as f64 / 1000.0,
            avg: total as f64 / count as f64 / 1000.0,
            max: max as f64 / 1000.0,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_aggregates() {
        let s = ServerStats::default();
        assert_eq!(s.latency().count, 0);
        s.record_latency(Duration::from_millis(1));
        s.record_latency(Duration::from_millis(3));
        let l = s.latency();
        assert_eq!((l.min, l.avg, l.max, l.count), (1.0, 2.0, 3.0, 2));
    }
}
