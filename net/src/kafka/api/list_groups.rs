//! ListGroups: placeholder until the group coordinator lands.

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::kafka::context::RequestContext;

/// Answers one ListGroups request.
pub(crate) async fn handle(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let _ = (ctx, req);
    ListGroupsResponse::default()
}
