//! DescribeCluster: this node, the only broker and its own controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::acl::Authorized;
use crate::kafka::context::RequestContext;

/// Answers one DescribeCluster request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(ctx.node_id);
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.config.cluster_id.clone()))
        .with_controller_id(node)
        .with_cluster_authorized_operations(
            Authorized::of(req.include_cluster_authorized_operations, &ctx.principal).on_cluster(),
        )
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(StrBytes::from_string(ctx.advertised_host.clone()))
            .with_port(ctx.advertised_port)]);
    // v1+ echoes the endpoint type asked for (1 brokers, 2 controllers); this node is both.
    if ctx.api_version >= 1 {
        response.with_endpoint_type(req.endpoint_type)
    } else {
        response
    }
}
