//! Heartbeat: placeholder until the group coordinator lands.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::kafka::context::RequestContext;

/// Answers one Heartbeat request.
pub(crate) async fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let _ = (ctx, req);
    HeartbeatResponse::default()
}
