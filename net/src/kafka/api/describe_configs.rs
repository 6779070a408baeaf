//! DescribeConfigs: a topic's every key (defaults marked as such), or a node's settings: its
//! identity and limits, and the defaults new topics get under Kafka's broker names
//! (`log.retention.ms` for `retention.ms`, ...), which tools and UIs read to show what a topic
//! without an override gets.

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

/// Kafka's broker key for each topic key whose default the node sets.
const BROKER_NAMES_OF_TOPIC_KEYS: [(&str, &str); 11] = [
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("cleanup.policy", "log.cleanup.policy"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
];

/// The listener's security protocol, as Kafka names it in `advertised.listeners`.
fn security_protocol(ctx: &RequestContext) -> &'static str {
    match (ctx.config.tls.is_some(), ctx.config.sasl.is_some()) {
        (false, false) => "PLAINTEXT",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

fn broker_entries(ctx: &RequestContext) -> Vec<DescribeConfigsResourceResult> {
    let config = &ctx.config;
    let defaults = config.topic_defaults.entries();
    let topic_defaults = BROKER_NAMES_OF_TOPIC_KEYS.iter().filter_map(|(key, name)| {
        let (_, value) = defaults.iter().find(|(k, _)| k == key)?;
        Some(entry(
            name,
            value.clone(),
            SOURCE_STATIC_BROKER,
            topic_key_type(key),
            true,
        ))
    });
    // One node, no replicas: what Kafka's replication keys would say of it.
    let single_node = [
        "default.replication.factor",
        "min.insync.replicas",
        "offsets.topic.replication.factor",
    ]
    .map(|name| entry(name, "1".to_owned(), SOURCE_DEFAULT, TYPE_INT, true));
    let static_broker = |name, value: String, config_type| {
        entry(name, value, SOURCE_STATIC_BROKER, config_type, true)
    };
    let listener = format!(
        "{}://{}:{}",
        security_protocol(ctx),
        config.advertised_host,
        config.advertised_port
    );
    let mut entries = vec![
        static_broker("broker.id", config.node_id.to_string(), TYPE_INT),
        static_broker("advertised.listeners", listener, TYPE_STRING),
        static_broker(
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
        ),
        static_broker(
            "num.partitions",
            config.default_partitions.to_string(),
            TYPE_INT,
        ),
        static_broker(
            "fetch.max.bytes",
            config.fetch_max_bytes.to_string(),
            TYPE_INT,
        ),
        static_broker(
            "socket.request.max.bytes",
            config.max_frame_bytes.to_string(),
            TYPE_INT,
        ),
        static_broker(
            "connections.max.idle.ms",
            config.connections_max_idle_ms.to_string(),
            TYPE_LONG,
        ),
        entry(
            "compression.type",
            "producer".to_owned(),
            SOURCE_DEFAULT,
            TYPE_STRING,
            true,
        ),
    ];
    entries.extend(topic_defaults);
    entries.extend(single_node);
    entries
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
