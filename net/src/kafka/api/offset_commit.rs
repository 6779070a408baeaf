//! OffsetCommit: placeholder until the group coordinator lands.

use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::kafka::context::RequestContext;

/// Answers one OffsetCommit request.
pub(crate) async fn handle(ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let _ = (ctx, req);
    OffsetCommitResponse::default()
}
