//! The broker's coordinator session: connect with backoff, create Kafka's
//! top-level paths, register `/brokers/ids/<id>`, follow the metadata by
//! persistent watches and publish images, run the controller role when
//! elected. A lost session is replaced by a new one and the broker
//! re-registers; meanwhile the last image keeps being served.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, Error as ZkError, EventType, PersistentWatcher,
    SessionState, WatchedEvent,
};

use super::controller::{Controller, ControllerError, ElectionPolicy};
use super::image::{self, MetadataImage};
use super::session_file::SessionFile;
use super::znode::{self, BrokerZnode, ClusterIdZnode, Endpoint};

/// What the session task needs to know about this broker.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub connect: String,
    pub session_timeout: Duration,
    pub broker_id: i32,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub election: ElectionPolicy,
    /// Where the session is recorded, so that a restart after a crash can
    /// close it at once.
    pub session_file: SessionFile,
}

#[cfg(test)]
impl SessionConfig {
    /// Broker 1 with no endpoints, the default election policy and no
    /// session file: enough for a unit test's session.
    pub(crate) fn for_tests(connect: impl Into<String>) -> Self {
        SessionConfig {
            connect: connect.into(),
            session_timeout: Duration::from_secs(6),
            broker_id: 1,
            endpoints: Vec::new(),
            rack: None,
            election: ElectionPolicy::default(),
            session_file: SessionFile::default(),
        }
    }
}

/// Shared with the [`super::Cluster`] handle.
#[derive(Debug)]
pub(super) struct Published {
    pub image: watch::Sender<Arc<MetadataImage>>,
    /// The client of the current session, `None` while there is none.
    pub client: watch::Sender<Option<Client>>,
}

/// Watch events queued for the session task at most; the forwarders wait
/// when it is full (the coordinator connection then slows down too).
const EVENT_QUEUE: usize = 1024;

pub(super) async fn run(cfg: SessionConfig, out: Arc<Published>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    // The session a crashed predecessor left: closed before registering, so
    // its registration (and controller role) go now, not at its timeout.
    let mut previous = cfg.session_file.load();
    loop {
        let attempt = async {
            // The client retries a refused connection until its session
            // timeout; a probe first makes the wait ours: its cause logged,
            // cut short by shutdown.
            probe(&cfg.connect).await?;
            if let Some(old) = &previous {
                close_previous(&cfg, old.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            connect(&cfg).await.map_err(|e| e.to_string())
        };
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = attempt => c,
        };
        match connected {
            Ok(client) => {
                previous = None;
                backoff = Duration::from_millis(100);
                cfg.session_file.store(client.session());
                let result = Session::new(&cfg, client.clone(), &out)
                    .serve(&shutdown)
                    .await;
                out.client.send_replace(None);
                match result {
                    Ok(()) => {
                        close(client).await;
                        cfg.session_file.clear();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "coordinator session lost, starting a new one")
                    }
                }
            }
            Err(cause) => {
                tracing::warn!(connect = cfg.connect, cause, retry_in = ?backoff, "waiting for the coordinator");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn connect(cfg: &SessionConfig) -> Result<Client, ZkError> {
    Client::connector()
        .with_session_timeout(cfg.session_timeout)
        .with_connection_timeout(Duration::from_secs(5))
        .connect(&cfg.connect)
        .await
}

/// Takes back the session a crashed predecessor of this broker held and
/// closes it: its ephemerals (the registration, maybe `/controller`) go at
/// once and the controller sees this broker leave and come back as a new
/// incarnation (a new broker epoch). Errors only while the coordinator is
/// unreachable; a session that is already gone is fine.
async fn close_previous(
    cfg: &SessionConfig,
    old: zookeeper_client::SessionInfo,
) -> Result<(), ZkError> {
    let id = old.id();
    let resumed = Client::connector()
        .with_session(old)
        .with_session_timeout(cfg.session_timeout)
        .with_connection_timeout(Duration::from_secs(5))
        .with_fail_eagerly()
        .connect(&cfg.connect)
        .await;
    match resumed {
        Ok(client) => {
            close(client).await;
            tracing::info!(session = %id, "closed the coordinator session of this broker's previous run");
            Ok(())
        }
        Err(e @ (ZkError::NoHosts | ZkError::ConnectionLoss | ZkError::Timeout)) => Err(e),
        Err(e) => {
            tracing::info!(session = %id, reason = %e, "the previous run's coordinator session is already gone");
            Ok(())
        }
    }
}

/// Whether a server of the connect string accepts a TCP connection; if
/// none does, the socket error that says why.
pub(crate) async fn probe(connect: &str) -> Result<(), String> {
    coordinator::connect_string::probe(connect, Duration::from_secs(1)).await
}

/// Drops the last client (which sends closeSession, so our ephemerals go at
/// once) and waits briefly for the close to reach the coordinator.
async fn close(client: Client) {
    let mut states = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !states.changed().await.is_terminated() {}
    })
    .await;
}

struct Session<'a> {
    cfg: &'a SessionConfig,
    client: Client,
    out: &'a Published,
    controller: Option<Controller>,
}

/// The subtrees whose changes the image follows.
const WATCHED: [(&str, AddWatchMode); 4] = [
    ("/brokers", AddWatchMode::PersistentRecursive),
    (znode::CONFIG_TOPICS, AddWatchMode::PersistentRecursive),
    (znode::CONTROLLER, AddWatchMode::Persistent),
    (znode::DELETE_TOPICS, AddWatchMode::PersistentRecursive),
];

impl<'a> Session<'a> {
    fn new(cfg: &'a SessionConfig, client: Client, out: &'a Published) -> Self {
        Session {
            cfg,
            client,
            out,
            controller: None,
        }
    }

    async fn serve(mut self, shutdown: &CancellationToken) -> Result<(), ZkError> {
        create_top_level_paths(&self.client).await?;
        let cluster_id = cluster_id(&self.client).await?;
        let (tx, mut events) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let mut forwarders = self.watch_all(&tx).await?;
        if !self.register(shutdown).await? {
            return Ok(());
        }
        let mut img = image::load_all(&self.client, cluster_id.clone()).await?;
        self.publish(&img);
        // Only now may this broker lead again: announcing the session before
        // the fresh image would let the last one (from before a lost
        // session) make it a leader of partitions that moved meanwhile.
        self.out.client.send_replace(Some(self.client.clone()));
        self.elect_and_reconcile(&img, false).await?;
        let mut preferred_check = tokio::time::interval(self.cfg.election.preferred_check_interval);
        preferred_check.reset();

        let result = loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                e = events.recv() => e,
                _ = preferred_check.tick() => {
                    match self.elect_and_reconcile(&img, true).await {
                        Ok(()) | Err(ZkError::ConnectionLoss) => continue,
                        Err(e) => break Err(e),
                    }
                }
            };
            let Some(first) = first else {
                break Err(ZkError::SessionExpired);
            };
            // Apply every event already queued before publishing once.
            let mut batch = vec![first];
            while let Ok(e) = events.try_recv() {
                batch.push(e);
            }
            let step = async {
                if self.apply(&mut img, batch).await? {
                    // Reconnected: the client does not restore persistent
                    // watches (zookeeper-client 0.11 re-sends only one-shot
                    // ones), and events during the outage may be lost. Watch
                    // again first, then re-read everything.
                    let renewed = self.watch_all(&tx).await?;
                    for old in std::mem::replace(&mut forwarders, renewed) {
                        // Dropping the old watcher after its replacement
                        // exists keeps the server-side watch.
                        old.abort();
                    }
                    img = image::load_all(&self.client, cluster_id.clone()).await?;
                }
                self.publish(&img);
                self.elect_and_reconcile(&img, false).await
            };
            match step.await {
                Ok(()) => {}
                // The reconnect's SyncConnected event brings us back here.
                Err(ZkError::ConnectionLoss) => {
                    tracing::info!("coordinator connection lost; serving the last metadata");
                }
                Err(e) => break Err(e),
            }
        };
        for f in forwarders {
            f.abort();
        }
        result
    }

    /// Adds the persistent watches, each forwarding into `tx`.
    async fn watch_all(
        &self,
        tx: &tokio::sync::mpsc::Sender<WatchedEvent>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, ZkError> {
        let mut out = Vec::with_capacity(WATCHED.len());
        for (path, mode) in WATCHED {
            let watcher = self.client.watch(path, mode).await?;
            out.push(tokio::spawn(forward(watcher, tx.clone())));
        }
        Ok(out)
    }

    /// Kafka's registration: create the ephemeral empty, set the JSON, in
    /// one multi. A registration left by our previous process's session
    /// (after a crash) blocks until that session expires. Returns false if
    /// shutdown came first.
    async fn register(&self, shutdown: &CancellationToken) -> Result<bool, ZkError> {
        let path = znode::broker_path(self.cfg.broker_id);
        let data = serde_json::to_vec(&BrokerZnode::new(
            &self.cfg.endpoints,
            self.cfg.rack.clone(),
        ))
        .unwrap_or_default();
        let mut warned = false;
        loop {
            let mut multi = self.client.new_multi_writer();
            multi.add_create(
                &path,
                b"",
                &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
            )?;
            multi.add_set_data(&path, &data, Some(0))?;
            match multi.commit().await.map_err(ZkError::from) {
                Ok(_) => {
                    tracing::info!(broker = self.cfg.broker_id, endpoints = %znode::endpoint_list(&self.cfg.endpoints), "registered in the coordinator");
                    return Ok(true);
                }
                Err(ZkError::NodeExists) => {
                    let owner = self
                        .client
                        .check_stat(&path)
                        .await?
                        .map(|s| s.ephemeral_owner);
                    if owner == Some(self.client.session_id().0) {
                        return Ok(true);
                    }
                    if !warned {
                        tracing::warn!(
                            broker = self.cfg.broker_id,
                            "broker id is registered by another session (a previous run of this broker, or another broker with the same id); waiting for it to go"
                        );
                        warned = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(false),
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn publish(&self, img: &MetadataImage) {
        self.out.image.send_replace(Arc::new(img.clone()));
    }

    /// Takes the controller role if it is free, and reconciles while we
    /// hold it; `preferred` also runs the preferred-leader election.
    async fn elect_and_reconcile(
        &mut self,
        img: &MetadataImage,
        preferred: bool,
    ) -> Result<(), ZkError> {
        if img.controller_id.is_none() && self.controller.is_none() {
            self.controller =
                Controller::try_elect(&self.client, self.cfg.broker_id, self.cfg.election).await?;
        }
        if img.controller_id.is_some_and(|c| c != self.cfg.broker_id) {
            self.controller = None;
        }
        if let Some(ctl) = &mut self.controller {
            match ctl.reconcile(&self.client, img, preferred).await {
                Ok(()) => {}
                Err(ControllerError::Moved) => {
                    tracing::info!("controller role moved to another broker");
                    self.controller = None;
                }
                Err(ControllerError::Zk(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Updates `img` for a batch of watch events, re-reading only what an
    /// event names. Returns true after a reconnect, when the caller must
    /// re-watch and re-read everything instead.
    async fn apply(
        &self,
        img: &mut MetadataImage,
        batch: Vec<WatchedEvent>,
    ) -> Result<bool, ZkError> {
        let mut reconnected = false;
        for event in batch {
            if event.event_type == EventType::Session {
                if event.session_state.is_terminated() {
                    return Err(ZkError::SessionExpired);
                }
                reconnected |= event.session_state == SessionState::SyncConnected;
                continue;
            }
            if !reconnected {
                self.apply_path(img, &event.path).await?;
            }
        }
        Ok(reconnected)
    }

    async fn apply_path(&self, img: &mut MetadataImage, path: &str) -> Result<(), ZkError> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["controller"] => img.controller_id = image::load_controller(&self.client).await?,
            ["brokers", "ids", id] => {
                if let Ok(id) = id.parse::<i32>() {
                    match image::load_broker(&self.client, id).await? {
                        Some(b) => img.brokers.insert(id, b),
                        None => img.brokers.remove(&id),
                    };
                }
            }
            ["brokers", "topics", topic] | ["config", "topics", topic] => {
                match image::load_topic(&self.client, topic).await? {
                    Some(t) => img.topics.insert(t.name.clone(), Arc::new(t)),
                    None => img.topics.remove(*topic),
                };
            }
            ["brokers", "topics", topic, "partitions", p, "state"] => {
                let (Some(t), Ok(p)) = (img.topics.get(*topic), p.parse::<usize>()) else {
                    return Ok(());
                };
                if p < t.partitions.len() {
                    let state = image::load_state(&self.client, topic, p as i32).await?;
                    let mut t = (**t).clone();
                    t.partitions[p].state = state;
                    img.topics.insert(t.name.clone(), Arc::new(t));
                }
            }
            // Deletion markers only matter to the controller, which lists
            // them itself when reconciling.
            _ => {}
        }
        Ok(())
    }
}

async fn forward(mut watcher: PersistentWatcher, tx: tokio::sync::mpsc::Sender<WatchedEvent>) {
    loop {
        let event = watcher.changed().await;
        let terminal =
            event.event_type == EventType::Session && event.session_state.is_terminated();
        if tx.send(event).await.is_err() || terminal {
            // `changed` must not be called after a terminal event.
            return;
        }
    }
}

async fn create_top_level_paths(client: &Client) -> Result<(), ZkError> {
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for path in znode::PERSISTENT_PATHS {
        match client.create(path, b"", &opts).await {
            Ok(_) | Err(ZkError::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Kafka's `getOrGenerateClusterId`: the first broker writes a random id.
async fn cluster_id(client: &Client) -> Result<String, ZkError> {
    if let Some((data, _, _)) = image::read(client, znode::CLUSTER_ID).await? {
        if let Ok(z) = serde_json::from_slice::<ClusterIdZnode>(&data) {
            return Ok(z.id);
        }
    }
    let id = znode::topic_id_string(uuid::Uuid::new_v4());
    let data = serde_json::to_vec(&ClusterIdZnode {
        version: "1".into(),
        id: id.clone(),
    })
    .unwrap_or_default();
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match client.create(znode::CLUSTER_ID, &data, &opts).await {
        Ok(_) => Ok(id),
        Err(ZkError::NodeExists) => Box::pin(cluster_id(client)).await,
        Err(e) => Err(e),
    }
}
