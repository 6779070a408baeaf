//! Kafka topic keys Spindle accepts, keeps and describes without acting on them.
//!
//! Tools that create topics pass Kafka settings along: provisioning tools set
//! `min.insync.replicas` and `compression.type`, Kafka Streams `min.insync.replicas` on its
//! internal topics. Kafka refuses a key it does not know, and so does
//! Spindle; these it knows. Each value is checked as Kafka checks it, then kept (and persisted
//! and described) as given. None changes what Spindle does: a single node has no replicas to
//! wait for or throttle, batches are stored as the producer compressed them (Kafka's
//! `producer`), and segments are preallocated and indexed Spindle's own way.

/// What values a kept key takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A 64-bit integer at least this.
    Long(i64),
    /// `true` or `false`.
    Bool,
    /// Any text (lists of replicas, `*`).
    Text,
}

/// A kept key: its name, Kafka's default, and its values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptKey {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
}

const fn key(name: &'static str, default: &'static str, kind: Kind) -> KeptKey {
    KeptKey {
        name,
        default,
        kind,
    }
}

/// Every kept key, in the order topics describe them.
pub(crate) const KEPT_KEYS: &[KeptKey] = &[
    key(
        "compression.type",
        "producer",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
    key("min.insync.replicas", "1", Kind::Long(1)),
    key("unclean.leader.election.enable", "false", Kind::Bool),
    key("message.downconversion.enable", "true", Kind::Bool),
    key("preallocate", "false", Kind::Bool),
    key("file.delete.delay.ms", "60000", Kind::Long(0)),
    key("index.interval.bytes", "4096", Kind::Long(0)),
    key("segment.index.bytes", "10485760", Kind::Long(4)),
    key("segment.jitter.ms", "0", Kind::Long(0)),
    key("leader.replication.throttled.replicas", "", Kind::Text),
    key("follower.replication.throttled.replicas", "", Kind::Text),
];

/// The kept key named `name`.
pub(crate) fn find(name: &str) -> Option<&'static KeptKey> {
    KEPT_KEYS.iter().find(|k| k.name == name)
}

impl KeptKey {
    /// `value` as kept, or what the key allows.
    pub(crate) fn check(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        let refused = match self.kind {
            Kind::OneOf(words) if words.contains(&value) => None,
            Kind::OneOf(words) => Some(format!("one of {}", words.join(", "))),
            Kind::Long(min) if value.parse::<i64>().is_ok_and(|v| v >= min) => None,
            Kind::Long(min) => Some(format!("an integer >= {min}")),
            Kind::Bool if matches!(value, "true" | "false") => None,
            Kind::Bool => Some("true or false".to_owned()),
            Kind::Text => None,
        };
        refused.map_or_else(|| Ok(value.to_owned()), Err)
    }
}
