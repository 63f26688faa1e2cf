//! Broker start-up and the listeners: resolves the broker id, opens the logs,
//! starts the coordinator session and the partition follower, then serves
//! Kafka connections until shutdown, when it closes every log cleanly.

mod connection;
#[doc(hidden)]
pub mod fuzzing;
mod identity;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::Broker;
use crate::cluster::{AdminError, Cluster, Endpoint, SessionConfig, SessionFile};
use crate::config::BrokerConfig;
use crate::group::GroupService;
use crate::log::{FlushSettings, LogManager};
use crate::replication::{self, Replicas};
use common::net::{ConnectionLimits, LimitSettings};

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

/// A listener's socket, bound but not yet listening: until the broker
/// serves, connections to it are refused (a client retries at once) rather
/// than accepted and left unanswered.
#[derive(Debug)]
pub struct BoundListener {
    /// `PLAINTEXT`, ...
    pub name: String,
    /// The address actually bound (the port is known even for port 0).
    pub addr: SocketAddr,
    socket: TcpSocket,
}

/// Kafka's `socket.listen.backlog.size` default.
const LISTEN_BACKLOG: u32 = 50;

/// Binds every configured listener (an empty host binds all interfaces).
pub async fn bind(config: &BrokerConfig) -> Result<Vec<BoundListener>, ServerError> {
    let mut out = Vec::new();
    for l in &config.listeners {
        let host = if l.host.is_empty() {
            "0.0.0.0"
        } else {
            &l.host
        };
        let text = format!("{host}:{}", l.port);
        let bind_error = |source| ServerError::Bind {
            name: l.name.clone(),
            addr: text.clone(),
            source,
        };
        let addr = tokio::net::lookup_host(&text)
            .await
            .map_err(bind_error)?
            .next()
            .ok_or_else(|| bind_error(std::io::ErrorKind::AddrNotAvailable.into()))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(bind_error)?;
        // As Kafka (and tokio's own bind): a restart may reuse the port
        // while old connections linger in TIME_WAIT.
        socket.set_reuseaddr(true).map_err(bind_error)?;
        socket.bind(addr).map_err(bind_error)?;
        let addr = socket.local_addr().map_err(bind_error)?;
        out.push(BoundListener {
            name: l.name.clone(),
            addr,
            socket,
        });
    }
    Ok(out)
}

/// Runs the broker on already-bound listeners until `shutdown`.
/// `on_ready` gets each listener's name and address once it serves.
pub async fn run(
    mut config: BrokerConfig,
    listeners: Vec<BoundListener>,
    shutdown: CancellationToken,
    on_ready: impl Fn(&str, SocketAddr),
) -> Result<(), ServerError> {
    // Held until the process ends: no earlier run of this broker is alive,
    // so the coordinator session it left may be closed at once.
    let _dir_locks = crate::log::lock_dirs(&config.log_dirs)?;
    let connect = config.zookeeper_connect.clone().unwrap_or_default();
    config.broker_id = match identity::resolve(&config, &connect, &shutdown).await? {
        Some(id) => id,
        None => return Ok(()),
    };
    let bound: Vec<(String, u16)> = listeners
        .iter()
        .map(|l| (l.name.clone(), l.addr.port()))
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
        session_file: SessionFile::new(config.log_dirs.clone()),
    };
    let background = CancellationToken::new();
    let (cluster, session_task) = Cluster::start(session, background.clone());
    let replicas = Arc::new(Replicas::default());
    let follower = tokio::spawn(replication::follow(
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
    tokio::spawn(replication::shrink_isrs(
        replicas.clone(),
        cluster.clone(),
        config.replica_lag_time_max,
        background.clone(),
    ));
    let groups = GroupService::start(config.group, cluster.clone(), background.clone());
    let broker = Arc::new(Broker::new(config, cluster, logs.clone(), replicas, groups));

    // As Kafka, requests are served only once this broker is registered
    // and its partitions are open: a client's first answer is then right.
    let me = broker.id();
    let tracker = TaskTracker::new();
    let connections = CancellationToken::new();
    let registered = tokio::select! {
        _ = shutdown.cancelled() => false,
        r = wait_until_registered(&broker) => r,
    };
    if registered {
        let limits = Arc::new(connection_limits(&broker.config));
        for l in listeners {
            let listener = l
                .socket
                .listen(LISTEN_BACKLOG)
                .map_err(|source| ServerError::Bind {
                    name: l.name.clone(),
                    addr: l.addr.to_string(),
                    source,
                })?;
            on_ready(&l.name, l.addr);
            let name: Arc<str> = l.name.into();
            let (broker, connections) = (broker.clone(), connections.clone());
            tracker.spawn(common::net::serve(
                listener,
                limits.clone(),
                tracker.clone(),
                shutdown.clone(),
                move |stream, peer, permit| {
                    let _ = stream.set_nodelay(true);
                    connection::serve(
                        stream,
                        peer,
                        name.clone(),
                        broker.clone(),
                        connections.clone(),
                        permit,
                    )
                },
            ));
        }
        tracing::info!(broker = me, "serving");
    }
    shutdown.cancelled().await;
    connections.cancel();
    common::net::drain(&tracker, Duration::from_secs(5)).await;
    background.cancel();
    let _ = follower.await;
    let _ = session_task.await;
    tokio::task::spawn_blocking(move || logs.close_all())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    tracing::info!("logs closed cleanly");
    Ok(())
}

/// Kafka's connection limits from the broker's config.
fn connection_limits(config: &BrokerConfig) -> ConnectionLimits {
    ConnectionLimits::new(LimitSettings {
        max_total: config.max_connections,
        total_key: "max.connections",
        max_per_ip: config.max_connections_per_ip,
        per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
        per_ip_key: "max.connections.per.ip",
    })
}

/// Waits until this broker is in the image with a controller known,
/// saying every 10 s what it still waits for. False if the session task
/// ended first.
async fn wait_until_registered(broker: &Broker) -> bool {
    let me = broker.id();
    loop {
        let waited = broker
            .replicas
            .wait_for(Duration::from_secs(10), |img| {
                img.brokers.contains_key(&me) && img.controller_id.is_some()
            })
            .await;
        match waited {
            Ok(()) => return true,
            Err(AdminError::Timeout) => {
                let img = broker.cluster.image();
                let what = if img.brokers.contains_key(&me) {
                    "a controller to be elected"
                } else {
                    "this broker's registration in the coordinator"
                };
                tracing::info!(broker = me, "not serving yet: waiting for {what}");
            }
            Err(_) => return false,
        }
    }
}
