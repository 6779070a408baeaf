//! The Kafka v2 record batch: Spindle's unit of storage.
//!
//! The log stores batches exactly as producers sent them, except for the base offset and the
//! partition leader epoch, which it assigns (both lie outside the CRC, so the producer's CRC
//! stays valid). `header` gives a typed zero-copy view of the header, [`validate`] decides what
//! a good batch is, and [`batches`] splits a `records` blob into its batches.

pub mod clean;
pub mod codec;
mod header;
mod record;
mod validate;

use bytes::Bytes;

pub(crate) use header::rewrite_base;
pub use header::BatchHeader;
pub(crate) use record::Records;
pub use validate::{frame, validate, validate_stored, BatchDefect};

use crate::error::LogError;

/// Iterates the batches of a `records` blob, yielding each one's header (a copy) and its bytes
/// (a zero-copy slice). Only the framing (lengths) is checked; use [`validate`] for the rest.
/// Stops after the first error.
pub fn batches(
    records: &Bytes,
) -> impl Iterator<Item = Result<(BatchHeader, Bytes), LogError>> + '_ {
    let mut position = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || position >= records.len() {
            return None;
        }
        match frame(&records[position..]) {
            Ok((header, total)) => {
                let header = *header;
                let bytes = records.slice(position..position + total);
                position += total;
                Some(Ok((header, bytes)))
            }
            Err(reason) => {
                failed = true;
                Some(Err(LogError::InvalidBatch { position, reason }))
            }
        }
    })
}
