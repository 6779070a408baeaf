//! Building valid Kafka v2 record batches for tests and benches.
//!
//! The engine builds batches for embedded users with kafka-protocol's encoder; tests and benches
//! need something smaller and exact: batches of N records of M bytes (or of chosen keys and
//! values, compressed if asked) with a correct CRC-32C, whose timestamps they choose.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::Compression;

use crate::batch::codec;

use crate::limits::{BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES};

/// A record's key and value as a test writes them (`None`: null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A record's key and value, owned.
type OwnedKeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Builds one v2 record batch (uncompressed unless asked).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_timestamp: i64,
    timestamp_step_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    compression: Compression,
    transactional: bool,
    /// Each record's key and value (`None`: null).
    records: Vec<OwnedKeyValue>,
}

impl BatchBuilder {
    /// An empty builder whose first record has timestamp `base_timestamp`.
    pub fn new(base_timestamp: i64) -> Self {
        BatchBuilder {
            base_timestamp,
            timestamp_step_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            compression: Compression::None,
            transactional: false,
            records: Vec::new(),
        }
    }

    /// Record `i` gets timestamp `base_timestamp + i * step`.
    #[must_use]
    pub fn timestamp_step(mut self, step_ms: i64) -> Self {
        self.timestamp_step_ms = step_ms;
        self
    }

    /// Marks the batch as coming from an idempotent producer.
    #[must_use]
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of its producer's transaction (the transactional attribute).
    #[must_use]
    pub fn transactional(mut self) -> Self {
        self.transactional = true;
        self
    }

    /// Compresses the records with `compression`.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds a record with a null key and this value.
    #[must_use]
    pub fn record(mut self, value: &[u8]) -> Self {
        self.records.push((None, Some(value.to_vec())));
        self
    }

    /// Adds a record with this key and value (`None`: null; a null value is a tombstone).
    #[must_use]
    pub fn keyed(mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        self.records
            .push((key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec)));
        self
    }

    /// Adds `count` records of `value_bytes` bytes each (a repeating pattern).
    #[must_use]
    pub fn records(mut self, count: usize, value_bytes: usize) -> Self {
        for i in 0..count {
            self.records.push((
                None,
                Some((0..value_bytes).map(|j| (i + j) as u8).collect()),
            ));
        }
        self
    }

    /// Encodes the batch with base offset 0 and a correct CRC-32C.
    ///
    /// # Panics
    /// Panics on an empty builder: a batch holds at least one record.
    pub fn build(&self) -> Bytes {
        assert!(
            !self.records.is_empty(),
            "a batch needs at least one record"
        );
        let count = self.records.len();
        let max_ts = self.base_timestamp + self.timestamp_step_ms * (count as i64 - 1);
        let mut section = Vec::new();
        let mut record = Vec::new();
        for (i, (key, value)) in self.records.iter().enumerate() {
            record.clear();
            record.push(0); // attributes
            put_varlong(&mut record, self.timestamp_step_ms * i as i64);
            put_varlong(&mut record, i as i64);
            for field in [key, value] {
                match field {
                    Some(bytes) => {
                        put_varlong(&mut record, bytes.len() as i64);
                        record.extend_from_slice(bytes);
                    }
                    None => put_varlong(&mut record, -1),
                }
            }
            put_varlong(&mut record, 0); // no headers
            put_varlong(&mut section, record.len() as i64);
            section.extend_from_slice(&record);
        }
        let section = codec::compress(&section, self.compression).expect("compressible");
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_BYTES + section.len());
        buf.put_i64(0); // base offset
        buf.put_i32(0); // batch length, patched below
        buf.put_i32(-1); // partition leader epoch
        buf.put_i8(2); // magic
        buf.put_u32(0); // crc, patched below
                        // Attributes: the codec, and bit 4 for a transactional batch.
        buf.put_i16(self.compression as i16 | if self.transactional { 0x10 } else { 0 });
        buf.put_i32(count as i32 - 1);
        buf.put_i64(self.base_timestamp);
        buf.put_i64(max_ts.max(self.base_timestamp));
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(count as i32);
        buf.put_slice(&section);
        let batch_length = (buf.len() - BATCH_LOG_OVERHEAD_BYTES) as i32;
        buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&buf[BATCH_CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf.freeze()
    }
}

/// A batch at `base_offset` of records with these keys and values (`None`: null), compressed
/// with `compression`, all with timestamp 0.
pub fn keyed_batch(
    base_offset: i64,
    records: &[KeyValue<'_>],
    compression: Compression,
) -> Vec<u8> {
    let builder = records
        .iter()
        .fold(BatchBuilder::new(0), |b, &(k, v)| b.keyed(k, v))
        .compression(compression);
    let mut batch = builder.build().to_vec();
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    batch
}

/// Writes `v` as a zigzag varint.
fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A batch of `count` records of `value_bytes` bytes, all with timestamp `timestamp_ms`.
pub fn batch(count: usize, value_bytes: usize, timestamp_ms: i64) -> Bytes {
    BatchBuilder::new(timestamp_ms)
        .records(count, value_bytes)
        .build()
}

/// Recomputes the CRC-32C of a batch in place (for tests that damage a batch on purpose and
/// want only one defect).
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;

    #[test]
    fn built_batches_validate() {
        for (n, m) in [(1, 0), (1, 1), (3, 100), (64, 1024), (200, 7)] {
            let b = BatchBuilder::new(1000)
                .timestamp_step(2)
                .records(n, m)
                .build();
            let (h, total) = validate(&b).unwrap();
            assert_eq!(total, b.len());
            assert_eq!(h.records_count(), n as i32);
            assert_eq!(h.max_timestamp(), 1000 + 2 * (n as i64 - 1));
        }
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: std::cell::Cell<i64>,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        ManualClock {
            now_ms: std::cell::Cell::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }
}

impl crate::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }
}
