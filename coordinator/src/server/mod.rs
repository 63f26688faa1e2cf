//! The server: recovers storage, starts the state machine and the
//! group-commit thread, and accepts client connections until shut down.

mod connection;
mod core;
mod four_letter;
mod outbound;
mod stats;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::net::{ConnectionLimits, LimitSettings};

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
    let limits = Arc::new(ConnectionLimits::new(LimitSettings {
        max_total: u32::MAX,
        total_key: "connections",
        // ZooKeeper's 0 means no limit.
        max_per_ip: if max_per_ip == 0 {
            u32::MAX
        } else {
            max_per_ip
        },
        per_ip_overrides: HashMap::new(),
        per_ip_key: "maxClientCnxns",
    }));
    let mut next_id = 0u64;
    common::net::serve(
        listener,
        limits,
        tracker.clone(),
        shutdown.clone(),
        |stream, peer, permit| {
            next_id += 1;
            let (id, ctx, token) = (next_id, ctx.clone(), shutdown.clone());
            async move {
                connection::serve(stream, peer, id, ctx, token).await;
                drop(permit);
            }
        },
    )
    .await;
    common::net::drain(&tracker, DRAIN).await;
    core_stop.cancel();
    drop(ctx);
    if let Err(e) = core_task.await {
        tracing::error!(error = %e, "state machine task failed");
    }
    tracing::info!("coordinator stopped");
    Ok(())
}
