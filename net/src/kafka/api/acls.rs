//! DescribeAcls, CreateAcls and DeleteAcls: the grants of `[[grpc.auth.tokens]]` shown as Kafka
//! ACL bindings, so `kafka-acls.sh --list` and admin clients' `describe_acls` tell who may do
//! what. The grants are set in the configuration file, so CreateAcls and DeleteAcls are refused
//! with a message saying so.
//!
//! Each principal `name` is `User:name`, allowed from any host:
//! - a grant's topic pattern is a TOPIC resource: `*` a LITERAL `*`, `prefix*` a PREFIXED
//!   `prefix`, a name a LITERAL name; `read` allows READ and DESCRIBE on it, `write` WRITE and
//!   DESCRIBE, `admin` CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS;
//! - every principal may write idempotently (CLUSTER: IDEMPOTENT_WRITE); it may use the groups
//!   its `groups` patterns cover, each a GROUP resource as topic patterns are TOPIC ones (READ,
//!   DESCRIBE), and the transactional ids its `transactional_ids` patterns cover, each a
//!   TRANSACTIONAL_ID resource (WRITE, DESCRIBE); without the key, any (`*`);
//! - `admin` on `*` also deletes the groups it may use (GROUP: DELETE) and writes transaction
//!   markers (CLUSTER: CLUSTER_ACTION).
//!
//! Without principals configured there is nothing to describe: as on a Kafka broker without an
//! authorizer, every request is answered SECURITY_DISABLED.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::access::{Operation, Principal, TopicPattern};

use crate::kafka::context::RequestContext;

// Kafka's codes for resource types, pattern types, operations and permissions.
const ANY: i8 = 1;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const IDEMPOTENT_WRITE: i8 = 12;
const ALLOW: i8 = 3;

/// The one cluster resource's name, as Kafka names it.
const CLUSTER_NAME: &str = "kafka-cluster";
/// Bindings allow every host.
const ANY_HOST: &str = "*";

/// A resource and pattern: (resource type, name, pattern type).
type Resource = (i8, String, i8);

/// One ACL binding: an allowed operation of a principal on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Binding {
    resource: Resource,
    principal: String,
    operation: i8,
}

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
            // Bindings that apply to the resource named: its literal name, the wildcard, and
            // prefixes of it.
            (MATCH, Some(wanted)) => match *pattern_type {
                LITERAL => name == wanted || name == "*",
                PREFIXED => wanted.starts_with(name.as_str()),
                _ => false,
            },
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

/// A name pattern as a Kafka resource name and pattern type.
fn resource_pattern(pattern: &TopicPattern) -> (&str, i8) {
    match pattern {
        TopicPattern::Any => ("*", LITERAL),
        TopicPattern::Prefix(prefix) => (prefix.as_str(), PREFIXED),
        TopicPattern::Exact(name) => (name.as_str(), LITERAL),
    }
}

/// Name patterns as Kafka resource names and pattern types; `None` (no key in the
/// configuration) is any name.
fn resource_patterns(patterns: Option<&[TopicPattern]>) -> Vec<(&str, i8)> {
    match patterns {
        None => vec![("*", LITERAL)],
        Some(patterns) => patterns.iter().map(resource_pattern).collect(),
    }
}

fn bindings_of(principal: &Principal) -> Vec<Binding> {
    let user = format!("User:{}", principal.name());
    let mut out = Vec::new();
    let mut allow = |resource: (i8, &str, i8), operations: &[i8]| {
        for &operation in operations {
            out.push(Binding {
                resource: (resource.0, resource.1.to_owned(), resource.2),
                principal: user.clone(),
                operation,
            });
        }
    };
    let admin = principal.allows_everywhere(Operation::Admin);
    for (name, pattern_type) in resource_patterns(principal.groups()) {
        let operations: &[i8] = if admin {
            &[READ, DESCRIBE, DELETE]
        } else {
            &[READ, DESCRIBE]
        };
        allow((GROUP, name, pattern_type), operations);
    }
    for (name, pattern_type) in resource_patterns(principal.transactional_ids()) {
        allow((TRANSACTIONAL_ID, name, pattern_type), &[WRITE, DESCRIBE]);
    }
    allow((CLUSTER, CLUSTER_NAME, LITERAL), &[IDEMPOTENT_WRITE]);
    if admin {
        allow((CLUSTER, CLUSTER_NAME, LITERAL), &[CLUSTER_ACTION]);
    }
    for grant in principal.grants().unwrap_or_default() {
        let (name, pattern_type) = resource_pattern(&grant.pattern);
        for op in &grant.ops {
            let operations: &[i8] = match op {
                Operation::Read => &[READ, DESCRIBE],
                Operation::Write => &[WRITE, DESCRIBE],
                Operation::Admin => &[
                    CREATE,
                    DELETE,
                    ALTER,
                    DESCRIBE,
                    DESCRIBE_CONFIGS,
                    ALTER_CONFIGS,
                ],
            };
            allow((TOPIC, name, pattern_type), operations);
        }
    }
    out
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
