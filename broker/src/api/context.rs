//! What every request handler gets: the broker's shared state ([`Broker`])
//! and where the request came from ([`RequestContext`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::cluster::{AdminError, Cluster};
use crate::config::BrokerConfig;
use crate::group::GroupService;
use crate::log::LogManager;
use crate::replication::Replicas;

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

/// Where a request came from: the listener name picks the endpoints that
/// Metadata advertises back.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub listener: Arc<str>,
    pub peer: SocketAddr,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        cluster: Cluster,
        logs: Arc<LogManager>,
        replicas: Arc<Replicas>,
        groups: GroupService,
    ) -> Self {
        Broker {
            config,
            cluster,
            logs,
            replicas,
            groups,
            producer_ids: Mutex::new(0..0),
        }
    }

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
