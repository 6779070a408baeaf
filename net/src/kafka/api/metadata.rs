//! Metadata: this node as the only broker, and every requested topic with this node leading all
//! of its partitions. Unknown topics are created when both the server and the request allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::{EngineError, TopicInfo};
use uuid::Uuid;

use crate::kafka::acl::Authorized;
use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::{count_to_wire, LEADER_EPOCH};
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one Metadata request.
pub(crate) async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    // v0 asks for every topic with an empty list; later versions with a null one.
    // From v10 a topic may be named by its id alone.
    let wanted: Option<Vec<Result<String, Uuid>>> = match req.topics {
        None => None,
        Some(topics) if topics.is_empty() && ctx.api_version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| t.name.map(|name| name.0.to_string()).ok_or(t.topic_id))
                .collect(),
        ),
    };
    // Before v4 the request cannot refuse auto-creation.
    let may_create =
        ctx.config.auto_create_topics && (ctx.api_version < 4 || req.allow_auto_topic_creation);
    // The fields exist from v8; the cluster's only until v10.
    let topic_ops = Authorized::of(
        ctx.api_version >= 8 && req.include_topic_authorized_operations,
        &ctx.principal,
    );
    let cluster_ops = Authorized::of(
        (8..=10).contains(&ctx.api_version) && req.include_cluster_authorized_operations,
        &ctx.principal,
    )
    .on_cluster();
    let topics = match wanted {
        None => ctx
            .shard
            .topics()
            .into_iter()
            .filter(|info| ctx.sees(&info.name))
            .map(|info| topic_entry(ctx, &info, &topic_ops))
            .collect(),
        Some(names) => {
            let mut entries = Vec::with_capacity(names.len());
            for (i, name) in names.into_iter().enumerate() {
                let name = match name {
                    Ok(name) => name,
                    Err(id) => {
                        entries.push(topic_by_id(ctx, id, &topic_ops));
                        continue;
                    }
                };
                // As many topics as one CreateTopics may name are created per request; the
                // rest are answered unknown, and a client retries them.
                let may_create = may_create && i < MAX_ADMIN_RESOURCES;
                entries.push(requested_topic(ctx, &name, may_create, &topic_ops).await);
            }
            entries
        }
    };
    let node = BrokerId(ctx.node_id);
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(StrBytes::from_string(ctx.advertised_host.clone()))
            .with_port(ctx.advertised_port)])
        .with_cluster_id(Some(StrBytes::from_string(ctx.config.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

/// The entry of a topic asked for by id (never created). Neither an id no topic has nor one
/// the principal may not see tells a name.
fn topic_by_id(ctx: &RequestContext, id: Uuid, topic_ops: &Authorized) -> MetadataResponseTopic {
    let unnamed = |code: i16| {
        MetadataResponseTopic::default()
            .with_error_code(code)
            .with_name(None)
            .with_topic_id(id)
    };
    let Some(name) = ctx.shard.topic_name(id.as_u128()) else {
        return unnamed(ResponseError::UnknownTopicId.code());
    };
    if !ctx.sees(&name) {
        return unnamed(ResponseError::TopicAuthorizationFailed.code());
    }
    match ctx.shard.topic(&name) {
        Some(info) => topic_entry(ctx, &info, topic_ops),
        None => unnamed(ResponseError::UnknownTopicId.code()),
    }
}

/// The entry of one named topic, creating it if allowed. A principal sees only topics it has
/// a grant on (whether the others exist is not told), and creates only with `admin` on it.
async fn requested_topic(
    ctx: &RequestContext,
    name: &str,
    may_create: bool,
    topic_ops: &Authorized,
) -> MetadataResponseTopic {
    if !ctx.sees(name) {
        return error_entry(name, ResponseError::TopicAuthorizationFailed.code());
    }
    if let Some(info) = ctx.shard.topic(name) {
        return topic_entry(ctx, &info, topic_ops);
    }
    if !may_create || !ctx.allows(Operation::Admin, name) {
        return error_entry(name, ResponseError::UnknownTopicOrPartition.code());
    }
    let created = ctx
        .shard
        .create_topic(
            name,
            ctx.config.default_partitions,
            ctx.config.topic_defaults.clone(),
        )
        .await;
    match created {
        Ok(info) => {
            tracing::info!(topic = %name, partitions = info.partitions, "auto-created topic");
            topic_entry(ctx, &info, topic_ops)
        }
        // Another request created it meanwhile.
        Err(EngineError::TopicExists(_)) => match ctx.shard.topic(name) {
            Some(info) => topic_entry(ctx, &info, topic_ops),
            None => error_entry(name, ResponseError::LeaderNotAvailable.code()),
        },
        Err(e) => error_entry(name, error_code::code_of(&e)),
    }
}

fn error_entry(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
}

/// A topic's entry, with its bitfield from the principal's `operations`.
fn topic_entry(
    ctx: &RequestContext,
    info: &TopicInfo,
    operations: &Authorized,
) -> MetadataResponseTopic {
    let node = BrokerId(ctx.node_id);
    let partitions = (0..info.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(count_to_wire(p))
                .with_leader_id(node)
                .with_leader_epoch(LEADER_EPOCH)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(info.name.clone()))))
        .with_topic_id(Uuid::from_u128(info.topic_id))
        .with_is_internal(info.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations.on_topic(&info.name))
}
