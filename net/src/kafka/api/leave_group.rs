//! LeaveGroup: placeholder until the group coordinator lands.

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::kafka::context::RequestContext;

/// Answers one LeaveGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let _ = (ctx, req);
    LeaveGroupResponse::default()
}
