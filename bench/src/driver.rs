//! Load driver: connects sessions, pre-creates the node set and runs timed or counted phases with K requests in flight per session.

use crate::workload::{create_path, Op, OpKind, Rng, Workload};
use anyhow::{anyhow, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError};

/// Highest latency the histograms track (larger values saturate), in microseconds.
const MAX_LATENCY_US: u64 = 120_000_000;

const CREATE_OPTIONS: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// One ZooKeeper session plus the sequence counter for the znodes it creates.
#[derive(Debug)]
pub struct Session {
    pub id: usize,
    pub client: Client,
    next_seq: u64,
}

/// Opens `count` sessions to `server` concurrently.
pub async fn connect_all(
    server: &str,
    count: usize,
    session_timeout: Duration,
) -> Result<Vec<Session>> {
    let connects = (0..count).map(|id| async move {
        let client = Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(Duration::from_secs(10))
            .with_fail_eagerly()
            .connect(server)
            .await
            .with_context(|| format!("session {id}: connecting to {server}"))?;
        Ok::<_, anyhow::Error>(Session {
            id,
            client,
            next_seq: 0,
        })
    });
    futures::future::try_join_all(connects).await
}

/// Closes every session and waits (bounded) for the server to acknowledge.
pub async fn close_all(sessions: Vec<Session>) {
    let closes = sessions.into_iter().map(|s| async move {
        let mut watcher = s.client.state_watcher();
        drop(s.client);
        let wait = async { while !watcher.changed().await.is_terminated() {} };
        let _ = tokio::time::timeout(Duration::from_secs(3), wait).await;
    });
    futures::future::join_all(closes).await;
}

/// Creates `dir` and its ancestors if missing.
pub async fn ensure_dir(client: &Client, dir: &str) -> Result<()> {
    match client.mkdir(dir, &CREATE_OPTIONS).await {
        Ok(()) | Err(ZkError::NodeExists) => Ok(()),
        Err(e) => Err(anyhow!("creating {dir}: {e}")),
    }
}

/// Creates every path of the node set (pipelined), overwriting the value of those that already exist.
pub async fn create_node_set(client: &Client, paths: &[String], value: &[u8]) -> Result<()> {
    let mut pending = futures::stream::iter(paths.iter().map(|path| async move {
        match client.create(path, value, &CREATE_OPTIONS).await {
            Ok(_) => Ok(()),
            Err(ZkError::NodeExists) => client.set_data(path, value, None).await.map(|_| ()),
            Err(e) => Err(e),
        }
        .map_err(|e| anyhow!("creating {path}: {e}"))
    }))
    .buffer_unordered(64);
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(())
}

/// When a phase stops issuing new requests.
#[derive(Clone, Debug)]
pub enum Stop {
    /// Issue until this instant, then drain what is in flight.
    At(Instant),
    /// Issue this many requests in total, shared by all sessions.
    Budget(Arc<AtomicU64>),
}

impl Stop {
    fn may_issue(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() < *deadline,
            Stop::Budget(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Everything the sessions of one phase share.
#[derive(Debug)]
pub struct Phase {
    pub workload: Workload,
    pub inflight: usize,
    pub value: Vec<u8>,
    /// Node-set paths for set/get/mix.
    pub nodes: Vec<String>,
    /// Parent of the znodes the create workload makes.
    pub create_dir: String,
}

/// What one session (or, merged, a whole phase) observed.
#[derive(Debug)]
pub struct Outcome {
    /// Latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    pub creates: u64,
    pub sets: u64,
    pub gets: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// When the last response arrived.
    pub finished: Instant,
}

impl Outcome {
    fn new() -> Result<Self> {
        Ok(Outcome {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
            creates: 0,
            sets: 0,
            gets: 0,
            errors: 0,
            first_error: None,
            finished: Instant::now(),
        })
    }

    /// Successful requests.
    pub fn ops(&self) -> u64 {
        self.creates + self.sets + self.gets
    }

    fn merge(&mut self, other: Outcome) -> Result<()> {
        self.latency_us.add(&other.latency_us)?;
        self.creates += other.creates;
        self.sets += other.sets;
        self.gets += other.gets;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.finished = self.finished.max(other.finished);
        Ok(())
    }
}

/// Runs one phase on all sessions at once until `stop`; returns the sessions and the merged outcome.
pub async fn run_phase(
    sessions: Vec<Session>,
    phase: &Arc<Phase>,
    stop: &Stop,
) -> Result<(Vec<Session>, Outcome)> {
    // Outcome::new() stamps `finished` with the phase start; merging keeps the latest.
    let mut total = Outcome::new()?;
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(run_session(s, Arc::clone(phase), stop.clone())))
        .collect();
    let mut sessions = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (session, outcome) = task.await.context("session task panicked")??;
        sessions.push(session);
        total.merge(outcome)?;
    }
    sessions.sort_by_key(|s| s.id);
    Ok((sessions, total))
}

/// Keeps `phase.inflight` requests outstanding on one session until the phase stops, then drains.
/// The session stops issuing after its first error (the run is then reported as failed).
async fn run_session(
    mut session: Session,
    phase: Arc<Phase>,
    stop: Stop,
) -> Result<(Session, Outcome)> {
    let mut out = Outcome::new()?;
    let mut rng = Rng::new(0x5EED ^ ((session.id as u64) << 32) ^ session.next_seq);
    let client = session.client.clone();
    let mut inflight = FuturesUnordered::new();
    let mut failed = false;
    loop {
        while !failed && inflight.len() < phase.inflight && stop.may_issue() {
            let op = phase.workload.next_op(&mut rng, phase.nodes.len());
            let path = match op {
                Op::Create => {
                    let p = create_path(&phase.create_dir, session.id, session.next_seq);
                    session.next_seq += 1;
                    Target::Owned(p)
                }
                Op::Set(i) | Op::Get(i) => Target::Shared(&phase.nodes[i]),
            };
            inflight.push(execute(&client, op.kind(), path, &phase.value));
        }
        let Some((kind, latency, result)) = inflight.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                out.latency_us
                    .saturating_record(latency.as_micros().try_into().unwrap_or(u64::MAX));
                match kind {
                    OpKind::Create => out.creates += 1,
                    OpKind::Set => out.sets += 1,
                    OpKind::Get => out.gets += 1,
                }
            }
            Err(e) => {
                out.errors += 1;
                failed = true;
                if out.first_error.is_none() {
                    out.first_error = Some(format!("session {}: {kind:?}: {e}", session.id));
                }
            }
        }
    }
    out.finished = Instant::now();
    drop(inflight);
    Ok((session, out))
}

/// Path of a request: freshly made (create) or borrowed from the node set.
enum Target<'a> {
    Owned(String),
    Shared(&'a str),
}

impl Target<'_> {
    fn as_str(&self) -> &str {
        match self {
            Target::Owned(s) => s,
            Target::Shared(s) => s,
        }
    }
}

/// Sends one request and times it from send to response.
async fn execute(
    client: &Client,
    kind: OpKind,
    path: Target<'_>,
    value: &[u8],
) -> (OpKind, Duration, Result<(), ZkError>) {
    let path = path.as_str();
    let start = Instant::now();
    let result = match kind {
        OpKind::Create => client
            .create(path, value, &CREATE_OPTIONS)
            .await
            .map(|_| ()),
        OpKind::Set => client.set_data(path, value, None).await.map(|_| ()),
        OpKind::Get => client.get_data(path).await.map(|_| ()),
    };
    (kind, start.elapsed(), result)
}
