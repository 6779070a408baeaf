//! ListConfigResources (KIP-1142; at v0 KIP-714's ListClientMetricsResources): the resources
//! whose configs DescribeConfigs describes, by type, as Kafka 4.1+ admin clients'
//! `listConfigResources` (kafka-python's `list_config_resources`) ask for them.
//!
//! Topics are every topic the principal may see, internal ones too (as a Metadata listing shows
//! them), brokers this node. Groups and client-metrics subscriptions have no configs here, so
//! none is listed; nor are broker loggers, which DescribeConfigs does not serve. v0 lists
//! client-metrics subscriptions only: none. A type Kafka does not list configs of is refused
//! UNSUPPORTED_VERSION for the whole request, as Kafka refuses it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::config_resource::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::kafka::context::RequestContext;

/// Kafka's resource type of a broker's loggers.
const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's resource type of a client-metrics subscription (KIP-714).
const RESOURCE_CLIENT_METRICS: i8 = 16;
/// Kafka's resource type of a group (KIP-848's group configs).
const RESOURCE_GROUP: i8 = 32;

/// The types Kafka lists, in the order of an answer for all of them.
const LISTED_TYPES: [i8; 5] = [
    RESOURCE_TOPIC,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
];

/// Answers one ListConfigResources request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    let response = ListConfigResourcesResponse::default();
    if ctx.api_version == 0 {
        return response; // client-metrics subscriptions: none
    }
    if let Some(unknown) = req
        .resource_types
        .iter()
        .find(|t| !LISTED_TYPES.contains(t))
    {
        tracing::debug!(peer = %ctx.peer, resource_type = unknown, "listing a type without configs");
        return response.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    // No types named: every type.
    let wanted = |t: i8| req.resource_types.is_empty() || req.resource_types.contains(&t);
    let mut resources = Vec::new();
    if wanted(RESOURCE_TOPIC) {
        let mut topics: Vec<String> = ctx
            .shard
            .topics()
            .into_iter()
            .map(|info| info.name)
            .filter(|name| ctx.sees(name))
            .collect();
        topics.sort();
        resources.extend(
            topics
                .into_iter()
                .map(|name| listed(StrBytes::from_string(name), RESOURCE_TOPIC)),
        );
    }
    if wanted(RESOURCE_BROKER) {
        let node = StrBytes::from_string(ctx.node_id.to_string());
        resources.push(listed(node, RESOURCE_BROKER));
    }
    response.with_config_resources(resources)
}

fn listed(name: StrBytes, resource_type: i8) -> ConfigResource {
    ConfigResource::default()
        .with_resource_name(name)
        .with_resource_type(resource_type)
}
