//! Requests and answers of the engine's data API, shared by [`crate::Shard`] and
//! [`crate::EngineHandle`].

use std::time::Duration;

use bytes::Bytes;
use spindle_log::Offset;

use crate::TopicPartition;

/// What a produce returns once the records are written (acknowledgeable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    /// Offset assigned to the first record of the first batch.
    pub base_offset: Offset,
    /// Offset assigned to the last record of the last batch.
    pub last_offset: Offset,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// Broker append time in ms when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// A read of one partition.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The partition to read.
    pub tp: TopicPartition,
    /// First offset wanted; the answer starts at the batch holding it.
    pub offset: Offset,
    /// Byte budget. At least one whole batch is returned even when it is larger (Kafka
    /// semantics); 0 asks for no batches, only the watermarks.
    pub max_bytes: usize,
    /// Wait up to this long for at least `min_bytes` to arrive (long poll, woken by the append).
    pub max_wait: Duration,
    /// Answer as soon as this many bytes are available.
    pub min_bytes: usize,
}

/// What a fetch returns.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Whole Kafka v2 record batches, exactly as stored, in offset order.
    pub batches: Vec<Bytes>,
    /// Offset after the last record a consumer may read.
    pub high_watermark: Offset,
    /// First offset still in the log.
    pub log_start_offset: Offset,
}

impl FetchOutcome {
    /// Total bytes of the batches returned.
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// Which offset a ListOffsets query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The offset after the last record (the high watermark).
    Latest,
    /// The first offset whose timestamp is at least this many ms since the epoch.
    Timestamp(i64),
    /// The first offset with the largest timestamp of the partition (KIP-734).
    MaxTimestamp,
}

/// One header of a plain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key.
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

/// A plain record for embedded users, who need not know the batch format: the engine builds the
/// v2 batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Record key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Record value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Record headers in order.
    pub headers: Vec<RecordHeader>,
    /// Create time in ms since the epoch; `None` takes the current time.
    pub timestamp_ms: Option<i64>,
}
