//! DeleteGroups: placeholder until the group coordinator lands.

use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::kafka::context::RequestContext;

/// Answers one DeleteGroups request.
pub(crate) async fn handle(ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let _ = (ctx, req);
    DeleteGroupsResponse::default()
}
