//! OffsetFetch: placeholder until the group coordinator lands.

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use crate::kafka::context::RequestContext;

/// Answers one OffsetFetch request.
pub(crate) async fn handle(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let _ = (ctx, req);
    OffsetFetchResponse::default()
}
