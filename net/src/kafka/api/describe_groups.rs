//! DescribeGroups: each group's state, protocol and members (with client id, host, metadata and
//! assignment), read on the group's coordinator shard.
//!
//! A group that does not exist is described as `Dead` (v0–v5) or answered GROUP_ID_NOT_FOUND
//! (v6+), as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::{self, GroupDescription, GroupState};

use crate::kafka::acl::Authorized;
use crate::kafka::context::RequestContext;

/// Answers one DescribeGroups request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // The field exists from v3.
    let operations = Authorized::of(
        ctx.api_version >= 3 && req.include_authorized_operations,
        &ctx.principal,
    );
    let mut described = Vec::with_capacity(req.groups.len());
    for group_id in req.groups {
        described.push(describe(ctx, group_id, &operations).await);
    }
    DescribeGroupsResponse::default().with_groups(described)
}

/// One group, with its bitfield from the principal's `operations`.
async fn describe(
    ctx: &RequestContext,
    group_id: GroupId,
    operations: &Authorized,
) -> DescribedGroup {
    let refused = |code: i16| {
        DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_error_code(code)
            .with_group_state(StrBytes::from_static_str(GroupState::Dead.as_str()))
    };
    if group_id.0.is_empty() {
        return refused(ResponseError::InvalidGroupId.code());
    }
    if let Err(code) = ctx.authorize_group(group_id.0.as_str()) {
        return refused(code);
    }
    let id = group_id.0.as_str().to_owned();
    let routed = group::on_coordinator(
        &ctx.shard,
        group_id.0.as_str(),
        move |_, groups| async move { groups.describe_group(&id) },
    )
    .await;
    let Ok(d) = routed else {
        return refused(ResponseError::CoordinatorNotAvailable.code());
    };
    if d.state == GroupState::Dead && ctx.api_version >= 6 {
        return refused(ResponseError::GroupIdNotFound.code());
    }
    let operations = operations.on_group(group_id.0.as_str());
    described(group_id, d).with_authorized_operations(operations)
}

fn described(group_id: GroupId, d: GroupDescription) -> DescribedGroup {
    let members = d
        .members
        .into_iter()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                .with_client_id(StrBytes::from_string(m.client_id))
                .with_client_host(StrBytes::from_string(m.client_host))
                .with_member_metadata(m.metadata)
                .with_member_assignment(m.assignment)
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(group_id)
        .with_group_state(StrBytes::from_static_str(d.state.as_str()))
        .with_protocol_type(StrBytes::from_string(d.protocol_type))
        .with_protocol_data(StrBytes::from_string(d.protocol))
        .with_members(members)
}
