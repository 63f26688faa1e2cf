//! The server: recovers storage, starts the state machine and the
//! group-commit thread, and accepts client connections until shut down.

mod connection;
mod core;
mod four_letter;
mod outbound;
mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::storage::syncer::Syncer;
use crate::storage::{Storage, StorageError};

pub use four_letter::ZK_VERSION;

/// Requests queued for the state machine before readers wait.
const CORE_QUEUE: usize = 64 * 1024;
/// How long connections get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("starting the log thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
}

/// Counts connections per client address for `maxClientCnxns`.
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, u32>>);

impl PerIp {
    fn try_add(&self, ip: IpAddr, limit: u32) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_default();
        if limit != 0 && *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Runs the coordinator on an already bound listener until `shutdown` is
/// cancelled. `on_ready` is called once recovery is done and clients are served.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let storage = Storage::open(&cfg.data_dir, &cfg.data_log_dir, cfg.snap_retain_count)?;
    let (db, writer) = storage.recover()?;
    let syncer = Syncer::start(writer).map_err(ServerError::Thread)?;
    let stats = Arc::new(stats::ServerStats::default());
    let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
    let ctx = Arc::new(connection::ConnContext {
        core: core_tx,
        max_buffer: cfg.max_buffer,
        four_letter_words: cfg.four_letter_words.clone(),
        handshake_timeout: Duration::from_millis(u64::from(cfg.max_session_timeout_ms)),
        epoch: Instant::now(),
    });
    let max_per_ip = cfg.max_client_cnxns;
    let core = core::Core::new(cfg, db, storage, syncer, stats.clone());
    let core_stop = CancellationToken::new();
    let core_task = tokio::spawn(core.run(core_rx, core_stop.clone()));

    let addr = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!(version = ZK_VERSION, "coordinator serving clients");
    on_ready(addr);

    let tracker = TaskTracker::new();
    let per_ip = Arc::new(PerIp::default());
    let mut next_id = 0u64;
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                // Out of descriptors and similar: wait and retry, do not die.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if !per_ip.try_add(peer.ip(), max_per_ip) {
            tracing::warn!(%peer, limit = max_per_ip, "too many connections from this address (maxClientCnxns); closing");
            continue;
        }
        next_id += 1;
        let (id, ctx, per_ip, token) = (next_id, ctx.clone(), per_ip.clone(), shutdown.clone());
        tracker.spawn(async move {
            connection::serve(stream, peer, id, ctx, token).await;
            per_ip.remove(peer.ip());
        });
    }
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("connections did not finish in time");
    }
    core_stop.cancel();
    drop(ctx);
    if let Err(e) = core_task.await {
        tracing::error!(error = %e, "state machine task failed");
    }
    tracing::info!("coordinator stopped");
    Ok(())
}
