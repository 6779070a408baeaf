//! InitProducerId: a producer id and epoch. An idempotent producer gets a fresh id from the
//! engine; a transactional one gets its transactional id's id and a new epoch from the id's
//! coordinator (`spindle_engine::txn`), which fences older instances of the producer and
//! aborts their open transaction.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use spindle_engine::txn;

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
    let allocated = match req.transactional_id {
        Some(id) => {
            let id = id.0.as_str().to_owned();
            if let Err(code) = ctx.authorize_transactional_id(&id) {
                return failed.with_error_code(code);
            }
            let timeout_ms = u64::try_from(req.transaction_timeout_ms).unwrap_or(0);
            txn::on_coordinator(&ctx.shard, &id.clone(), move |shard, txns| async move {
                txns.init_producer(&shard, &id, timeout_ms).await
            })
            .await
            .and_then(|outcome| outcome)
        }
        // A producer that asks to keep its id after an error (KIP-360) gets a new one: the
        // engine fences nothing by id, and a new id with epoch 0 is always valid.
        None => ctx.shard.init_producer_id().await,
    };
    match allocated {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => {
            let code = error_code::code_of(&e);
            if code == ResponseError::ProducerFenced.code() && ctx.api_version < 4 {
                return failed.with_error_code(ResponseError::InvalidProducerEpoch.code());
            }
            if !matches!(e, spindle_engine::EngineError::Transaction(_)) {
                tracing::warn!(peer = %ctx.peer, error = %e, "cannot allocate a producer id");
            }
            failed.with_error_code(code)
        }
    }
}
