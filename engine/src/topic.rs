//! Topics: names, partitions and per-topic configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use spindle_log::{FsyncPolicy, Offset};

use crate::kept_keys::{self, KEPT_KEYS};
use crate::limits::TOPIC_NAME_LEN_MAX;
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
    /// Whether old segments are deleted, compacted, or both (`cleanup.policy`).
    pub cleanup_policy: CleanupPolicy,
    /// How long compaction keeps a tombstone after its batch's max timestamp
    /// (`delete.retention.ms`).
    pub delete_retention_ms: u64,
    /// Compaction runs once the sealed bytes written since the last pass are at least this
    /// many millionths of all sealed bytes (`min.cleanable.dirty.ratio`, a decimal in Kafka's
    /// form).
    pub min_cleanable_dirty_ppm: u32,
    /// Compaction leaves records younger than this alone (`min.compaction.lag.ms`): it stops
    /// at the first sealed segment holding one.
    pub min_compaction_lag_ms: u64,
    /// A pass runs, whatever the dirty ratio, once sealed records this old wait for one
    /// (`max.compaction.lag.ms`; Kafka's default, `i64::MAX`, never forces one).
    pub max_compaction_lag_ms: u64,
    /// Whether records keep the producer's timestamps or get the append time
    /// (`message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// How far behind the node's clock a record's create time may be
    /// (`message.timestamp.before.max.ms`; `i64::MAX`, the default, is no limit). See
    /// [`TopicConfig::timestamp_window`].
    pub timestamp_before_max_ms: u64,
    /// How far ahead of the node's clock a record's create time may be
    /// (`message.timestamp.after.max.ms`; `i64::MAX`, the default, is no limit).
    pub timestamp_after_max_ms: u64,
    /// Kafka's older form of both (`message.timestamp.difference.max.ms`, deprecated since
    /// Kafka 3.6): each of the two that is unset takes this one.
    pub timestamp_difference_max_ms: u64,
    /// Kafka keys kept without effect (see `kept_keys`), those set, by name.
    pub kept: BTreeMap<&'static str, String>,
}

/// Which time a record's timestamp says (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The time the producer gave each record (`CreateTime`).
    CreateTime,
    /// The time the node appended the batch, for every record in it (`LogAppendTime`): the
    /// node sets the batch's max timestamp and its timestamp-type attribute, as Kafka does.
    LogAppendTime,
}

impl TimestampType {
    fn parse(value: &str) -> Option<TimestampType> {
        match value.trim() {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// What happens to a topic's old segments (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Retention deletes whole segments by age and size (`delete`).
    Delete,
    /// Compaction keeps the last record of each key; nothing is deleted by age or size
    /// (`compact`).
    Compact,
    /// Both (`compact,delete`).
    CompactAndDelete,
}

impl CleanupPolicy {
    /// Whether retention deletes segments.
    pub fn deletes(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Delete | CleanupPolicy::CompactAndDelete
        )
    }

    /// Whether the partitions are compacted.
    pub fn compacts(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Compact | CleanupPolicy::CompactAndDelete
        )
    }

    fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut delete = false;
        let mut compact = false;
        for part in value.split(',') {
            match part.trim() {
                "delete" => delete = true,
                "compact" => compact = true,
                _ => return None,
            }
        }
        match (compact, delete) {
            (false, true) => Some(CleanupPolicy::Delete),
            (true, false) => Some(CleanupPolicy::Compact),
            (true, true) => Some(CleanupPolicy::CompactAndDelete),
            (false, false) => None,
        }
    }

    /// The policy in Kafka's form.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactAndDelete => "compact,delete",
        }
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            // Kafka's `log.roll.hours`: a quiet partition still rolls weekly, so that retention
            // (and compaction, which leave the active segment alone) reach its old records.
            segment_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            fsync: FsyncPolicy::Never,
            max_message_bytes: 1 << 20 | 1 << 19,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            min_cleanable_dirty_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX as u64,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: NO_LIMIT_MS,
            timestamp_after_max_ms: NO_LIMIT_MS,
            timestamp_difference_max_ms: NO_LIMIT_MS,
            kept: BTreeMap::new(),
        }
    }
}

impl TopicConfig {
    /// Every key Spindle acts on; [`TopicConfig::set`] also accepts [`TopicConfig::kept_keys`].
    pub const KEYS: &'static [&'static str] = &[
        "segment.bytes",
        "segment.ms",
        "retention.bytes",
        "retention.ms",
        "fsync.policy",
        "max.message.bytes",
        "cleanup.policy",
        "delete.retention.ms",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
        "message.timestamp.type",
        "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms",
        "message.timestamp.difference.max.ms",
    ];

    /// Kafka keys accepted, kept and described without changing what Spindle does (a single
    /// node has no replicas; batches are stored as produced): `min.insync.replicas`,
    /// `compression.type`, …
    pub fn kept_keys() -> impl Iterator<Item = &'static str> {
        KEPT_KEYS.iter().map(|k| k.name)
    }

    /// Sets one key from its Kafka string form. `-1` means "none" for the optional limits.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] naming the key and the allowed values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EngineError> {
        let invalid = |reason: &str| EngineError::InvalidConfig {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match key {
            "segment.bytes" => {
                self.segment_bytes = parse_bounded(value, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)
                    .ok_or_else(|| {
                        invalid(&format!(
                            "an integer from {SEGMENT_BYTES_MIN} to {SEGMENT_BYTES_MAX}"
                        ))
                    })?;
            }
            "segment.ms" => {
                self.segment_ms = parse_optional(value, 1)
                    .ok_or_else(|| invalid("-1 (never) or an integer >= 1"))?;
            }
            "retention.bytes" => {
                self.retention_bytes = parse_optional(value, 0)
                    .ok_or_else(|| invalid("-1 (unlimited) or an integer >= 0"))?;
            }
            "retention.ms" => {
                self.retention_ms = parse_optional(value, 0)
                    .ok_or_else(|| invalid("-1 (unlimited) or an integer >= 0"))?;
            }
            "fsync.policy" => {
                self.fsync = parse_fsync(value)
                    .ok_or_else(|| invalid("batch, interval:MS (MS >= 1) or never"))?;
            }
            "max.message.bytes" => {
                let max = parse_bounded(value, 1, u64::from(MESSAGE_BYTES_MAX))
                    .ok_or_else(|| invalid(&format!("an integer from 1 to {MESSAGE_BYTES_MAX}")))?;
                self.max_message_bytes = u32::try_from(max)
                    .map_err(|_| invalid(&format!("an integer from 1 to {MESSAGE_BYTES_MAX}")))?;
            }
            "cleanup.policy" => {
                self.cleanup_policy = CleanupPolicy::parse(value)
                    .ok_or_else(|| invalid("delete, compact or compact,delete"))?;
            }
            "delete.retention.ms" => {
                self.delete_retention_ms = parse_bounded(value, 0, i64::MAX as u64)
                    .ok_or_else(|| invalid("an integer >= 0"))?;
            }
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ppm =
                    parse_ratio_ppm(value).ok_or_else(|| invalid("a decimal from 0 to 1"))?;
            }
            "min.compaction.lag.ms" => {
                self.min_compaction_lag_ms = parse_bounded(value, 0, i64::MAX as u64)
                    .ok_or_else(|| invalid("an integer >= 0"))?;
            }
            "max.compaction.lag.ms" => {
                self.max_compaction_lag_ms = parse_bounded(value, 1, i64::MAX as u64)
                    .ok_or_else(|| invalid("an integer >= 1"))?;
            }
            "message.timestamp.type" => {
                self.timestamp_type = TimestampType::parse(value)
                    .ok_or_else(|| invalid("CreateTime or LogAppendTime"))?;
            }
            "message.timestamp.before.max.ms" => {
                self.timestamp_before_max_ms = parse_bounded(value, 0, NO_LIMIT_MS)
                    .ok_or_else(|| invalid("an integer >= 0"))?;
            }
            "message.timestamp.after.max.ms" => {
                self.timestamp_after_max_ms = parse_bounded(value, 0, NO_LIMIT_MS)
                    .ok_or_else(|| invalid("an integer >= 0"))?;
            }
            "message.timestamp.difference.max.ms" => {
                self.timestamp_difference_max_ms = parse_bounded(value, 0, NO_LIMIT_MS)
                    .ok_or_else(|| invalid("an integer >= 0"))?;
            }
            other => self
                .set_kept(other, value)
                .map_err(|allowed| invalid(&allowed))?,
        }
        Ok(())
    }

    /// Sets one of the [`TopicConfig::kept_keys`].
    ///
    /// # Errors
    /// What is wrong: the allowed values, or, for a key that is not kept either, the known keys.
    fn set_kept(&mut self, key: &str, value: &str) -> Result<(), String> {
        let Some(kept) = kept_keys::find(key) else {
            return Err(format!(
                "unknown key; known keys: {}, {}",
                Self::KEYS.join(", "),
                Self::kept_keys().collect::<Vec<_>>().join(", ")
            ));
        };
        let value = kept.check(value)?;
        // Only values other than Kafka's default are held, so equal configurations compare
        // equal however they were written.
        if value == kept.default {
            self.kept.remove(kept.name);
        } else {
            self.kept.insert(kept.name, value);
        }
        Ok(())
    }

    /// Every key with its current value in Kafka's string form: [`TopicConfig::KEYS`], then
    /// [`TopicConfig::kept_keys`], in order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let optional = |v: Option<u64>| v.map_or_else(|| "-1".to_owned(), |v| v.to_string());
        let kept = KEPT_KEYS.iter().map(|k| {
            let value = self.kept.get(k.name).map_or(k.default, String::as_str);
            (k.name, value.to_owned())
        });
        let acted = [
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", optional(self.segment_ms)),
            ("retention.bytes", optional(self.retention_bytes)),
            ("retention.ms", optional(self.retention_ms)),
            ("fsync.policy", fsync_to_string(self.fsync)),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("cleanup.policy", self.cleanup_policy.as_str().to_owned()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "min.cleanable.dirty.ratio",
                (f64::from(self.min_cleanable_dirty_ppm) / 1e6).to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
            (
                "message.timestamp.type",
                self.timestamp_type.as_str().to_owned(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.after.max.ms",
                self.timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.difference.max.ms",
                self.timestamp_difference_max_ms.to_string(),
            ),
        ];
        acted.into_iter().chain(kept).collect()
    }

    /// How far behind and ahead of the node's clock, in ms, a record's create time may be, as
    /// Kafka judges it: `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms`,
    /// each taking `message.timestamp.difference.max.ms` while unset. `None` when nothing is
    /// limited, or when the topic stamps records with the append time.
    pub fn timestamp_window(&self) -> Option<(u64, u64)> {
        let or_difference = |ms: u64| {
            if ms == NO_LIMIT_MS {
                self.timestamp_difference_max_ms
            } else {
                ms
            }
        };
        let window = (
            or_difference(self.timestamp_before_max_ms),
            or_difference(self.timestamp_after_max_ms),
        );
        let limited = window != (NO_LIMIT_MS, NO_LIMIT_MS);
        (limited && self.timestamp_type == TimestampType::CreateTime).then_some(window)
    }

    /// Checks a whole configuration (one built as a struct rather than through
    /// [`TopicConfig::set`]) by passing each entry through the parser.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] for the first value out of range.
    pub fn validate(&self) -> Result<(), EngineError> {
        let mut copy = TopicConfig::default();
        for (key, value) in self.entries() {
            copy.set(key, &value)?;
        }
        Ok(())
    }
}

/// Kafka's "no limit" for the millisecond limits: `Long.MAX_VALUE`.
const NO_LIMIT_MS: u64 = i64::MAX as u64;

/// Smallest `segment.bytes` accepted (the log's minimum).
pub const SEGMENT_BYTES_MIN: u64 = spindle_log::limits::SEGMENT_BYTES_MIN;

/// Largest `segment.bytes` accepted (the log's maximum).
pub const SEGMENT_BYTES_MAX: u64 = spindle_log::limits::SEGMENT_BYTES_MAX;

/// Largest `max.message.bytes` accepted: the largest batch the log stores.
pub const MESSAGE_BYTES_MAX: u32 = spindle_log::limits::BATCH_BYTES_MAX as u32;

const _: () = assert!(spindle_log::limits::BATCH_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_MAX);

fn parse_bounded(value: &str, min: u64, max: u64) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (min..=max).contains(v))
}

/// `-1` is `None`; anything else must be an integer of at least `min`.
fn parse_optional(value: &str, min: u64) -> Option<Option<u64>> {
    if value.trim() == "-1" {
        return Some(None);
    }
    parse_bounded(value, min, u64::MAX).map(Some)
}

/// A decimal from 0 to 1, in millionths.
fn parse_ratio_ppm(value: &str) -> Option<u32> {
    let ratio = value.trim().parse::<f64>().ok()?;
    if !(0.0..=1.0).contains(&ratio) {
        return None;
    }
    // In [0, 1e6]: the cast neither truncates nor wraps.
    Some((ratio * 1e6).round() as u32)
}

fn parse_fsync(value: &str) -> Option<FsyncPolicy> {
    match value.trim() {
        "batch" => Some(FsyncPolicy::Batch),
        "never" => Some(FsyncPolicy::Never),
        other => {
            let ms = other.strip_prefix("interval:")?;
            parse_bounded(ms, 1, u64::MAX).map(FsyncPolicy::IntervalMs)
        }
    }
}

fn fsync_to_string(policy: FsyncPolicy) -> String {
    match policy {
        FsyncPolicy::Batch => "batch".to_owned(),
        FsyncPolicy::IntervalMs(ms) => format!("interval:{ms}"),
        FsyncPolicy::Never => "never".to_owned(),
    }
}

/// Checks a topic name the way Kafka does: 1 to 249 characters of `[a-zA-Z0-9._-]`, and
/// neither `.` nor `..`.
///
/// # Errors
/// [`EngineError::InvalidTopic`] saying why.
pub fn validate_topic_name(name: &str) -> Result<(), EngineError> {
    let invalid = |reason: String| EngineError::InvalidTopic {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("the name is empty".to_owned()));
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return Err(invalid(format!(
            "the name is longer than {TOPIC_NAME_LEN_MAX} characters"
        )));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not allowed".to_owned()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(format!(
            "character {bad:?} is not allowed (only a-z, A-Z, 0-9, '.', '_', '-')"
        )));
    }
    Ok(())
}

/// A topic as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Kafka's topic id (KIP-516): a random version-4 UUID, assigned at creation and kept for
    /// the topic's life; a topic deleted and created again under its name gets a new one.
    pub topic_id: u128,
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
