//! FindCoordinator: which node coordinates a group or a transactional id.
//!
//! A Spindle node coordinates every group and transactional id itself (inside the node, each has
//! a coordinator shard, which the group and transaction APIs route to), so the answer is always
//! this node. v4+ asks for many keys at once.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::context::{RequestContext, GROUP_REFUSED};

/// `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Answers one FindCoordinator request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if ctx.api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| coordinator(ctx, req.key_type, key))
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinator(ctx, req.key_type, req.key);
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if ctx.api_version >= 1 {
        response.error_message = c.error_message;
    }
    response
}

fn coordinator(ctx: &RequestContext, key_type: i8, key: StrBytes) -> Coordinator {
    let refuse = |error: ResponseError, message: &'static str| {
        Coordinator::default()
            .with_key(key.clone())
            .with_node_id(BrokerId(-1))
            .with_host(StrBytes::new())
            .with_port(-1)
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_static_str(message)))
    };
    match key_type {
        KEY_TYPE_TRANSACTION if ctx.authorize_transactional_id(key.as_str()).is_err() => refuse(
            ResponseError::TransactionalIdAuthorizationFailed,
            "the principal may not use this transactional id",
        ),
        KEY_TYPE_GROUP if ctx.authorize_group(key.as_str()).is_err() => {
            refuse(ResponseError::GroupAuthorizationFailed, GROUP_REFUSED)
        }
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(ctx.node_id))
            .with_host(StrBytes::from_string(ctx.advertised_host.clone()))
            .with_port(ctx.advertised_port),
        _ => refuse(
            ResponseError::InvalidRequest,
            "unknown coordinator key type",
        ),
    }
}
