//! JoinGroup: a member (re)joins a group and waits for the rebalance to complete.
//!
//! Routed to the group's coordinator shard. Before v1 there is no rebalance timeout; the
//! session timeout stands in, as in Kafka. From v4 a first join without a member id is answered
//! MEMBER_ID_REQUIRED with an id to rejoin with (KIP-394).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::{self, GroupError, JoinRequest, Protocol};

use crate::kafka::context::RequestContext;

/// Answers one JoinGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.api_version;
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return refused(version, code).with_member_id(req.member_id);
    }
    let session_timeout = millis(req.session_timeout_ms);
    let rebalance_timeout = if version >= 1 && req.rebalance_timeout_ms >= 0 {
        millis(req.rebalance_timeout_ms)
    } else {
        session_timeout
    };
    let join = JoinRequest {
        group_id: req.group_id.0.as_str().to_owned(),
        member_id: req.member_id.as_str().to_owned(),
        group_instance_id: req.group_instance_id.map(|s| s.as_str().to_owned()),
        require_known_member_id: version >= 4,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout,
        rebalance_timeout,
        protocol_type: req.protocol_type.as_str().to_owned(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.as_str().to_owned(),
                metadata: p.metadata,
            })
            .collect(),
    };
    let group_id = join.group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |shard, groups| async move {
        groups.join(&shard, join).await
    })
    .await;
    match routed {
        Ok(Ok(joined)) => JoinGroupResponse::default()
            .with_generation_id(joined.generation)
            .with_protocol_type(Some(StrBytes::from_string(joined.protocol_type)))
            .with_protocol_name(Some(StrBytes::from_string(joined.protocol_name)))
            .with_leader(StrBytes::from_string(joined.leader))
            .with_member_id(StrBytes::from_string(joined.member_id))
            // Only v9 can say so; an older leader assigns again and SyncGroup, the group being
            // stable, answers everyone with the assignment they already had.
            .with_skip_assignment(joined.skip_assignment && version >= 9)
            .with_members(
                joined
                    .members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Ok(Err(GroupError::MemberIdRequired(member_id))) => refused(
            version,
            GroupError::MemberIdRequired(String::new()).kafka_code(),
        )
        .with_member_id(StrBytes::from_string(member_id)),
        Ok(Err(e)) => refused(version, e.kafka_code()).with_member_id(req.member_id),
        Err(_) => refused(version, ResponseError::CoordinatorNotAvailable.code())
            .with_member_id(req.member_id),
    }
}

/// An error answer. Before v7 the protocol name is a non-nullable string.
fn refused(version: i16, error_code: i16) -> JoinGroupResponse {
    let protocol_name = if version >= 7 {
        None
    } else {
        Some(StrBytes::new())
    };
    JoinGroupResponse::default()
        .with_error_code(error_code)
        .with_generation_id(-1)
        .with_protocol_name(protocol_name)
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
