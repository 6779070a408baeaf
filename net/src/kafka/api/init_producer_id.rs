//! InitProducerId: a fresh idempotent producer id from the engine. Transactions are not
//! supported, so a transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;

/// Answers one InitProducerId request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return failed.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // A producer that asks to keep its id after an error (KIP-360) gets a new one: the engine
    // fences nothing by id, and a new id with epoch 0 is always valid.
    match ctx.shard.init_producer_id().await {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::warn!(peer = %ctx.peer, error = %e, "cannot allocate a producer id");
            failed.with_error_code(error_code::code_of(&e))
        }
    }
}
