//! FindCoordinator: placeholder until the group coordinator lands.

use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use crate::kafka::context::RequestContext;

/// Answers one FindCoordinator request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let _ = (ctx, req);
    FindCoordinatorResponse::default()
}
