//! `spindle acl list`: who may do what, as Kafka ACL bindings (DescribeAcls).
//!
//! Bindings that differ only in their operation are shown as one row with every operation, so
//! a principal's grant on a topic reads as one line. On Spindle the bindings are the grants of
//! the configuration file; a server without principals answers SECURITY_DISABLED, which is
//! reported as the error it is.

use std::collections::BTreeMap;

use kafka_protocol::messages::DescribeAclsRequest;
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::args::AclCommand;
use crate::admin::client::Client;
use crate::admin::error::AdminError;
use crate::admin::table::{Printer, Table};

/// The filters' "any" value of resource types, pattern types, operations and permissions.
const ANY: i8 = 1;

/// One row: a principal's operations on one resource.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct Binding {
    principal: String,
    resource_type: &'static str,
    resource_name: String,
    pattern_type: &'static str,
    host: String,
    permission: &'static str,
    operations: Vec<&'static str>,
}

/// Runs one ACL command.
///
/// # Errors
/// Connection and Kafka errors (CLUSTER_AUTHORIZATION_FAILED for a principal that may not
/// describe them, SECURITY_DISABLED for a server without principals).
pub fn run(client: &mut Client, cmd: AclCommand, out: &mut Printer) -> Result<(), AdminError> {
    match cmd {
        AclCommand::List { principal } => {
            let principal = principal.map(|p| {
                if p.contains(':') {
                    p
                } else {
                    format!("User:{p}")
                }
            });
            let bindings = list(client, principal)?;
            out.print(&bindings, |b| render(b))
        }
    }
}

fn list(client: &mut Client, principal: Option<String>) -> Result<Vec<Binding>, AdminError> {
    // The codec's defaults are empty names, which match only an empty name: `None` is any.
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(ANY)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_host_filter(None)
        .with_principal_filter(principal.map(StrBytes::from_string))
        .with_operation(ANY)
        .with_permission_type(ANY);
    let response = client.bootstrap().call(&request)?;
    AdminError::check(
        response.error_code,
        response.error_message.as_deref(),
        || "listing ACLs".to_owned(),
    )?;
    let mut rows: BTreeMap<_, Vec<&'static str>> = BTreeMap::new();
    for resource in response.resources {
        for acl in resource.acls {
            let key = (
                acl.principal.to_string(),
                resource_type(resource.resource_type),
                resource.resource_name.to_string(),
                pattern_type(resource.pattern_type),
                acl.host.to_string(),
                permission(acl.permission_type),
            );
            rows.entry(key).or_default().push(operation(acl.operation));
        }
    }
    Ok(rows
        .into_iter()
        .map(|(key, mut operations)| {
            operations.sort_unstable();
            operations.dedup();
            let (principal, resource_type, resource_name, pattern_type, host, permission) = key;
            Binding {
                principal,
                resource_type,
                resource_name,
                pattern_type,
                host,
                permission,
                operations,
            }
        })
        .collect())
}

fn render(bindings: &[Binding]) -> String {
    let mut table = Table::new(&[
        "PRINCIPAL",
        "RESOURCE",
        "NAME",
        "PATTERN",
        "HOST",
        "PERMISSION",
        "OPERATIONS",
    ]);
    for b in bindings {
        table.row(vec![
            b.principal.clone(),
            b.resource_type.to_owned(),
            b.resource_name.clone(),
            b.pattern_type.to_owned(),
            b.host.clone(),
            b.permission.to_owned(),
            b.operations.join(","),
        ]);
    }
    table.render()
}

/// Kafka's `ResourceType` names.
fn resource_type(code: i8) -> &'static str {
    match code {
        2 => "TOPIC",
        3 => "GROUP",
        4 => "CLUSTER",
        5 => "TRANSACTIONAL_ID",
        6 => "DELEGATION_TOKEN",
        7 => "USER",
        _ => "UNKNOWN",
    }
}

/// Kafka's `PatternType` names.
fn pattern_type(code: i8) -> &'static str {
    match code {
        3 => "LITERAL",
        4 => "PREFIXED",
        _ => "UNKNOWN",
    }
}

/// Kafka's `AclOperation` names.
fn operation(code: i8) -> &'static str {
    match code {
        2 => "ALL",
        3 => "READ",
        4 => "WRITE",
        5 => "CREATE",
        6 => "DELETE",
        7 => "ALTER",
        8 => "DESCRIBE",
        9 => "CLUSTER_ACTION",
        10 => "DESCRIBE_CONFIGS",
        11 => "ALTER_CONFIGS",
        12 => "IDEMPOTENT_WRITE",
        13 => "CREATE_TOKENS",
        14 => "DESCRIBE_TOKENS",
        _ => "UNKNOWN",
    }
}

/// Kafka's `AclPermissionType` names.
fn permission(code: i8) -> &'static str {
    match code {
        2 => "DENY",
        3 => "ALLOW",
        _ => "UNKNOWN",
    }
}
