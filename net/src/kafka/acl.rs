//! A principal's grants as Kafka ACL bindings, and the operations they authorize.
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
//! DescribeAcls shows the bindings (`api/acls.rs`); the "authorized operations" bitfields of
//! Metadata, DescribeTopicPartitions, DescribeCluster, DescribeGroups and ConsumerGroupDescribe
//! (KIP-430) are the operations they allow on the resource, as Kafka computes them from its
//! ACLs. Without principals configured every client may do everything, and the bitfields say
//! so, as a Kafka broker whose ACLs allow everything does. Some clients (kafka-python 2.3)
//! decode the field whenever it is present, so an honest bitfield matters.

use spindle_engine::access::{Operation, Principal, TopicPattern};

// Kafka's codes for resource types, pattern types, operations and permissions.
pub(crate) const ANY: i8 = 1;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
pub(crate) const MATCH: i8 = 2;
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
pub(crate) const ALLOW: i8 = 3;

/// The one cluster resource's name, as Kafka names it.
const CLUSTER_NAME: &str = "kafka-cluster";
/// Bindings allow every host.
pub(crate) const ANY_HOST: &str = "*";

/// A resource and pattern: (resource type, name, pattern type).
pub(crate) type Resource = (i8, String, i8);

/// One ACL binding: an allowed operation of a principal on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Binding {
    pub(crate) resource: Resource,
    pub(crate) principal: String,
    pub(crate) operation: i8,
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

/// What `admin` on a topic allows.
const TOPIC_ADMIN_OPERATIONS: [i8; 6] = [
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
];

/// The bindings of one principal's grants (see the module docs).
pub(crate) fn bindings_of(principal: &Principal) -> Vec<Binding> {
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
                Operation::Admin => &TOPIC_ADMIN_OPERATIONS,
            };
            allow((TOPIC, name, pattern_type), operations);
        }
    }
    out
}

/// Whether a binding's resource applies to the resource of type `resource_type` named `name`:
/// its literal name, the wildcard `*`, or a prefix of the name (Kafka's ACL matching).
pub(crate) fn applies_to(resource: &Resource, resource_type: i8, name: &str) -> bool {
    let (bound_type, bound_name, pattern_type) = resource;
    *bound_type == resource_type
        && match *pattern_type {
            LITERAL => bound_name == name || bound_name == "*",
            PREFIXED => name.starts_with(bound_name.as_str()),
            _ => false,
        }
}

/// Kafka's value for "not requested".
const NOT_REQUESTED: i32 = i32::MIN;

/// The bitfield of `operations`.
const fn bits(operations: &[i8]) -> i32 {
    let mut field = 0i32;
    let mut i = 0;
    while i < operations.len() {
        field |= 1 << operations[i];
        i += 1;
    }
    field
}

/// Every operation on a topic.
const EVERY_TOPIC_OPERATION: i32 = bits(&TOPIC_ADMIN_OPERATIONS) | bits(&[READ, WRITE]);

/// Every operation on the cluster.
const EVERY_CLUSTER_OPERATION: i32 = bits(&[
    CREATE,
    ALTER,
    DESCRIBE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
]);

/// Every operation on a consumer group.
const EVERY_GROUP_OPERATION: i32 = bits(&[READ, DESCRIBE, DELETE]);

/// The operations `principal` may perform on the resource of type `resource_type` named
/// `name` when `requested`, else [`NOT_REQUESTED`]: those of its bindings that apply to it, or,
/// for a principal without grants, every operation on such a resource (`every`).
fn authorized(
    requested: bool,
    principal: &Principal,
    (resource_type, name): (i8, &str),
    every: i32,
) -> i32 {
    if !requested {
        return NOT_REQUESTED;
    }
    if principal.grants().is_none() {
        return every;
    }
    bindings_of(principal)
        .iter()
        .filter(|b| applies_to(&b.resource, resource_type, name))
        .fold(0, |field, b| field | 1 << b.operation)
}

/// The topic's authorized operations for `principal` when `requested`.
pub(crate) fn on_topic(requested: bool, principal: &Principal, topic: &str) -> i32 {
    authorized(requested, principal, (TOPIC, topic), EVERY_TOPIC_OPERATION)
}

/// The group's authorized operations for `principal` when `requested`.
pub(crate) fn on_group(requested: bool, principal: &Principal, group: &str) -> i32 {
    authorized(requested, principal, (GROUP, group), EVERY_GROUP_OPERATION)
}

/// The cluster's authorized operations for `principal` when `requested`.
pub(crate) fn on_cluster(requested: bool, principal: &Principal) -> i32 {
    authorized(
        requested,
        principal,
        (CLUSTER, CLUSTER_NAME),
        EVERY_CLUSTER_OPERATION,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_engine::access::Grant;

    #[test]
    fn without_grants_every_operation_is_authorized_as_kafka_encodes_them() {
        let anyone = Principal::anonymous();
        assert_eq!(on_topic(true, &anyone, "t"), 3576);
        assert_eq!(on_cluster(true, &anyone), 8096);
        assert_eq!(on_topic(false, &anyone, "t"), NOT_REQUESTED);
        assert_eq!(on_cluster(false, &anyone), NOT_REQUESTED);
        assert_eq!(
            on_group(true, &anyone, "g"),
            bits(&[READ, DESCRIBE, DELETE])
        );
    }

    #[test]
    fn a_principal_is_authorized_what_its_grants_allow_on_the_resource() {
        let grant = |pattern, ops| Grant { pattern, ops };
        let reader = Principal::new(
            "reader",
            vec![
                grant(
                    TopicPattern::Prefix("orders-".to_owned()),
                    vec![Operation::Read],
                ),
                grant(
                    TopicPattern::Exact("orders-eu".to_owned()),
                    vec![Operation::Write],
                ),
            ],
        );
        assert_eq!(
            on_topic(true, &reader, "orders-us"),
            bits(&[READ, DESCRIBE])
        );
        assert_eq!(
            on_topic(true, &reader, "orders-eu"),
            bits(&[READ, WRITE, DESCRIBE])
        );
        assert_eq!(on_topic(true, &reader, "payments"), 0);
        assert_eq!(on_cluster(true, &reader), bits(&[IDEMPOTENT_WRITE]));
        assert_eq!(on_group(true, &reader, "any"), bits(&[READ, DESCRIBE]));
        let grouped = reader.with_groups(vec![TopicPattern::Prefix("billing-".to_owned())]);
        assert_eq!(
            on_group(true, &grouped, "billing-1"),
            bits(&[READ, DESCRIBE])
        );
        assert_eq!(on_group(true, &grouped, "other"), 0);

        let admin = Principal::new(
            "admin",
            vec![grant(TopicPattern::Any, vec![Operation::Admin])],
        );
        assert_eq!(
            on_topic(true, &admin, "anything"),
            bits(&[
                CREATE,
                DELETE,
                ALTER,
                DESCRIBE,
                DESCRIBE_CONFIGS,
                ALTER_CONFIGS
            ])
        );
        assert_eq!(
            on_cluster(true, &admin),
            bits(&[IDEMPOTENT_WRITE, CLUSTER_ACTION])
        );
        assert_eq!(on_group(true, &admin, "g"), bits(&[READ, DESCRIBE, DELETE]));
    }
}
