//! DescribeGroups: placeholder until the group coordinator lands.

use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::kafka::context::RequestContext;

/// Answers one DescribeGroups request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let _ = (ctx, req);
    DescribeGroupsResponse::default()
}
