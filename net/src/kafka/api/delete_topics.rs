//! DeleteTopics: topics deleted by name, or from v6 by topic id (an id no topic has is answered
//! UNKNOWN_TOPIC_ID; one the principal may not delete, without the topic's name).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one DeleteTopics request.
pub(crate) async fn handle(ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v6 names topics in `topics` (by name or by id), earlier versions in `topic_names`.
    let named: Vec<(Option<TopicName>, Uuid)> = if ctx.api_version >= 6 {
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.or_else(|| {
                    let name = ctx.shard.topic_name(t.topic_id.as_u128())?;
                    Some(TopicName(StrBytes::from_string(name)))
                });
                (name, t.topic_id)
            })
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|name| (Some(name), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(named.len());
    for (i, (name, topic_id)) in named.into_iter().enumerate() {
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(topic_id);
        let Some(name) = name else {
            responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        if i >= MAX_ADMIN_RESOURCES {
            responses.push(result.with_error_code(ResponseError::PolicyViolation.code()));
            continue;
        }
        if let Err((code, reason)) = ctx.authorize_explained(Operation::Admin, name.0.as_str()) {
            // A topic asked for by id keeps its name from a principal that may not delete it.
            let refused = if topic_id.is_nil() {
                result.with_error_message(Some(StrBytes::from_string(reason)))
            } else {
                result.with_name(None)
            };
            responses.push(refused.with_error_code(code));
            continue;
        }
        let result = match ctx.shard.delete_topic(name.0.as_str()).await {
            Ok(()) => {
                tracing::info!(topic = %name.0.as_str(), "deleted topic");
                result
            }
            Err(e) => result
                .with_error_code(error_code::code_of(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        };
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
