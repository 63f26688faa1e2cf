//! DescribeCluster: the Admin client's view of brokers and controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use super::RequestContext;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let img = broker.replicas.image();
    let brokers = img
        .brokers
        .iter()
        .filter_map(|(&id, b)| {
            let e = img.endpoint(id, &ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(id))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(e.port)
                    .with_rack(b.rack.clone().map(StrBytes::from_string)),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(img.cluster_id.clone()))
        .with_controller_id(BrokerId(img.controller_id.unwrap_or(-1)))
        .with_brokers(brokers)
}
