//! Messages between connection tasks and the state machine, and the delivery
//! of replies once the state machine (and, for writes, the log) allows it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::proto::records::WatcherEvent;
use crate::proto::{ConnectRequest, ConnectResponse, ErrorCode, Request, Response};
use crate::storage::syncer::Deliver;

use super::stats::ServerStats;

/// Milliseconds on the server's monotonic clock, shared between a session's
/// connection (which touches it on every packet) and the expiry sweep.
pub type SessionClock = Arc<AtomicI64>;

/// Per-connection counters for `cons`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

/// One client connection as the state machine sees it.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    /// Messages go in batches: one channel send per connection per round.
    pub tx: mpsc::Sender<Vec<Outbound>>,
    pub close: CancellationToken,
    pub stats: ConnStats,
}

/// Shared so that queueing a reply costs one reference count, not a
/// sender and token clone each.
pub type ConnHandle = Arc<Conn>;

#[derive(Debug)]
pub enum Outbound {
    /// The handshake answer; `clock` is set when a session was opened or resumed.
    Connected {
        response: ConnectResponse,
        clock: Option<SessionClock>,
    },
    Reply {
        xid: i32,
        zxid: i64,
        result: Result<Response, ErrorCode>,
    },
    Event {
        zxid: i64,
        event: WatcherEvent,
    },
    /// Flush what is queued, then close.
    Close,
}

#[derive(Debug)]
pub enum CoreMsg {
    Connect {
        conn: ConnHandle,
        request: ConnectRequest,
    },
    Request {
        session: i64,
        conn_id: u64,
        xid: i32,
        request: Request,
        received: Instant,
    },
    Disconnected {
        session: i64,
        conn_id: u64,
    },
    FourLetter {
        word: String,
        reply: oneshot::Sender<String>,
    },
}

/// One message for one connection, with the request's arrival time for the
/// latency figures.
#[derive(Debug)]
pub struct Delivery {
    pub conn: ConnHandle,
    pub msg: Outbound,
    pub received: Option<Instant>,
}

/// The deliveries of one round, released together.
#[derive(Debug, Default)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
    pub stats: Option<Arc<ServerStats>>,
}

impl Deliver for Deliveries {
    /// Groups the round's messages by connection, keeping each connection's
    /// order, and hands each connection its batch with one channel send.
    fn deliver(self) {
        let mut batches: Vec<(ConnHandle, Vec<Outbound>)> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for d in self.items {
            if let (Some(t), Some(stats)) = (d.received, &self.stats) {
                stats.record_latency(t.elapsed());
            }
            let i = *index.entry(d.conn.id).or_insert_with(|| {
                batches.push((d.conn.clone(), Vec::new()));
                batches.len() - 1
            });
            batches[i].1.push(d.msg);
        }
        for (conn, msgs) in batches {
            let n = msgs.len() as u64;
            match conn.tx.try_send(msgs) {
                Ok(()) => {
                    conn.stats.sent.fetch_add(n, Ordering::Relaxed);
                    if let Some(stats) = &self.stats {
                        stats.sent.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // A client that does not read its replies is cut off rather
                    // than allowed to grow our memory.
                    tracing::warn!(conn = conn.id, peer = %conn.peer, "client is not reading its replies; closing the connection");
                    conn.close.cancel();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}
