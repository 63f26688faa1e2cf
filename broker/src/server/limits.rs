//! Connection limits, Kafka's `max.connections` (broker-wide: beyond it the
//! acceptor waits for a connection to close) and `max.connections.per.ip`
//! with `max.connections.per.ip.overrides` (beyond it a new connection from
//! that address is closed at once, with a log line).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::BrokerConfig;

#[derive(Debug)]
pub(super) struct ConnectionLimits {
    total: Arc<Semaphore>,
    total_max: u32,
    per_ip: Arc<PerIp>,
}

#[derive(Debug)]
struct PerIp {
    default_max: u32,
    overrides: HashMap<IpAddr, u32>,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection's share of the limits, given back on drop.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    _slot: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<PerIp>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.per_ip.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ConnectionLimits {
    pub(super) fn new(config: &BrokerConfig) -> Self {
        ConnectionLimits {
            total: Arc::new(Semaphore::new(config.max_connections as usize)),
            total_max: config.max_connections,
            per_ip: Arc::new(PerIp {
                default_max: config.max_connections_per_ip,
                overrides: config.max_connections_per_ip_overrides.clone(),
                open: Mutex::default(),
            }),
        }
    }

    /// A broker-wide slot, waited for (and the wait logged) when all
    /// `max.connections` are taken.
    pub(super) async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.total.clone().try_acquire_owned() {
            return slot;
        }
        tracing::warn!(
            max_connections = self.total_max,
            "max.connections reached: new connections wait until one closes"
        );
        match self.total.clone().acquire_owned().await {
            Ok(slot) => slot,
            // The semaphore is never closed; wait forever rather than admit.
            Err(_) => std::future::pending().await,
        }
    }

    /// Admits a connection from `ip` holding `slot`, or refuses it (logged)
    /// when that address already has its `max.connections.per.ip`.
    pub(super) fn admit(&self, slot: OwnedSemaphorePermit, ip: IpAddr) -> Option<ConnectionPermit> {
        let max = self
            .per_ip
            .overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.per_ip.default_max);
        let mut open = self.per_ip.lock();
        let n = open.entry(ip).or_default();
        if *n >= max {
            if *n == 0 {
                open.remove(&ip);
            }
            tracing::warn!(%ip, max, "refused a connection: the address already has max.connections.per.ip connections");
            return None;
        }
        *n += 1;
        Some(ConnectionPermit {
            _slot: slot,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u32, per_ip: u32, overrides: &[(IpAddr, u32)]) -> ConnectionLimits {
        ConnectionLimits::new(&BrokerConfig {
            max_connections: total,
            max_connections_per_ip: per_ip,
            max_connections_per_ip_overrides: overrides.iter().copied().collect(),
            ..BrokerConfig::default()
        })
    }

    #[tokio::test]
    async fn per_ip_limit_refuses_then_admits_after_a_close() {
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let l = limits(100, 2, &[(b, 0)]);
        let first = l.admit(l.slot().await, a).expect("first");
        let _second = l.admit(l.slot().await, a).expect("second");
        assert!(l.admit(l.slot().await, a).is_none(), "third from a");
        assert!(l.admit(l.slot().await, b).is_none(), "override 0 for b");
        drop(first);
        assert!(l.admit(l.slot().await, a).is_some(), "after a close");
    }

    #[tokio::test]
    async fn total_limit_waits_for_a_slot() {
        let l = limits(1, 10, &[]);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let held = l.admit(l.slot().await, ip).expect("first");
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), l.slot()).await;
        assert!(waiting.is_err(), "a second slot while the first is held");
        drop(held);
        let slot = tokio::time::timeout(std::time::Duration::from_secs(5), l.slot())
            .await
            .expect("slot after the close");
        assert!(l.admit(slot, ip).is_some());
    }
}
