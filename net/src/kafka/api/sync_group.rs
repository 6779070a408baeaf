//! SyncGroup: the leader hands in everyone's assignment; each member gets its own.
//!
//! Routed to the group's coordinator shard, where a follower's request waits until the leader's
//! arrives. v5 carries the protocol type and name both ways.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::{self, SyncRequest};

use crate::kafka::context::RequestContext;

/// Answers one SyncGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let sync = SyncRequest {
        group_id: req.group_id.0.as_str().to_owned(),
        generation: req.generation_id,
        member_id: req.member_id.as_str().to_owned(),
        group_instance_id: req.group_instance_id.map(|s| s.as_str().to_owned()),
        protocol_type: req.protocol_type.map(|s| s.as_str().to_owned()),
        protocol_name: req.protocol_name.map(|s| s.as_str().to_owned()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.as_str().to_owned(), a.assignment))
            .collect(),
    };
    let group_id = sync.group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |_, groups| async move {
        groups.sync(sync).await
    })
    .await;
    match routed {
        Ok(Ok(synced)) => SyncGroupResponse::default()
            .with_protocol_type(Some(StrBytes::from_string(synced.protocol_type)))
            .with_protocol_name(Some(StrBytes::from_string(synced.protocol_name)))
            .with_assignment(synced.assignment),
        Ok(Err(e)) => SyncGroupResponse::default().with_error_code(e.kafka_code()),
        Err(_) => SyncGroupResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
