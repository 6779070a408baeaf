//! LeaveGroup: members leave a group, which rebalances the rest.
//!
//! v0–v2 name one member; v3+ name a batch (by member id or `group.instance.id`), each answered
//! on its own, and the top-level code reports only what failed the whole request.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::{self, MemberIdentity};

use crate::kafka::context::RequestContext;

/// Answers one LeaveGroup request.
pub(crate) async fn handle(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let batch = ctx.api_version >= 3;
    let members: Vec<MemberIdentity> = if batch {
        req.members
            .iter()
            .map(|m| MemberIdentity {
                member_id: m.member_id.as_str().to_owned(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.as_str().to_owned()),
            })
            .collect()
    } else {
        vec![MemberIdentity {
            member_id: req.member_id.as_str().to_owned(),
            group_instance_id: None,
        }]
    };
    let group_id = req.group_id.0.as_str().to_owned();
    let leaving = members.clone();
    let routed =
        group::on_coordinator(&ctx.shard, &group_id.clone(), move |_, groups| async move {
            groups.leave(&group_id, &leaving)
        })
        .await;
    let results = match routed {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => return LeaveGroupResponse::default().with_error_code(e.kafka_code()),
        Err(_) => {
            return LeaveGroupResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    };
    if !batch {
        let error_code = results
            .first()
            .and_then(|r| r.as_ref().err())
            .map_or(0, |e| e.kafka_code());
        return LeaveGroupResponse::default().with_error_code(error_code);
    }
    let answers = members
        .into_iter()
        .zip(results)
        .map(|(m, result)| {
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                .with_error_code(result.err().map_or(0, |e| e.kafka_code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(answers)
}
