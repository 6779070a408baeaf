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

/// What one principal may do, as the authorized-operations bitfields report it; built once per
/// request, so a Metadata answer for many topics derives the principal's bindings once.
pub(crate) enum Authorized {
    /// Not asked for: every bitfield is Kafka's "not requested".
    NotRequested,
    /// A principal without grants: every operation on every resource.
    Everything,
    /// The principal's bindings: the operations of those that apply to a resource.
    Bindings(Vec<Binding>),
}

impl Authorized {
    /// `principal`'s authorized operations, or "not requested" unless `requested`.
    pub(crate) fn of(requested: bool, principal: &Principal) -> Self {
        if !requested {
            Self::NotRequested
        } else if principal.grants().is_none() {
            Self::Everything
        } else {
            Self::Bindings(bindings_of(principal))
        }
    }

    /// The operations on the resource of type `resource_type` named `name`; `every` is every
    /// operation on such a resource.
    fn on(&self, resource_type: i8, name: &str, every: i32) -> i32 {
        match self {
            Self::NotRequested => NOT_REQUESTED,
            Self::Everything => every,
            Self::Bindings(bindings) => bindings
                .iter()
                .filter(|b| applies_to(&b.resource, resource_type, name))
                .fold(0, |field, b| field | 1 << b.operation),
        }
    }

    /// The operations on `topic`.
    pub(crate) fn on_topic(&self, topic: &str) -> i32 {
        self.on(TOPIC, topic, EVERY_TOPIC_OPERATION)
    }

    /// The operations on `group`.
    pub(crate) fn on_group(&self, group: &str) -> i32 {
        self.on(GROUP, group, EVERY_GROUP_OPERATION)
    }

    /// The operations on the cluster.
    pub(crate) fn on_cluster(&self) -> i32 {
        self.on(CLUSTER, CLUSTER_NAME, EVERY_CLUSTER_OPERATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_engine::access::Grant;

    #[test]
    fn without_grants_every_operation_is_authorized_as_kafka_encodes_them() {
        let anyone = Principal::anonymous();
        let anyone_may = Authorized::of(true, &anyone);
        assert_eq!(anyone_may.on_topic("t"), 3576);
        assert_eq!(anyone_may.on_cluster(), 8096);
        assert_eq!(Authorized::of(false, &anyone).on_topic("t"), NOT_REQUESTED);
        assert_eq!(Authorized::of(false, &anyone).on_cluster(), NOT_REQUESTED);
        assert_eq!(anyone_may.on_group("g"), bits(&[READ, DESCRIBE, DELETE]));
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
        let reader_may = Authorized::of(true, &reader);
        assert_eq!(reader_may.on_topic("orders-us"), bits(&[READ, DESCRIBE]));
        assert_eq!(
            reader_may.on_topic("orders-eu"),
            bits(&[READ, WRITE, DESCRIBE])
        );
        assert_eq!(reader_may.on_topic("payments"), 0);
        assert_eq!(reader_may.on_cluster(), bits(&[IDEMPOTENT_WRITE]));
        assert_eq!(reader_may.on_group("any"), bits(&[READ, DESCRIBE]));
        let grouped = reader.with_groups(vec![TopicPattern::Prefix("billing-".to_owned())]);
        let grouped_may = Authorized::of(true, &grouped);
        assert_eq!(grouped_may.on_group("billing-1"), bits(&[READ, DESCRIBE]));
        assert_eq!(grouped_may.on_group("other"), 0);

        let admin = Principal::new(
            "admin",
            vec![grant(TopicPattern::Any, vec![Operation::Admin])],
        );
        let admin_may = Authorized::of(true, &admin);
        assert_eq!(
            admin_may.on_topic("anything"),
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
            admin_may.on_cluster(),
            bits(&[IDEMPOTENT_WRITE, CLUSTER_ACTION])
        );
        assert_eq!(admin_may.on_group("g"), bits(&[READ, DESCRIBE, DELETE]));
    }
}
