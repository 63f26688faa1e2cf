//! FindCoordinator: the broker that coordinates a group (derived from the
//! live brokers, `group::coordinator_for`), for one key (v0-v3) or a batch
//! (v4+). Transactions are not offered, so transaction keys get
//! COORDINATOR_NOT_AVAILABLE.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use super::RequestContext;
use crate::group::coordinator_for;

const GROUP: i8 = 0;

/// (node, host, port) or an error code with its message.
fn locate(
    broker: &Broker,
    ctx: &RequestContext,
    key: &str,
    key_type: i8,
) -> Result<(i32, String, i32), ResponseError> {
    if key_type != GROUP {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    if key.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    let img = broker.replicas.image();
    let node = coordinator_for(key, &img).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let e = img
        .endpoint(node, &ctx.listener)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok((node, e.host.clone(), e.port))
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match locate(broker, ctx, key.as_str(), req.key_type) {
                    Ok((node, host, port)) => c
                        .with_node_id(BrokerId(node))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port),
                    Err(e) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let mut resp = FindCoordinatorResponse::default();
    match locate(broker, ctx, req.key.as_str(), req.key_type) {
        Ok((node, host, port)) => {
            resp.node_id = BrokerId(node);
            resp.host = StrBytes::from_string(host);
            resp.port = port;
        }
        Err(e) => {
            resp.error_code = e.code();
            resp.node_id = BrokerId(-1);
            resp.port = -1;
            if version >= 1 {
                resp.error_message = Some(StrBytes::from_string(e.to_string()));
            }
        }
    }
    resp
}
