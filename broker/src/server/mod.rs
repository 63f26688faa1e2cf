//! Broker start-up and the listeners: resolves the broker id, opens the logs,
//! starts the coordinator session and the partition follower, then serves
//! Kafka connections until shutdown, when it closes every log cleanly.

mod connection;
#[doc(hidden)]
pub mod fuzzing;
mod identity;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{AdminError, Cluster, Endpoint, SessionConfig};
use crate::config::BrokerConfig;
use crate::group::GroupService;
use crate::log::{FlushSettings, LogManager};
use crate::replicas::{self, Replicas};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind listener {name} on {addr}: {source}")]
    Bind {
        name: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("broker id: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error("log directories: {0}")]
    Logs(#[from] crate::log::LogError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Everything a request handler can reach; shared by all connections.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster: Cluster,
    pub logs: Arc<LogManager>,
    pub replicas: Arc<Replicas>,
    pub groups: GroupService,
    producer_ids: Mutex<std::ops::Range<i64>>,
}

impl Broker {
    pub fn id(&self) -> i32 {
        self.cluster.broker_id()
    }

    /// A fresh producer id from this broker's block, claiming a new block
    /// from the coordinator when it runs out.
    pub async fn next_producer_id(&self) -> Result<i64, AdminError> {
        if let Some(id) = self.lock_ids().next() {
            return Ok(id);
        }
        let block = self.cluster.allocate_producer_ids().await?;
        let mut ids = self.lock_ids();
        if ids.is_empty() {
            *ids = block;
        }
        ids.next().ok_or(AdminError::NoCoordinator)
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, std::ops::Range<i64>> {
        self.producer_ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound listener with its name (`PLAINTEXT`, ...).
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub listener: TcpListener,
}

/// Binds every configured listener (an empty host binds all interfaces).
pub async fn bind(config: &BrokerConfig) -> Result<Vec<BoundListener>, ServerError> {
    let mut out = Vec::new();
    for l in &config.listeners {
        let host = if l.host.is_empty() {
            "0.0.0.0"
        } else {
            &l.host
        };
        let addr = format!("{host}:{}", l.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                name: l.name.clone(),
                addr: addr.clone(),
                source,
            })?;
        out.push(BoundListener {
            name: l.name.clone(),
            listener,
        });
    }
    Ok(out)
}

/// Runs the broker on already-bound listeners until `shutdown`.
/// `on_ready` gets the first listener's address once requests are served.
pub async fn run(
    mut config: BrokerConfig,
    listeners: Vec<BoundListener>,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let connect = config.zookeeper_connect.clone().unwrap_or_default();
    config.broker_id = identity::resolve(&config, &connect).await?;
    let bound: Vec<(String, u16)> = listeners
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.listener.local_addr().ok()?.port())))
        .collect();
    let endpoints = config
        .advertised(&bound)
        .into_iter()
        .map(|l| Endpoint {
            listener: l.name,
            host: l.host,
            port: i32::from(l.port),
        })
        .collect();

    let dirs = config.log_dirs.clone();
    let defaults = config.log.clone();
    let logs = tokio::task::spawn_blocking(move || LogManager::open(dirs, &defaults))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let logs = Arc::new(logs);

    let session = SessionConfig {
        connect,
        session_timeout: config.zookeeper_session_timeout,
        broker_id: config.broker_id,
        endpoints,
        rack: config.rack.clone(),
        election: config.election,
    };
    let background = CancellationToken::new();
    let (cluster, session_task) = Cluster::start(session, background.clone());
    let replicas = Arc::new(Replicas::default());
    let follower = tokio::spawn(replicas::follow(
        replicas.clone(),
        cluster.clone(),
        logs.clone(),
        config.log.clone(),
        background.clone(),
    ));
    logs.spawn_background(
        background.clone(),
        config.log_retention_check_interval,
        FlushSettings {
            scheduler_interval: config.log_flush_scheduler_interval,
            checkpoint_interval: Duration::from_secs(60),
        },
    );
    tokio::spawn(replicas::shrink_isrs(
        replicas.clone(),
        cluster.clone(),
        config.replica_lag_time_max,
        background.clone(),
    ));
    let groups = GroupService::start(config.group, cluster.clone(), background.clone());
    let broker = Arc::new(Broker {
        config,
        groups,
        cluster,
        logs: logs.clone(),
        replicas,
        producer_ids: Mutex::new(0..0),
    });

    // As Kafka, requests are served only once this broker is registered
    // and its partitions are open: a client's first answer is then right.
    let me = broker.id();
    loop {
        let registered = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = broker.replicas.wait_for(Duration::from_secs(10), |img| img.brokers.contains_key(&me) && img.controller_id.is_some()) => r,
        };
        match registered {
            Ok(()) => break,
            Err(_) => tracing::info!(broker = me, "still waiting to register in the coordinator"),
        }
    }
    let tracker = TaskTracker::new();
    let connections = CancellationToken::new();
    if let Some(first) = listeners.first().and_then(|l| l.listener.local_addr().ok()) {
        on_ready(first);
    }
    for l in listeners {
        tracker.spawn(accept_loop(
            l,
            broker.clone(),
            tracker.clone(),
            connections.clone(),
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    tracing::info!("shutting down");
    connections.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s; closing the logs anyway");
    }
    background.cancel();
    let _ = follower.await;
    let _ = session_task.await;
    tokio::task::spawn_blocking(move || logs.close_all())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    tracing::info!("logs closed cleanly");
    Ok(())
}

async fn accept_loop(
    bound: BoundListener,
    broker: Arc<Broker>,
    tracker: TaskTracker,
    connections: CancellationToken,
    shutdown: CancellationToken,
) {
    let listener_name: Arc<str> = bound.name.into();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = bound.listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let _ = stream.set_nodelay(true);
                tracker.spawn(connection::serve(
                    stream,
                    peer,
                    listener_name.clone(),
                    broker.clone(),
                    connections.clone(),
                ));
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
