//! CreatePartitions: raises a topic's partition count; `validate_only` checks without changing.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one CreatePartitions request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for (i, topic) in req.topics.into_iter().enumerate() {
        let name = topic.name.0.as_str();
        let refusal = if i >= MAX_ADMIN_RESOURCES {
            Some((
                ResponseError::PolicyViolation.code(),
                "too many topics in one request".to_owned(),
            ))
        } else if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Some((
                ResponseError::InvalidRequest.code(),
                "manual replica assignment is not supported".to_owned(),
            ))
        } else {
            raise(ctx, name, topic.count, req.validate_only).await.err()
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match refusal {
            None => result,
            Some((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn raise(
    ctx: &RequestContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    ctx.authorize_explained(Operation::Admin, name)?;
    let Some(info) = ctx.shard.topic(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("unknown topic {name:?}"),
        ));
    };
    let total = u32::try_from(count)
        .ok()
        .filter(|&n| n > info.partitions)
        .ok_or_else(|| {
            (
                ResponseError::InvalidPartitions.code(),
                format!(
                    "topic {name:?} has {} partitions; the new count {count} must be larger",
                    info.partitions
                ),
            )
        })?;
    if validate_only {
        return Ok(());
    }
    ctx.shard
        .create_partitions(name, total)
        .await
        .map_err(|e| (error_code::code_of(&e), e.to_string()))?;
    tracing::info!(topic = %name, partitions = total, "added partitions");
    Ok(())
}
