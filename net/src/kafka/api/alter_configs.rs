//! AlterConfigs: replaces a topic's whole configuration (keys not given return to their
//! defaults, as in Kafka). Only topic resources can be altered.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::config_resource::{self, Change};
use crate::kafka::context::RequestContext;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one AlterConfigs request.
pub(crate) async fn handle(ctx: &RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for resource in req.resources.into_iter().take(MAX_ADMIN_RESOURCES) {
        let changes: Vec<Change<'_>> = resource
            .configs
            .iter()
            .map(|c| Change::of(c.name.as_str(), c.value.as_deref()))
            .collect();
        let defaults = &ctx.config.topic_defaults;
        let outcome = config_resource::alter(
            ctx,
            resource.resource_type,
            resource.resource_name.as_str(),
            |_current| config_resource::apply(defaults, defaults, &changes),
            req.validate_only,
        )
        .await;
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
    AlterConfigsResponse::default().with_responses(responses)
}
