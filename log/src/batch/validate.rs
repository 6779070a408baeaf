//! Validation of one record batch: framing, magic, CRC-32C and header sanity.
//!
//! Append refuses a batch unless all of these hold, and recovery and disk reads apply the same
//! checks, so one function decides what a good batch is.

use std::fmt;

use crate::batch::header::BatchHeader;
use crate::batch::record::Records;
use crate::limits::{
    BATCH_BYTES_MAX, BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
};

/// What is wrong with a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchDefect {
    /// No batch at all: the input was empty.
    Empty,
    /// Fewer bytes than the header or the declared length needs.
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The declared batch length is below the header size or above the limit.
    BadLength {
        /// The `batch_length` field.
        declared: i32,
    },
    /// The magic byte is not 2.
    BadMagic {
        /// The byte found.
        found: i8,
    },
    /// The CRC-32C does not match the bytes.
    BadCrc {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The records count disagrees with the last offset delta or with the records present.
    RecordsCount {
        /// The `records_count` field.
        declared: i32,
        /// `last_offset_delta + 1`, or the records actually found in an uncompressed batch.
        found: i64,
    },
    /// The records of an uncompressed batch do not fill it exactly.
    BadRecords,
    /// The batch's offsets do not follow the previous batch (stored data only).
    OffsetGap {
        /// The offset expected.
        expected: u64,
        /// The base offset found.
        found: i64,
    },
}

impl fmt::Display for BatchDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BatchDefect::Empty => write!(f, "no batch: empty input"),
            BatchDefect::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            BatchDefect::BadLength { declared } => write!(
                f,
                "batch length {declared} outside [{}, {BATCH_BYTES_MAX}]",
                BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES
            ),
            BatchDefect::BadMagic { found } => write!(f, "magic {found}, only 2 is supported"),
            BatchDefect::BadCrc { stored, computed } => {
                write!(
                    f,
                    "CRC-32C {stored:#010x} stored, {computed:#010x} computed"
                )
            }
            BatchDefect::RecordsCount { declared, found } => {
                write!(f, "records count {declared} declared, {found} found")
            }
            BatchDefect::BadRecords => write!(f, "records do not fill the batch exactly"),
            BatchDefect::OffsetGap { expected, found } => {
                write!(f, "base offset {found}, expected {expected}")
            }
        }
    }
}

/// Reads the header at the front of `bytes` and checks the declared length fits: returns the
/// header and the batch's total size. Cheap: no CRC.
///
/// # Errors
/// [`BatchDefect::Truncated`] or [`BatchDefect::BadLength`].
pub fn frame(bytes: &[u8]) -> Result<(&BatchHeader, usize), BatchDefect> {
    if bytes.len() < BATCH_LOG_OVERHEAD_BYTES {
        return Err(BatchDefect::Truncated {
            needed: BATCH_HEADER_BYTES,
            available: bytes.len(),
        });
    }
    let declared = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let total = usize::try_from(declared)
        .ok()
        .map(|l| l + BATCH_LOG_OVERHEAD_BYTES)
        .filter(|&t| (BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&t))
        .ok_or(BatchDefect::BadLength { declared })?;
    if bytes.len() < total {
        return Err(BatchDefect::Truncated {
            needed: total,
            available: bytes.len(),
        });
    }
    let header = BatchHeader::parse(bytes).map_err(|_| BatchDefect::Truncated {
        needed: total,
        available: bytes.len(),
    })?;
    Ok((header, total))
}

/// Fully validates the batch at the front of `bytes` as a producer sent it: framing, magic 2,
/// CRC-32C over bytes 21..end, records count = last offset delta + 1, and for uncompressed
/// batches that the records fill the batch exactly and number `records_count`. Returns the
/// header and total size.
///
/// # Errors
/// The first [`BatchDefect`] found.
pub fn validate(bytes: &[u8]) -> Result<(&BatchHeader, usize), BatchDefect> {
    check(bytes, Origin::Producer)
}

/// Validates a batch as stored: as [`validate`], except that a batch the cleaner rewrote keeps
/// its offset range (base offset and last offset delta) with fewer records in it, or none, so
/// the records count may be anything from 0 to last offset delta + 1.
///
/// # Errors
/// The first [`BatchDefect`] found.
pub fn validate_stored(bytes: &[u8]) -> Result<(&BatchHeader, usize), BatchDefect> {
    check(bytes, Origin::Stored)
}

/// Where a batch being checked comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// From a producer: every offset of its range holds a record.
    Producer,
    /// From a segment, possibly rewritten by the cleaner.
    Stored,
}

fn check(bytes: &[u8], origin: Origin) -> Result<(&BatchHeader, usize), BatchDefect> {
    let (header, total) = frame(bytes)?;
    if header.magic() != 2 {
        return Err(BatchDefect::BadMagic {
            found: header.magic(),
        });
    }
    let computed = crc32c::crc32c(&bytes[BATCH_CRC_START..total]);
    if computed != header.crc() {
        return Err(BatchDefect::BadCrc {
            stored: header.crc(),
            computed,
        });
    }
    let declared = header.records_count();
    let by_delta = i64::from(header.last_offset_delta()) + 1;
    let count_fits = match origin {
        Origin::Producer => declared >= 1 && i64::from(declared) == by_delta,
        Origin::Stored => declared >= 0 && by_delta >= 1 && i64::from(declared) <= by_delta,
    };
    if !count_fits {
        return Err(BatchDefect::RecordsCount {
            declared,
            found: by_delta,
        });
    }
    if header.compression() == 0 {
        let mut found: i64 = 0;
        for record in Records::new(&bytes[BATCH_HEADER_BYTES..total]) {
            record.map_err(|()| BatchDefect::BadRecords)?;
            found += 1;
        }
        if found != i64::from(declared) {
            return Err(BatchDefect::RecordsCount { declared, found });
        }
    }
    Ok((header, total))
}
