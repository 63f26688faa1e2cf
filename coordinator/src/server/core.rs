//! The state machine task: the only owner of the database, the watch table and
//! the live sessions. It takes requests in arrival order (so each session's
//! requests keep their FIFO order), assigns zxids, appends transactions to the
//! current round, and hands the round to the group-commit thread. Replies
//! computed while any transaction is not yet durable wait for that sync, so
//! no client ever sees a state a crash could take back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::ZkDb;
use crate::machine::Machine;
use crate::proto::op_code::PING_XID;
use crate::proto::records::WatcherEvent;
use crate::proto::{ConnectRequest, ConnectResponse, ErrorCode, Request, Response, PASSWORD_LEN};
use crate::storage::snapshot::SnapshotStream;
use crate::storage::syncer::{Batch, Syncer};
use crate::storage::txnlog;
use crate::storage::Storage;
use crate::watch::SYNC_CONNECTED;

use super::outbound::{ConnHandle, CoreMsg, Deliveries, Delivery, Outbound, SessionClock};
use super::stats::ServerStats;

/// A session the server knows about, connected or not.
#[derive(Debug)]
pub(super) struct LiveSession {
    pub conn: Option<ConnHandle>,
    pub timeout_ms: i64,
    pub clock: SessionClock,
}

/// Most messages taken from the queue in one round; bounds reply latency
/// under a flood while still batching log writes.
const MAX_ROUND: usize = 1024;

#[derive(Debug)]
pub struct Core {
    pub(super) cfg: Config,
    pub(super) machine: Machine,
    pub(super) sessions: HashMap<i64, LiveSession>,
    /// Expiry buckets: deadline (ms, a multiple of tickTime) -> sessions to check.
    expiry: BTreeMap<i64, Vec<i64>>,
    storage: Storage,
    /// Snapshot writer threads take turns.
    snapshot_lock: Arc<Mutex<()>>,
    syncer: Syncer<Deliveries>,
    log: BytesMut,
    out: Vec<Delivery>,
    pub(super) stats: Arc<ServerStats>,
    since_snapshot: u64,
    snapshot_after: u64,
    next_session: i64,
    epoch: Instant,
}

impl Core {
    pub fn new(
        cfg: Config,
        db: ZkDb,
        storage: Storage,
        syncer: Syncer<Deliveries>,
        stats: Arc<ServerStats>,
    ) -> Self {
        // ZooKeeper's session id layout: server id in the top byte, then time.
        let next_session = (((common::time::now_ms() as u64) << 24) >> 8) as i64
            | (i64::from(cfg.server_id) << 56);
        let mut core = Self {
            snapshot_after: 0,
            machine: Machine::new(db, cfg.skip_acl),
            cfg,
            sessions: HashMap::new(),
            expiry: BTreeMap::new(),
            storage,
            snapshot_lock: Arc::default(),
            syncer,
            log: BytesMut::new(),
            out: Vec::new(),
            stats,
            since_snapshot: 0,
            next_session,
            epoch: Instant::now(),
        };
        core.snapshot_after = core.next_snapshot_threshold();
        // Restored sessions get a full timeout to reconnect, as after a ZooKeeper restart.
        let restored: Vec<(i64, i32)> = core
            .machine
            .db
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect();
        for (id, timeout_ms) in restored {
            core.track_session(id, i64::from(timeout_ms));
        }
        core
    }

    /// ZooKeeper randomizes the snapshot point within [snapCount/2, snapCount]
    /// so that an ensemble's members do not all snapshot at once. A snapshot
    /// pauses the state machine for time proportional to the tree, so it also
    /// waits for at least as many transactions as the tree has nodes: the
    /// pause per write stays constant however large the tree grows, and
    /// recovery never replays more than about one tree's worth of log.
    fn next_snapshot_threshold(&self) -> u64 {
        let half = self.cfg.snap_count / 2;
        let randomized = half + rand::rng().random_range(0..=half);
        randomized.max(self.machine.db.tree.len() as u64)
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>, shutdown: CancellationToken) {
        let tick = std::time::Duration::from_millis(u64::from(self.cfg.tick_time_ms));
        let mut expiry_tick = tokio::time::interval(tick);
        expiry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let reap = std::time::Duration::from_millis(self.cfg.container_check_interval_ms.max(1));
        let mut reap_tick = tokio::time::interval(reap);
        reap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut batch = Vec::with_capacity(MAX_ROUND);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, MAX_ROUND) => {
                    if n == 0 {
                        break;
                    }
                    for msg in batch.drain(..) {
                        self.handle(msg);
                    }
                }
                _ = expiry_tick.tick() => self.expire_sessions(),
                _ = reap_tick.tick() => self.reap_containers_and_ttls(),
                _ = shutdown.cancelled() => break,
            }
            self.end_round();
        }
        self.end_round();
        // The log thread blocks on file I/O; wait for it off the runtime.
        let syncer = self.syncer;
        let flushed = tokio::task::spawn_blocking(move || syncer.close()).await;
        if flushed.is_err() {
            tracing::error!("waiting for the transaction log failed");
        }
        tracing::info!(
            zxid = format_args!("{:#x}", self.machine.db.last_zxid),
            "state machine stopped; transaction log flushed"
        );
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Connect { conn, request } => self.connect(conn, request),
            CoreMsg::Request {
                session,
                conn_id,
                xid,
                request,
                received,
            } => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(conn) = self.connection_of(session, conn_id) else {
                    return;
                };
                self.request(session, &conn, xid, request, received);
            }
            CoreMsg::Disconnected { session, conn_id } => {
                if let Some(live) = self.sessions.get_mut(&session) {
                    if live.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                        live.conn = None;
                    }
                }
            }
            CoreMsg::FourLetter { word, reply } => {
                let _ = reply.send(self.four_letter(&word));
            }
        }
    }

    /// The connection currently attached to `session`, if it is `conn_id`:
    /// requests from a connection the session has moved away from are dropped.
    fn connection_of(&self, session: i64, conn_id: u64) -> Option<ConnHandle> {
        let conn = self.sessions.get(&session)?.conn.as_ref()?;
        (conn.id == conn_id).then(|| conn.clone())
    }

    /// Queues a message for a connection in this round.
    pub(super) fn send(&mut self, conn: &ConnHandle, msg: Outbound, received: Option<Instant>) {
        self.out.push(Delivery {
            conn: conn.clone(),
            msg,
            received,
        });
    }

    /// Takes what the machine just did: its transactions go into this
    /// round's log buffer, its notifications to the watching connections
    /// (queued before the reply that follows, as ZooKeeper orders them).
    fn drain(&mut self) {
        for entry in self.machine.effects.committed.drain(..) {
            txnlog::frame(&entry, &mut self.log);
            self.since_snapshot += 1;
        }
        let notes = std::mem::take(&mut self.machine.effects.notifications);
        for (zxid, n) in notes {
            let Some(conn) = self.sessions.get(&n.session).and_then(|s| s.conn.clone()) else {
                continue;
            };
            let event = WatcherEvent {
                event_type: n.event_type,
                state: SYNC_CONNECTED,
                path: n.path,
            };
            self.send(&conn, Outbound::Event { zxid, event }, None);
        }
    }

    /// One client request: pings and closeSession are the connection's
    /// business, everything else is the machine's.
    fn request(
        &mut self,
        session: i64,
        conn: &ConnHandle,
        xid: i32,
        req: Request,
        received: Instant,
    ) {
        tracing::trace!(
            session = format_args!("{session:#x}"),
            xid,
            op = req.op_code(),
            "request"
        );
        match req {
            Request::Ping => self.reply(conn, PING_XID, None, Ok(Response::Empty), received),
            Request::CloseSession => {
                let zxid = self.close_session(session);
                self.reply(conn, xid, Some(zxid), Ok(Response::Empty), received);
                self.send(conn, Outbound::Close, None);
            }
            req => {
                let is_auth = matches!(req, Request::Auth(_));
                let (zxid, result) = self.machine.request(session, req, common::time::now_ms());
                self.drain();
                // ZooKeeper answers a failed auth and then drops the connection.
                let close = is_auth && result.is_err();
                self.reply(conn, xid, zxid, result, received);
                if close {
                    self.send(conn, Outbound::Close, None);
                }
            }
        }
    }

    /// Releases this round: directly when nothing is waiting on the log,
    /// otherwise through the group-commit thread, in order.
    fn end_round(&mut self) {
        let snapshot = if self.since_snapshot >= self.snapshot_after {
            self.since_snapshot = 0;
            self.snapshot_after = self.next_snapshot_threshold();
            self.take_snapshot()
        } else {
            None
        };
        if self.out.is_empty() && self.log.is_empty() && snapshot.is_none() {
            return;
        }
        let deliveries = Deliveries {
            items: std::mem::take(&mut self.out),
            stats: Some(self.stats.clone()),
        };
        if self.log.is_empty() && snapshot.is_none() && self.syncer.idle() {
            crate::storage::syncer::Deliver::deliver(deliveries);
        } else {
            let log = std::mem::take(&mut self.log);
            self.syncer.submit(Batch {
                log,
                snapshot,
                deliveries,
            });
        }
    }

    /// Streams the database to a snapshot file (written, synced and published
    /// by its own thread); returns the zxid the log should roll after.
    fn take_snapshot(&mut self) -> Option<i64> {
        let zxid = self.machine.db.last_zxid;
        let started = Instant::now();
        let written = SnapshotStream::start(self.storage.clone(), zxid, self.snapshot_lock.clone())
            .and_then(|mut stream| {
                self.machine.db.write_snapshot(&mut stream)?;
                stream.finish()
            });
        match written {
            Ok(_writer) => {
                let took_ms = started.elapsed().as_millis() as u64;
                let nodes = self.machine.db.tree.len();
                tracing::info!(
                    zxid = format_args!("{zxid:#x}"),
                    nodes,
                    took_ms,
                    "snapshot serialized"
                );
                Some(zxid)
            }
            Err(e) => {
                tracing::error!(error = %e, "snapshot failed; the log still holds every transaction");
                None
            }
        }
    }

    fn track_session(&mut self, id: i64, timeout_ms: i64) {
        let clock = SessionClock::default();
        clock.store(self.now_ms(), Ordering::Relaxed);
        self.sessions.insert(
            id,
            LiveSession {
                conn: None,
                timeout_ms,
                clock,
            },
        );
        self.schedule(id, self.now_ms() + timeout_ms);
    }

    /// Puts a session into the bucket of the first tick at or after `deadline`.
    fn schedule(&mut self, id: i64, deadline: i64) {
        let tick = i64::from(self.cfg.tick_time_ms);
        let bucket = (deadline + tick - 1) / tick * tick;
        self.expiry.entry(bucket).or_default().push(id);
    }

    fn connect(&mut self, conn: ConnHandle, req: ConnectRequest) {
        if req.last_zxid_seen > self.machine.db.last_zxid {
            // The client saw a newer state than ours (another server's);
            // ZooKeeper refuses so the client tries elsewhere.
            tracing::warn!(peer = %conn.peer, client_zxid = format_args!("{:#x}", req.last_zxid_seen), our_zxid = format_args!("{:#x}", self.machine.db.last_zxid), "refusing session: client has seen a newer zxid");
            self.send(&conn, Outbound::Close, None);
            return;
        }
        let min = i64::from(self.cfg.min_session_timeout_ms);
        let max = i64::from(self.cfg.max_session_timeout_ms);
        let timeout = i64::from(req.timeout_ms).clamp(min, max);
        if req.session_id == 0 {
            let id = self.new_session_id();
            let mut password = [0u8; PASSWORD_LEN];
            rand::rng().fill(&mut password[..]);
            self.machine
                .create_session(id, timeout as i32, password, common::time::now_ms());
            self.drain();
            self.track_session(id, timeout);
            self.attach(id, conn, password, timeout);
            tracing::debug!(
                session = format_args!("{id:#x}"),
                timeout,
                "session created"
            );
            return;
        }
        let id = req.session_id;
        match self.machine.db.sessions.get(&id) {
            Some(rec) if rec.password[..] == req.password[..] => {
                let password = rec.password;
                let timeout = i64::from(rec.timeout_ms);
                if let Some(old) = self.sessions.get_mut(&id).and_then(|s| s.conn.take()) {
                    // The session moved to a new connection; the old one goes.
                    self.send(&old, Outbound::Close, None);
                }
                self.attach(id, conn, password, timeout);
                tracing::debug!(session = format_args!("{id:#x}"), "session resumed");
            }
            found => {
                tracing::info!(
                    session = format_args!("{id:#x}"),
                    known = found.is_some(),
                    "reconnect to an expired session or with a wrong password"
                );
                let response = ConnectResponse::expired();
                self.send(
                    &conn,
                    Outbound::Connected {
                        response,
                        clock: None,
                    },
                    None,
                );
                self.send(&conn, Outbound::Close, None);
            }
        }
    }

    fn new_session_id(&mut self) -> i64 {
        loop {
            self.next_session = self.next_session.wrapping_add(1);
            let id = self.next_session;
            if id != 0 && !self.machine.db.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn attach(&mut self, id: i64, conn: ConnHandle, password: [u8; PASSWORD_LEN], timeout: i64) {
        let now = self.now_ms();
        let Some(live) = self.sessions.get_mut(&id) else {
            return;
        };
        live.clock.store(now, Ordering::Relaxed);
        live.conn = Some(conn.clone());
        let clock = Some(live.clock.clone());
        self.machine.attach(id, conn.peer.ip().to_string());
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id: id,
            password,
            read_only: false,
        };
        self.send(&conn, Outbound::Connected { response, clock }, None);
    }

    /// Ends a session (see `Machine::close_session`) and forgets its
    /// connection; the caller closes that.
    fn close_session(&mut self, id: i64) -> i64 {
        let zxid = self.machine.close_session(id, common::time::now_ms());
        self.drain();
        self.sessions.remove(&id);
        zxid
    }

    fn expire_sessions(&mut self) {
        let now = self.now_ms();
        let due: Vec<i64> = self.expiry.range(..=now).map(|(k, _)| *k).collect();
        for bucket in due {
            for id in self.expiry.remove(&bucket).unwrap_or_default() {
                let Some(live) = self.sessions.get(&id) else {
                    continue;
                };
                let deadline = live.clock.load(Ordering::Relaxed) + live.timeout_ms;
                if deadline > now {
                    self.schedule(id, deadline);
                } else {
                    tracing::info!(
                        session = format_args!("{id:#x}"),
                        timeout_ms = live.timeout_ms,
                        "session expired"
                    );
                    let conn = live.conn.clone();
                    self.close_session(id);
                    if let Some(conn) = conn {
                        self.send(&conn, Outbound::Close, None);
                    }
                }
            }
        }
    }

    /// Deletes containers that had children and have none left, and TTL nodes
    /// unchanged for longer than their TTL and without children.
    fn reap_containers_and_ttls(&mut self) {
        let now = common::time::now_ms();
        let mut doomed = Vec::new();
        for path in self.machine.db.tree.containers() {
            if let Some(n) = self.machine.db.tree.get(path) {
                if n.children.is_empty() && n.stat.cversion > 0 {
                    doomed.push(path.clone());
                }
            }
        }
        for path in self.machine.db.tree.ttl_nodes() {
            if let Some(n) = self.machine.db.tree.get(path) {
                if let crate::tree::Owner::Ttl(ttl) =
                    crate::tree::Owner::from_raw(n.stat.ephemeral_owner)
                {
                    if n.children.is_empty() && now > n.stat.mtime + ttl {
                        doomed.push(path.clone());
                    }
                }
            }
        }
        for path in doomed {
            tracing::debug!(path, "deleting empty container or expired TTL node");
            self.machine.delete(path, now);
            self.drain();
        }
    }

    /// Reply helper: error replies carry the current zxid, as ZooKeeper's do.
    fn reply(
        &mut self,
        conn: &ConnHandle,
        xid: i32,
        zxid: Option<i64>,
        result: Result<Response, ErrorCode>,
        received: Instant,
    ) {
        let zxid = zxid.unwrap_or(self.machine.db.last_zxid);
        self.send(conn, Outbound::Reply { xid, zxid, result }, Some(received));
    }
}
