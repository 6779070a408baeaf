//! ApiVersions: the versions of every API this server serves, straight from
//! [`crate::kafka::versions::SERVED`].

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::kafka::context::RequestContext;
use crate::kafka::versions::SERVED;

/// Answers one ApiVersions request.
pub(crate) async fn handle(ctx: &RequestContext, req: ApiVersionsRequest) -> ApiVersionsResponse {
    tracing::debug!(
        peer = %ctx.peer,
        client = %req.client_software_name.as_str(),
        version = %req.client_software_version.as_str(),
        "api versions"
    );
    ApiVersionsResponse::default().with_api_keys(served_keys())
}

/// The advertised range of every served API.
pub(crate) fn served_keys() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.advertised_min)
                .with_max_version(s.max)
        })
        .collect()
}
