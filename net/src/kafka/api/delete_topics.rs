//! DeleteTopics: topics deleted by name. Spindle assigns no topic ids, so a topic named only by
//! id (v6) is answered UNKNOWN_TOPIC_ID.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one DeleteTopics request.
pub(crate) async fn handle(ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v6 names topics in `topics`, earlier versions in `topic_names`.
    let named: Vec<Option<TopicName>> = if ctx.api_version >= 6 {
        req.topics.into_iter().map(|t| t.name).collect()
    } else {
        req.topic_names.into_iter().map(Some).collect()
    };
    let mut responses = Vec::with_capacity(named.len());
    for (i, name) in named.into_iter().enumerate() {
        let result = DeletableTopicResult::default().with_name(name.clone());
        let Some(name) = name else {
            responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        if i >= MAX_ADMIN_RESOURCES {
            responses.push(result.with_error_code(ResponseError::PolicyViolation.code()));
            continue;
        }
        if let Err((code, reason)) = ctx.authorize_explained(Operation::Admin, name.0.as_str()) {
            responses.push(
                result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(reason))),
            );
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
