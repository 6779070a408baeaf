//! Topics: names, partitions and per-topic configuration.

use std::fmt;
use std::sync::Arc;

use spindle_log::{FsyncPolicy, Offset};

use crate::{EngineError, ShardId};

/// A partition's index within its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u32);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A topic name and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: PartitionId,
}

impl TopicPartition {
    /// Names partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition: PartitionId(partition),
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Per-topic configuration, settable at creation and at run time.
///
/// Keys use Kafka's names where Kafka has the setting (`retention.ms`, `segment.bytes`, …) and
/// `fsync.policy` (`batch`, `interval:MS`, `never`) for Spindle's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Roll the active segment once it holds this many bytes (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (`segment.ms`); `None` never.
    pub segment_ms: Option<u64>,
    /// Delete whole old segments while the partition is larger (`retention.bytes`); `None` keeps all.
    pub retention_bytes: Option<u64>,
    /// Delete whole segments whose newest record is older (`retention.ms`); `None` keeps all.
    pub retention_ms: Option<u64>,
    /// When appended data is synced to the device (`fsync.policy`).
    pub fsync: FsyncPolicy,
    /// Largest record batch accepted (`max.message.bytes`).
    pub max_message_bytes: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: None,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            fsync: FsyncPolicy::Never,
            max_message_bytes: 1 << 20 | 1 << 19,
        }
    }
}

impl TopicConfig {
    /// Every key [`TopicConfig::set`] accepts.
    pub const KEYS: &'static [&'static str] = &[
        "segment.bytes",
        "segment.ms",
        "retention.bytes",
        "retention.ms",
        "fsync.policy",
        "max.message.bytes",
        "cleanup.policy",
    ];

    /// Sets one key from its Kafka string form. `-1` means "none" for the optional limits.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] naming the key and the allowed values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EngineError> {
        let _ = (key, value);
        todo!("engine: TopicConfig::set")
    }

    /// Every key with its current value in Kafka's string form, in [`TopicConfig::KEYS`] order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        todo!("engine: TopicConfig::entries")
    }
}

/// A topic as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// The topic's configuration.
    pub config: TopicConfig,
    /// Whether the topic is internal (such as `__consumer_offsets`).
    pub internal: bool,
}

/// One partition's live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition index.
    pub partition: PartitionId,
    /// The shard that owns it.
    pub shard: ShardId,
    /// First offset still in the log.
    pub log_start_offset: Offset,
    /// Offset after the last readable record.
    pub high_watermark: Offset,
    /// Bytes on disk, all segments and indexes.
    pub size_bytes: u64,
}

/// A topic with the state of each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic.
    pub info: TopicInfo,
    /// Its partitions in index order.
    pub partitions: Vec<PartitionState>,
}
