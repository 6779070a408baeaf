//! SyncGroup: placeholder until the group coordinator lands.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use crate::kafka::context::RequestContext;

/// Answers one SyncGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let _ = (ctx, req);
    SyncGroupResponse::default()
}
