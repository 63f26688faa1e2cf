//! Serving a bound listener, for both services: connection limits (a
//! service-wide bound waited for before accepting, a per-address bound
//! refused at once with a log line naming the setting), accept errors backed
//! off rather than fatal, one tracked task per connection, and the drain at
//! shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How many connections a service takes, and the settings that say so (the
/// log lines name them, in the service's own words).
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Broker-wide bound; beyond it accepting waits for a connection to end.
    pub max_total: u32,
    /// The setting `max_total` comes from (`max.connections`).
    pub total_key: &'static str,
    /// Per client address; beyond it a new connection is closed at once.
    pub max_per_ip: u32,
    /// Addresses with their own bound.
    pub per_ip_overrides: HashMap<IpAddr, u32>,
    /// The setting `max_per_ip` comes from (`max.connections.per.ip`,
    /// `maxClientCnxns`).
    pub per_ip_key: &'static str,
}

/// The limits in force, shared by a service's listeners.
#[derive(Debug)]
pub struct ConnectionLimits {
    settings: LimitSettings,
    total: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One admitted connection's share of the limits, given back on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    _slot: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = relock(&self.per_ip);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(settings: LimitSettings) -> Self {
        ConnectionLimits {
            total: Arc::new(Semaphore::new(settings.max_total as usize)),
            settings,
            per_ip: Arc::default(),
        }
    }

    /// A service-wide slot, waited for (and the wait logged) when every one
    /// is taken.
    async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.total.clone().try_acquire_owned() {
            return slot;
        }
        tracing::warn!(
            limit = self.settings.max_total,
            "{} reached: new connections wait until one closes",
            self.settings.total_key
        );
        match self.total.clone().acquire_owned().await {
            Ok(slot) => slot,
            // The semaphore is never closed; wait rather than admit.
            Err(_) => std::future::pending().await,
        }
    }

    /// Admits a connection from `ip` holding `slot`, or refuses it (logged)
    /// when that address already has as many as it may.
    fn admit(&self, slot: OwnedSemaphorePermit, peer: SocketAddr) -> Option<ConnectionPermit> {
        let ip = peer.ip();
        let max = self
            .settings
            .per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.settings.max_per_ip);
        let mut open = relock(&self.per_ip);
        let n = open.get(&ip).copied().unwrap_or(0);
        if n >= max {
            tracing::warn!(
                %peer,
                limit = max,
                "refused a connection: the address already has {} connections",
                self.settings.per_ip_key
            );
            return None;
        }
        open.insert(ip, n + 1);
        Some(ConnectionPermit {
            _slot: slot,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }
}

/// Accepts on `listener` until `shutdown`, within `limits`, and runs
/// `on_connection` for each admitted connection as a task of `tracker`.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    limits: Arc<ConnectionLimits>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    mut on_connection: F,
) where
    F: FnMut(TcpStream, SocketAddr, ConnectionPermit) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Duration::from_millis(5);
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = limits.slot() => s,
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                if let Some(permit) = limits.admit(slot, peer) {
                    tracker.spawn(on_connection(stream, peer, permit));
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep going.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Closes `tracker` and waits up to `patience` for its connections to
/// finish; false (and a log line) if some did not.
pub async fn drain(tracker: &TaskTracker, patience: Duration) -> bool {
    tracker.close();
    let done = tokio::time::timeout(patience, tracker.wait()).await.is_ok();
    if !done {
        tracing::warn!(patience = ?patience, "connections still open after the drain time");
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u32, per_ip: u32, overrides: &[(IpAddr, u32)]) -> ConnectionLimits {
        ConnectionLimits::new(LimitSettings {
            max_total: total,
            total_key: "max.connections",
            max_per_ip: per_ip,
            per_ip_overrides: overrides.iter().copied().collect(),
            per_ip_key: "max.connections.per.ip",
        })
    }

    fn from(ip: [u8; 4]) -> SocketAddr {
        SocketAddr::from((ip, 4000))
    }

    #[tokio::test]
    async fn per_ip_limit_refuses_then_admits_after_a_close() {
        let (a, b) = (from([10, 0, 0, 1]), from([10, 0, 0, 2]));
        let l = limits(100, 2, &[(b.ip(), 0)]);
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
        let peer = from([127, 0, 0, 1]);
        let held = l.admit(l.slot().await, peer).expect("first");
        let waiting = tokio::time::timeout(Duration::from_millis(50), l.slot()).await;
        assert!(waiting.is_err(), "a second slot while the first is held");
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(5), l.slot())
            .await
            .expect("slot after the close");
        assert!(l.admit(slot, peer).is_some());
    }
}
