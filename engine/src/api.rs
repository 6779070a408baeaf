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
    /// Whether records of open transactions are read ([`Isolation::ReadUncommitted`], the
    /// default) or only those below the last stable offset.
    pub isolation: Isolation,
}

/// What a fetch may read of transactional records (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark, open and aborted transactions included.
    #[default]
    ReadUncommitted,
    /// Only what lies below the last stable offset (the first offset of the oldest open
    /// transaction); the answer lists the aborted transactions its records overlap.
    ReadCommitted,
}

/// An aborted transaction a read-committed fetch answer overlaps: the consumer drops this
/// producer's records from `first_offset` up to the transaction's abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// The transaction's first offset in the partition.
    pub first_offset: Offset,
}

/// What a fetch returns.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Whole Kafka v2 record batches, exactly as stored, in offset order.
    pub batches: Vec<Bytes>,
    /// Offset after the last record a consumer may read.
    pub high_watermark: Offset,
    /// The first offset of the oldest open transaction, or the high watermark (Kafka's last
    /// stable offset).
    pub last_stable_offset: Offset,
    /// First offset still in the log.
    pub log_start_offset: Offset,
    /// For a read-committed fetch, the aborted transactions the batches overlap.
    pub aborted: Vec<AbortedTransaction>,
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
    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark (what a read-committed consumer takes as the end).
    LastStable,
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
