//! ListGroups: every group of this node, gathered from every shard.
//!
//! v4+ filters by state, v5+ by group type (`classic`, or `consumer` for KIP-848's consumer
//! groups); both filters compare case-insensitively, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::Shard;

use crate::kafka::context::RequestContext;

/// Answers one ListGroups request.
pub(crate) async fn handle(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut listed = Vec::new();
    let per_shard = ctx
        .shard
        .run_on_every_shard(|s: Shard| async move { s.local_groups().list_groups() })
        .await;
    for routed in per_shard {
        let Ok(groups) = routed else {
            return ListGroupsResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code());
        };
        listed.extend(groups);
    }
    let groups = listed
        .into_iter()
        .filter(|g| ctx.authorize_group(&g.group_id).is_ok())
        .filter(|g| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case(g.group_type.as_str()))
        })
        .filter(|g| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(g.state.as_str()))
        })
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(StrBytes::from_static_str(g.state.as_str()))
                .with_group_type(StrBytes::from_static_str(g.group_type.as_str()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
