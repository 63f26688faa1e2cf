//! Messages between connection tasks and the state machine, and the delivery
//! of replies once the state machine (and, for writes, the log) allows it.

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

/// The state machine's handle on one client connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub peer: SocketAddr,
    pub tx: mpsc::Sender<Outbound>,
    pub close: CancellationToken,
    pub stats: Arc<ConnStats>,
}

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
    fn deliver(self) {
        for d in self.items {
            if let (Some(t), Some(stats)) = (d.received, &self.stats) {
                stats.record_latency(t.elapsed());
            }
            match d.conn.tx.try_send(d.msg) {
                Ok(()) => {
                    d.conn.stats.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(stats) = &self.stats {
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // A client that does not read its replies is cut off rather
                    // than allowed to grow our memory.
                    tracing::warn!(conn = d.conn.id, peer = %d.conn.peer, "client is not reading its replies; closing the connection");
                    d.conn.close.cancel();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}
