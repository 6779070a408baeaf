//! DeleteGroups: removes groups that have no members, with their committed offsets.
//!
//! Each group is deleted on its coordinator shard, which writes a tombstone for every offset
//! the group committed; a group with members is refused NON_EMPTY_GROUP.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use spindle_engine::group::{self, GroupError};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;

/// Answers one DeleteGroups request.
pub(crate) async fn handle(ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in req.groups_names {
        let id = group_id.0.as_str().to_owned();
        let error_code = if id.is_empty() {
            GroupError::InvalidGroupId.kafka_code()
        } else if !ctx.principal.allows_everywhere(Operation::Admin) {
            // Grants name topics, not groups: deleting a group takes admin on every topic.
            ResponseError::GroupAuthorizationFailed.code()
        } else if let Err(code) = ctx.authorize_group(&id) {
            code
        } else {
            let routed =
                group::on_coordinator(&ctx.shard, &id.clone(), move |shard, groups| async move {
                    groups.delete_groups(&shard, &[id]).await
                })
                .await;
            match routed {
                Ok(deleted) => deleted
                    .first()
                    .and_then(|(_, r)| r.as_ref().err())
                    .map_or(0, GroupError::kafka_code),
                Err(_) => ResponseError::CoordinatorNotAvailable.code(),
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error_code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
