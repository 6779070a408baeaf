//! IncrementalAlterConfigs: SET and DELETE (back to the default) of single keys of a topic.
//! Spindle has no list-valued topic keys, so APPEND and SUBTRACT are refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::config_resource::{self, Change};
use crate::kafka::context::RequestContext;
use crate::limits::MAX_ADMIN_RESOURCES;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Answers one IncrementalAlterConfigs request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for resource in req.resources.into_iter().take(MAX_ADMIN_RESOURCES) {
        let changes: Result<Vec<Change<'_>>, (i16, String)> = resource
            .configs
            .iter()
            .map(|c| match (c.config_operation, &c.value) {
                (OP_SET, Some(value)) => Ok(Change::Set(c.name.as_str(), value.as_str())),
                (OP_DELETE, _) => Ok(Change::Reset(c.name.as_str())),
                (OP_SET, None) => Err((
                    ResponseError::InvalidConfig.code(),
                    format!("SET of {} needs a value", c.name.as_str()),
                )),
                (op, _) => Err((
                    ResponseError::InvalidConfig.code(),
                    format!(
                        "operation {op} on {} is not supported (SET: 0, DELETE: 1)",
                        c.name.as_str()
                    ),
                )),
            })
            .collect();
        let defaults = &ctx.config.topic_defaults;
        let outcome = match changes {
            Ok(changes) => {
                config_resource::alter(
                    ctx,
                    resource.resource_type,
                    resource.resource_name.as_str(),
                    |current| config_resource::apply(current, defaults, &changes),
                    req.validate_only,
                )
                .await
            }
            Err(refusal) => Err(refusal),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
