//! The Kafka v2 record batch header as a typed, zero-copy view.
//!
//! Layout (all big-endian), 61 bytes:
//!
//! | bytes | field | note |
//! | --- | --- | --- |
//! | 0..8 | base offset | rewritten by the log on append |
//! | 8..12 | batch length | bytes after this field |
//! | 12..16 | partition leader epoch | rewritten by the log on append |
//! | 16 | magic | always 2 |
//! | 17..21 | CRC-32C | of bytes 21..end |
//! | 21..23 | attributes | compression (bits 0-2), timestamp type (3), transactional (4), control (5) |
//! | 23..27 | last offset delta | |
//! | 27..35 | base timestamp | |
//! | 35..43 | max timestamp | |
//! | 43..51 | producer id | |
//! | 51..53 | producer epoch | |
//! | 53..57 | base sequence | |
//! | 57..61 | records count | |

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::batch::BatchDefect;
use crate::error::LogError;
use crate::limits::BATCH_HEADER_BYTES;

/// The 61-byte header of a Kafka v2 record batch, read in place from a buffer.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    base_offset: I64,
    batch_length: I32,
    partition_leader_epoch: I32,
    magic: i8,
    crc: U32,
    attributes: I16,
    last_offset_delta: I32,
    base_timestamp: I64,
    max_timestamp: I64,
    producer_id: I64,
    producer_epoch: I16,
    base_sequence: I32,
    records_count: I32,
}

const _: () = assert!(std::mem::size_of::<BatchHeader>() == BATCH_HEADER_BYTES);

/// Attribute bits 0-2: the compression codec (0 = none).
const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: the max timestamp is the broker's append time (Kafka's LogAppendTime).
const LOG_APPEND_TIME_BIT: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
const TRANSACTIONAL_BIT: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers).
const CONTROL_BIT: i16 = 0x20;

impl BatchHeader {
    /// Views the first 61 bytes of `bytes` as a batch header. Only checks there are enough bytes;
    /// [`crate::batch::validate`] checks the rest.
    ///
    /// # Errors
    /// [`LogError::InvalidBatch`] with [`BatchDefect::Truncated`] when fewer than 61 bytes remain.
    pub fn parse(bytes: &[u8]) -> Result<&BatchHeader, LogError> {
        BatchHeader::ref_from_prefix(bytes)
            .map(|(h, _)| h)
            .map_err(|_| LogError::InvalidBatch {
                position: 0,
                reason: BatchDefect::Truncated {
                    needed: BATCH_HEADER_BYTES,
                    available: bytes.len(),
                },
            })
    }

    /// The offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset.get()
    }
    /// Bytes of the batch after the length field.
    pub fn batch_length(&self) -> i32 {
        self.batch_length.get()
    }
    /// The leader epoch the batch was written under.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch.get()
    }
    /// The format version (2).
    pub fn magic(&self) -> i8 {
        self.magic
    }
    /// The stored CRC-32C of bytes 21..end.
    pub fn crc(&self) -> u32 {
        self.crc.get()
    }
    /// The attribute bits.
    pub fn attributes(&self) -> i16 {
        self.attributes.get()
    }
    /// Offset of the last record minus the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta.get()
    }
    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp.get()
    }
    /// Largest record timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.get()
    }
    /// The idempotent producer's id, or -1.
    pub fn producer_id(&self) -> i64 {
        self.producer_id.get()
    }
    /// The idempotent producer's epoch, or -1.
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch.get()
    }
    /// Sequence number of the first record, or -1.
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence.get()
    }
    /// Number of records in the batch.
    pub fn records_count(&self) -> i32 {
        self.records_count.get()
    }
    /// The compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes() & COMPRESSION_MASK
    }
    /// Whether the batch's timestamps are the broker's append time (its max timestamp, for
    /// every record).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & LOG_APPEND_TIME_BIT != 0
    }
    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// Total bytes of the batch including the offset and length fields, as declared.
    pub fn total_bytes(&self) -> usize {
        crate::limits::BATCH_LOG_OVERHEAD_BYTES + usize::try_from(self.batch_length()).unwrap_or(0)
    }
    /// The offset of the last record, as declared (base offset + last offset delta).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
}

impl BatchHeader {
    /// Views the first 61 bytes of a buffer known to hold a whole header, to change it.
    pub(crate) fn parse_mut(bytes: &mut [u8]) -> &mut BatchHeader {
        BatchHeader::mut_from_prefix(bytes)
            .map(|(h, _)| h)
            .expect("a batch buffer holds its header")
    }
    pub(crate) fn set_batch_length(&mut self, length: i32) {
        self.batch_length.set(length);
    }
    pub(crate) fn set_crc(&mut self, crc: u32) {
        self.crc.set(crc);
    }
    pub(crate) fn set_last_offset_delta(&mut self, delta: i32) {
        self.last_offset_delta.set(delta);
    }
    pub(crate) fn set_records_count(&mut self, count: i32) {
        self.records_count.set(count);
    }
    /// Marks the batch's timestamps as the broker's append time, `now_ms` (Kafka's
    /// LogAppendTime: consumers then read every record's timestamp as the max timestamp).
    pub(crate) fn set_log_append_time(&mut self, now_ms: i64) {
        self.attributes
            .set(self.attributes.get() | LOG_APPEND_TIME_BIT);
        self.max_timestamp.set(now_ms);
    }
}

/// Mutable access for the log, which rewrites the offset and epoch (outside the CRC).
pub(crate) fn rewrite_base(bytes: &mut [u8], base_offset: i64, leader_epoch: i32) {
    let (header, _) =
        BatchHeader::mut_from_prefix(bytes).expect("validated batch shorter than its header");
    header.base_offset.set(base_offset);
    header.partition_leader_epoch.set(leader_epoch);
}
