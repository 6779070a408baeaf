//! DescribeAcls, CreateAcls and DeleteAcls: the grants of `[[grpc.auth.tokens]]` shown as Kafka
//! ACL bindings, so `kafka-acls.sh --list` and admin clients' `describe_acls` tell who may do
//! what. The grants are set in the configuration file, so CreateAcls and DeleteAcls are refused
//! with a message saying so.
//!
//! The bindings are those of `kafka::acl` (its module docs say which).
//!
//! Without principals configured there is nothing to describe: as on a Kafka broker without an
//! authorizer, every request is answered SECURITY_DISABLED.

use std::collections::BTreeMap;

use crate::kafka::acl::{self, bindings_of, Binding, Resource, ALLOW, ANY, ANY_HOST, MATCH};
use crate::kafka::context::RequestContext;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// What a DescribeAcls (or DeleteAcls) filter asks for.
struct Filter<'a> {
    resource_type: i8,
    name: Option<&'a str>,
    pattern_type: i8,
    principal: Option<&'a str>,
    host: Option<&'a str>,
    operation: i8,
    permission: i8,
}

impl Filter<'_> {
    /// Kafka's `AclBindingFilter.matches`.
    fn matches(&self, b: &Binding) -> bool {
        let (resource_type, name, pattern_type) = (&b.resource.0, &b.resource.1, &b.resource.2);
        let resource = match (self.pattern_type, self.name) {
            (ANY, None) => true,
            (ANY, Some(wanted)) => name == wanted,
            // Bindings that apply to the resource named.
            (MATCH, Some(wanted)) => acl::applies_to(&b.resource, *resource_type, wanted),
            (MATCH, None) => true,
            (pattern, wanted) => pattern == *pattern_type && wanted.is_none_or(|w| name == w),
        };
        (self.resource_type == ANY || self.resource_type == *resource_type)
            && resource
            && self.principal.is_none_or(|p| p == b.principal)
            && self.host.is_none_or(|h| h == ANY_HOST)
            && (self.operation == ANY || self.operation == b.operation)
            && (self.permission == ANY || self.permission == ALLOW)
    }
}

/// Every binding of the configured principals, in order, or `None` without principals.
fn bindings(ctx: &RequestContext) -> Option<Vec<Binding>> {
    let credentials = ctx.config.credentials()?;
    let mut all = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (_, principal) in credentials.entries() {
        if seen.insert(principal.name().to_owned()) {
            all.extend(bindings_of(principal));
        }
    }
    all.sort();
    all.dedup();
    Some(all)
}

fn no_authorizer() -> (i16, StrBytes) {
    (
        ResponseError::SecurityDisabled.code(),
        StrBytes::from_static_str("no principals are configured: every client may do everything"),
    )
}

/// Answers one DescribeAcls request. Describing needs `admin` on every topic (Kafka's DESCRIBE
/// on the cluster).
pub(crate) async fn describe(
    ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let Some(all) = bindings(ctx) else {
        let (code, message) = no_authorizer();
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(message));
    };
    if let Err((code, message)) = ctx.authorize_cluster("describe ACLs") {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let filter = Filter {
        resource_type: req.resource_type_filter,
        name: req.resource_name_filter.as_deref(),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.as_deref(),
        host: req.host_filter.as_deref(),
        operation: req.operation,
        permission: req.permission_type,
    };
    let mut by_resource: BTreeMap<Resource, Vec<AclDescription>> = BTreeMap::new();
    for binding in all.into_iter().filter(|b| filter.matches(b)) {
        by_resource.entry(binding.resource).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(binding.principal))
                .with_host(StrBytes::from_static_str(ANY_HOST))
                .with_operation(binding.operation)
                .with_permission_type(ALLOW),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

/// The refusal of a change to the grants, which live in the configuration file.
fn read_only() -> (i16, StrBytes) {
    (
        ResponseError::InvalidRequest.code(),
        StrBytes::from_static_str(
            "ACLs are the grants of [[grpc.auth.tokens]] in the configuration file; change them \
             there and restart the node",
        ),
    )
}

/// Answers one CreateAcls request: each creation refused (see the module docs).
pub(crate) async fn create(ctx: &RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let (code, message) = bindings(ctx).map_or_else(no_authorizer, |_| read_only());
    let results = req
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(Some(message.clone()))
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Answers one DeleteAcls request: each filter refused (see the module docs).
pub(crate) async fn delete(ctx: &RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let (code, message) = bindings(ctx).map_or_else(no_authorizer, |_| read_only());
    let results = req
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(code)
                .with_error_message(Some(message.clone()))
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
