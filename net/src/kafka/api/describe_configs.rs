//! DescribeConfigs: a topic's every key (defaults marked as such), or a small set of broker
//! settings.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::config_resource::{default_of, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::kafka::context::RequestContext;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Kafka's config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// Kafka's config types (v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// Answers one DescribeConfigs request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .take(MAX_ADMIN_RESOURCES)
        .map(|resource| describe(ctx, resource))
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(ctx: &RequestContext, resource: DescribeConfigsResource) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let entries = match resource.resource_type {
        RESOURCE_TOPIC if !ctx.sees(resource.resource_name.as_str()) => {
            return result
                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "principal {:?} has no grant on topic {:?}",
                    ctx.principal.name(),
                    resource.resource_name.as_str()
                ))))
        }
        RESOURCE_TOPIC => match topic_entries(ctx, resource.resource_name.as_str()) {
            Some(entries) => entries,
            None => {
                return result
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "unknown topic {:?}",
                        resource.resource_name.as_str()
                    ))))
            }
        },
        RESOURCE_BROKER => broker_entries(ctx),
        other => {
            return result
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "resource type {other} is not supported (topics: 2, brokers: 4)"
                ))))
        }
    };
    let wanted = resource.configuration_keys;
    let configs = entries
        .into_iter()
        .filter(|e| {
            wanted
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name.as_str()))
        })
        .collect();
    result.with_configs(configs)
}

fn topic_entries(ctx: &RequestContext, name: &str) -> Option<Vec<DescribeConfigsResourceResult>> {
    let info = ctx.shard.topic(name)?;
    let defaults = &ctx.config.topic_defaults;
    let entries = info
        .config
        .entries()
        .into_iter()
        .map(|(key, value)| {
            let is_default = default_of(defaults, key).as_deref() == Some(value.as_str());
            let source = if is_default {
                SOURCE_DEFAULT
            } else {
                SOURCE_TOPIC
            };
            entry(key, value, source, topic_key_type(key), false)
        })
        .collect();
    Some(entries)
}

fn topic_key_type(key: &str) -> i8 {
    match key {
        "segment.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "index.interval.bytes"
        | "segment.index.bytes" => TYPE_INT,
        "segment.ms"
        | "retention.ms"
        | "retention.bytes"
        | "delete.retention.ms"
        | "min.compaction.lag.ms"
        | "max.compaction.lag.ms"
        | "file.delete.delay.ms"
        | "segment.jitter.ms"
        | "message.timestamp.difference.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.after.max.ms" => TYPE_LONG,
        "min.cleanable.dirty.ratio" => TYPE_DOUBLE,
        "unclean.leader.election.enable" | "message.downconversion.enable" | "preallocate" => {
            TYPE_BOOLEAN
        }
        "cleanup.policy"
        | "leader.replication.throttled.replicas"
        | "follower.replication.throttled.replicas" => TYPE_LIST,
        _ => TYPE_STRING,
    }
}

fn broker_entries(ctx: &RequestContext) -> Vec<DescribeConfigsResourceResult> {
    let config = &ctx.config;
    vec![
        entry(
            "broker.id",
            config.node_id.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
            true,
        ),
        entry(
            "advertised.listeners",
            format!(
                "PLAINTEXT://{}:{}",
                config.advertised_host, config.advertised_port
            ),
            SOURCE_STATIC_BROKER,
            TYPE_STRING,
            true,
        ),
        entry(
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_BOOLEAN,
            true,
        ),
        entry(
            "num.partitions",
            config.default_partitions.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
            true,
        ),
        entry(
            "fetch.max.bytes",
            config.fetch_max_bytes.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
            true,
        ),
        entry(
            "socket.request.max.bytes",
            config.max_frame_bytes.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
            true,
        ),
    ]
}

fn entry(
    key: &'static str,
    value: String,
    source: i8,
    config_type: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(key))
        .with_value(Some(StrBytes::from_string(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(config_type)
}
