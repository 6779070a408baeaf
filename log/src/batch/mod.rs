//! The Kafka v2 record batch: Spindle's unit of storage.
//!
//! The log stores batches exactly as producers sent them, except for the base offset and the
//! partition leader epoch, which it assigns (both lie outside the CRC, so the producer's CRC
//! stays valid). `header` gives a typed zero-copy view of the header, [`validate`] decides what
//! a good batch is, and [`batches`] splits a `records` blob into its batches.

pub mod clean;
pub mod codec;
mod control;
mod header;
mod record;
mod validate;

pub use control::{encode_marker, marker_of, ProducerBatchHeader, TxnMarker};
pub(crate) use header::rewrite_base;
pub use header::BatchHeader;
pub(crate) use record::Records;
pub use validate::{frame, validate, validate_stored, BatchDefect};

use crate::error::LogError;

/// Iterates the batches of a `records` blob, yielding each one's header (a copy) and its bytes.
/// Only the framing (lengths) is checked; use [`validate`] for the rest. Stops after the first
/// error.
pub fn batches(records: &[u8]) -> impl Iterator<Item = Result<(BatchHeader, &[u8]), LogError>> {
    let mut position = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || position >= records.len() {
            return None;
        }
        match frame(&records[position..]) {
            Ok((header, total)) => {
                let header = *header;
                let bytes = &records[position..position + total];
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

/// Sets every batch's timestamps in `records` to the broker's append time `now_ms` (Kafka's
/// `message.timestamp.type=LogAppendTime`), in place: the timestamp-type attribute and the max
/// timestamp change, and with them the CRC-32C, so each batch is validated first, lest a damaged
/// one be sealed with a good CRC.
///
/// # Errors
/// [`LogError::InvalidBatch`] for the first batch that does not validate; the batches before it
/// are stamped already.
pub fn stamp_log_append_time(records: &mut [u8], now_ms: i64) -> Result<(), LogError> {
    let mut position = 0;
    while position < records.len() {
        let (_, total) = validate(&records[position..])
            .map_err(|reason| LogError::InvalidBatch { position, reason })?;
        let batch = &mut records[position..position + total];
        BatchHeader::parse_mut(batch).set_log_append_time(now_ms);
        let crc = crc32c::crc32c(&batch[crate::limits::BATCH_CRC_START..]);
        BatchHeader::parse_mut(batch).set_crc(crc);
        position += total;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn log_append_time_marks_each_batch_and_keeps_it_valid() {
        let one = crate::testing::batch(3, 10, 1_000);
        let records = [&one[..], &one[..]].concat();
        let mut stamped = records.clone();
        stamp_log_append_time(&mut stamped, 5_000).unwrap();
        let stamped = Bytes::from(stamped);
        let mut seen = 0;
        for item in batches(&stamped) {
            let (header, bytes) = item.unwrap();
            validate(bytes).unwrap();
            assert_eq!(header.attributes() & 0x08, 0x08);
            assert_eq!(
                (header.base_timestamp(), header.max_timestamp()),
                (1_000, 5_000)
            );
            seen += 1;
        }
        assert_eq!(seen, 2);
        let mut damaged = records;
        damaged[70] ^= 1;
        assert!(stamp_log_append_time(&mut damaged, 5_000).is_err());
    }
}
