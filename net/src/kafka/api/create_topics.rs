//! CreateTopics: each topic created with the server's defaults overridden by the configs given,
//! every config validated by the engine; `validate_only` checks without creating.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::{EngineError, TopicConfig};
use uuid::Uuid;

use crate::kafka::config_resource::{apply, Change};
use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::count_to_wire;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Kafka's config source for a setting given for the topic.
const SOURCE_TOPIC: i8 = 1;
/// Kafka's config source for a default.
const SOURCE_DEFAULT: i8 = 5;

/// Answers one CreateTopics request.
pub(crate) async fn handle(ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for (i, topic) in req.topics.into_iter().enumerate() {
        let result = if i >= MAX_ADMIN_RESOURCES {
            refuse(
                &topic,
                ResponseError::PolicyViolation.code(),
                "too many topics in one request",
            )
        } else {
            create(ctx, topic, req.validate_only).await
        };
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create(
    ctx: &RequestContext,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    if let Err((code, reason)) = ctx.authorize_explained(Operation::Admin, topic.name.0.as_str()) {
        return refuse(&topic, code, &reason);
    }
    if !matches!(topic.replication_factor, -1 | 1) {
        let reason = format!(
            "replication factor {} is not available: this node is the only broker",
            topic.replication_factor
        );
        return refuse(
            &topic,
            ResponseError::InvalidReplicationFactor.code(),
            &reason,
        );
    }
    if !topic.assignments.is_empty() {
        return refuse(
            &topic,
            ResponseError::InvalidRequest.code(),
            "manual replica assignment is not supported",
        );
    }
    let partitions = match topic.num_partitions {
        -1 => ctx.config.default_partitions,
        n => match u32::try_from(n) {
            Ok(n) if n > 0 => n,
            _ => {
                let reason = format!("partition count {n} must be at least 1");
                return refuse(&topic, ResponseError::InvalidPartitions.code(), &reason);
            }
        },
    };
    let changes: Vec<Change<'_>> = topic
        .configs
        .iter()
        .map(|c| Change::of(c.name.as_str(), c.value.as_deref()))
        .collect();
    let defaults = &ctx.config.topic_defaults;
    let config = match apply(defaults, defaults, &changes) {
        Ok(config) => config,
        Err(e) => return refuse_engine(&topic, &e),
    };
    let given: Vec<&str> = topic.configs.iter().map(|c| c.name.as_str()).collect();
    // Nil for `validate_only`, as in Kafka: no topic, no id.
    let mut topic_id = Uuid::nil();
    if !validate_only {
        match ctx
            .shard
            .create_topic(topic.name.0.as_str(), partitions, config.clone())
            .await
        {
            Ok(info) => topic_id = Uuid::from_u128(info.topic_id),
            Err(e) => return refuse_engine(&topic, &e),
        }
        tracing::info!(topic = %topic.name.0.as_str(), partitions, "created topic");
    }
    CreatableTopicResult::default()
        .with_name(topic.name)
        .with_topic_id(topic_id)
        .with_num_partitions(count_to_wire(partitions))
        .with_replication_factor(1)
        .with_configs(Some(described(&config, &given)))
}

/// The topic's configuration as CreateTopics v5+ reports it.
fn described(config: &TopicConfig, given: &[&str]) -> Vec<CreatableTopicConfigs> {
    config
        .entries()
        .into_iter()
        .map(|(key, value)| {
            let source = if given.contains(&key) {
                SOURCE_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect()
}

fn refuse_engine(topic: &CreatableTopic, e: &EngineError) -> CreatableTopicResult {
    refuse(topic, error_code::code_of(e), &e.to_string())
}

fn refuse(topic: &CreatableTopic, code: i16, reason: &str) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(reason.to_owned())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}
