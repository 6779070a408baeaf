//! JoinGroup: placeholder until the group coordinator lands.

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use crate::kafka::context::RequestContext;

/// Answers one JoinGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let _ = (ctx, req);
    JoinGroupResponse::default()
}
