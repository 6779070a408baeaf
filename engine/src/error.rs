//! The engine's error type. Mapped to Kafka error codes or gRPC statuses only at the network
//! edge.

use spindle_log::{LogError, Offset};

/// Everything an engine operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No topic of that name.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition asked for.
        partition: u32,
    },
    /// A topic of that name already exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// The topic name is not allowed.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic {
        /// The name asked for.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A partition count that is zero, too large or (for CreatePartitions) not an increase.
    #[error("invalid partition count {count}: {reason}")]
    InvalidPartitions {
        /// The count asked for.
        count: u32,
        /// Why it is refused.
        reason: String,
    },
    /// A topic configuration key or value is refused.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why, naming the allowed values.
        reason: String,
    },
    /// The fetch offset is outside `[log_start, high_watermark]`.
    #[error("offset {requested} out of range [{log_start}, {high_watermark}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// First offset in the log.
        log_start: Offset,
        /// Offset after the last readable record.
        high_watermark: Offset,
    },
    /// An idempotent producer's batch skips sequence numbers.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// The next sequence the partition expects.
        expected: i32,
        /// The first sequence of the batch received.
        got: i32,
    },
    /// A producer epoch older than the one the partition has seen.
    #[error("producer {producer_id} epoch {epoch} is fenced")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// The stale epoch.
        epoch: i16,
    },
    /// A batch larger than the topic's `max.message.bytes`.
    #[error("batch of {bytes} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// The batch size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A record without a key sent to a compacted topic, where only keys say what to keep.
    #[error("topic {topic} is compacted (cleanup.policy={policy}): every record needs a key")]
    KeylessRecord {
        /// The topic.
        topic: String,
        /// Its cleanup policy.
        policy: &'static str,
    },
    /// A record's create time is outside the window the topic allows around the node's clock
    /// (`message.timestamp.before.max.ms`, `message.timestamp.after.max.ms`).
    #[error("timestamp {timestamp} of a record is out of range: the topic takes [{min}, {max}]")]
    InvalidTimestamp {
        /// The record's timestamp.
        timestamp: i64,
        /// The earliest timestamp taken at the time.
        min: i64,
        /// The latest timestamp taken at the time.
        max: i64,
    },
    /// The batch itself is invalid (length, magic, CRC); the log is untouched.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[source] LogError),
    /// A transactional request the transaction's state refuses.
    #[error("transaction: {0}")]
    Transaction(#[from] crate::txn::TxnError),
    /// The engine is shutting down and takes no new work.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A log operation failed (I/O, corruption).
    #[error("log error: {0}")]
    Log(#[from] LogError),
    /// Metadata or other engine file I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Starting the engine failed (executor creation, io_uring unavailable, memlock).
    #[error("engine start failed: {0}")]
    Start(String),
}
