//! The "authorized operations" bitfields of Metadata and DescribeCluster (KIP-430).
//!
//! Spindle has no ACLs: every client may do everything. When a client asks which operations it
//! may perform, the answer is every operation that applies to the resource, as Kafka answers a
//! client that its ACLs allow everything. When it does not ask, the field is Kafka's "not
//! requested" value. Some clients (kafka-python 2.3) decode the field whenever it is present,
//! so an honest bitfield matters.

/// Kafka's value for "not requested".
pub(crate) const NOT_REQUESTED: i32 = i32::MIN;

/// Kafka's ACL operation codes that apply to topics and clusters.
const READ: u32 = 3;
const WRITE: u32 = 4;
const CREATE: u32 = 5;
const DELETE: u32 = 6;
const ALTER: u32 = 7;
const DESCRIBE: u32 = 8;
const CLUSTER_ACTION: u32 = 9;
const DESCRIBE_CONFIGS: u32 = 10;
const ALTER_CONFIGS: u32 = 11;
const IDEMPOTENT_WRITE: u32 = 12;

const fn bits(ops: &[u32]) -> i32 {
    let mut field = 0i32;
    let mut i = 0;
    while i < ops.len() {
        field |= 1 << ops[i];
        i += 1;
    }
    field
}

/// Every operation on a topic.
pub(crate) const TOPIC: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// Every operation on the cluster.
pub(crate) const CLUSTER: i32 = bits(&[
    CREATE,
    ALTER,
    DESCRIBE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
]);

/// `all` when the client asked, else [`NOT_REQUESTED`].
pub(crate) fn answer(requested: bool, all: i32) -> i32 {
    if requested {
        all
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_match_kafka() {
        assert_eq!(TOPIC, 3576);
        assert_eq!(CLUSTER, 8096);
    }
}
