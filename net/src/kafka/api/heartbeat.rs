//! Heartbeat: a member's proof of life, answered REBALANCE_IN_PROGRESS when it must rejoin.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use spindle_engine::group;

use crate::kafka::context::RequestContext;

/// Answers one Heartbeat request.
pub(crate) async fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let heartbeat = group::HeartbeatRequest {
        group_id: req.group_id.0.as_str().to_owned(),
        generation: req.generation_id,
        member_id: req.member_id.as_str().to_owned(),
        group_instance_id: req.group_instance_id.map(|s| s.as_str().to_owned()),
    };
    let group_id = heartbeat.group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |_, groups| async move {
        groups.heartbeat(&heartbeat)
    })
    .await;
    let error_code = match routed {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e.kafka_code(),
        Err(_) => ResponseError::CoordinatorNotAvailable.code(),
    };
    HeartbeatResponse::default().with_error_code(error_code)
}
