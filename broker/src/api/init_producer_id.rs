//! InitProducerId for idempotent producers: a producer id unique in the
//! cluster (from a block claimed in the coordinator) and epoch 0. The Java
//! client and kafka-python 3 enable idempotence by default and cannot send
//! without it. Transactions are not offered.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::Broker;

pub async fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // Kafka gives every non-transactional init a fresh id with epoch 0,
    // including the epoch-bump form (KIP-360) that passes the old id.
    match broker.next_producer_id().await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "no producer id available");
            resp.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
