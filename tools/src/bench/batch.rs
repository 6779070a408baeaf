//! Pre-built Kafka v2 record batches and the in-place timestamp stamp.
//!
//! Batches are encoded once before the run by `kafka-protocol`'s [`RecordBatchEncoder`] (which
//! computes the CRC32C), so the hot loop does no encoding. A Kafka-protocol producer that wants
//! consumers to measure end-to-end latency stamps the send time into the batch header
//! ([`stamp`]): the first and max timestamps sit in the CRC-covered part of the header, so the
//! CRC must change too. Rather than re-hashing the whole batch, [`Template`] keeps the CRC of
//! the bytes after the header, and [`stamp`] combines it with the CRC of the patched header,
//! which costs the same for a 1 KiB batch as for a 1 MiB one. The combination is linear in the
//! header's CRC: it advances that CRC over the tail's length (a fixed linear map of its 32 bits)
//! and XORs the tail's CRC. `crc32c_combine` works that map out anew at every call (about
//! 20 µs, a fifth of the producer's CPU at 10,000 requests a second), so the template keeps
//! the map's image of each of the 32 bits instead, taken from `crc32c_combine` once, and a stamp
//! is 32 XORs.
//!
//! Record values are pseudo-random letters and digits (seeded per template), so compression
//! codecs see text-like data that neither vanishes nor resists compression; every record carries its index in the batch as
//! its key, as a partitioner-agnostic producer would.

use anyhow::{ensure, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rand::distributions::Alphanumeric;
use rand::{Rng, SeedableRng};

/// Byte offset of the batch length field.
const LENGTH_OFFSET: usize = 8;
/// Byte offset of the magic byte.
const MAGIC_OFFSET: usize = 16;
/// Byte offset of the CRC32C field.
const CRC_OFFSET: usize = 17;
/// Byte offset of the attributes, where the CRC-covered part begins.
const CRC_START: usize = 21;
/// Byte offset of the first timestamp.
const FIRST_TIMESTAMP_OFFSET: usize = 27;
/// Byte offset of the max timestamp.
const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte offset of the base sequence.
const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte offset of the record count, the last header field.
const RECORD_COUNT_OFFSET: usize = 57;
/// Length of a v2 batch header.
pub const HEADER_BYTES: usize = 61;

/// What each batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// Records per batch.
    pub records: usize,
    /// Bytes of each record's value.
    pub message_bytes: usize,
    /// Codec of the record data.
    pub compression: Compression,
}

impl BatchShape {
    /// The shape that fills `batch_bytes` with `message_bytes` records (at least one record).
    pub fn filling(batch_bytes: usize, message_bytes: usize, compression: Compression) -> Self {
        Self {
            records: (batch_bytes / message_bytes.max(1)).max(1),
            message_bytes,
            compression,
        }
    }

    /// Bytes of record values (the payload figure the reports count) in one batch.
    pub fn payload_bytes(&self) -> u64 {
        (self.records * self.message_bytes) as u64
    }
}

/// What one produce request carries: a batch of one shape for each of `partitions` partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    /// Every batch's layout.
    pub batch: BatchShape,
    /// Partitions (a batch each) per request.
    pub partitions: usize,
}

impl RequestShape {
    /// Records in one request.
    pub fn records(&self) -> u64 {
        (self.batch.records * self.partitions) as u64
    }

    /// Bytes of record values in one request.
    pub fn payload_bytes(&self) -> u64 {
        self.batch.payload_bytes() * self.partitions as u64
    }
}

impl From<BatchShape> for RequestShape {
    /// A request of one batch.
    fn from(batch: BatchShape) -> Self {
        Self {
            batch,
            partitions: 1,
        }
    }
}

/// One encoded batch, ready to send as it is or to [`stamp`].
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole encoded batch.
    pub bytes: Bytes,
    /// CRC32C of `bytes[HEADER_BYTES..]`, for [`stamp`].
    tail_crc: u32,
    /// Bit `i` of a header CRC, advanced over the tail: `crc32c_combine(1 << i, 0, tail length)`.
    advance: [u32; 32],
}

impl Template {
    /// Encodes one batch of `shape` with values drawn from `seed`, timestamped `timestamp_ms`.
    ///
    /// # Errors
    /// The encoder's errors (a codec not compiled in, a batch too large).
    pub fn build(shape: &BatchShape, seed: u64, timestamp_ms: i64) -> anyhow::Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let records: Vec<Record> = (0..shape.records)
            .map(|i| {
                let value: Vec<u8> = (&mut rng)
                    .sample_iter(Alphanumeric)
                    .take(shape.message_bytes)
                    .collect();
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    // The encoder starts a new batch wherever `offset - sequence` changes.
                    sequence: i as i32,
                    timestamp: timestamp_ms,
                    key: Some(Bytes::from((i as u32).to_be_bytes().to_vec())),
                    value: Some(Bytes::from(value)),
                    headers: Default::default(),
                }
            })
            .collect();
        let mut buf = BytesMut::with_capacity(shape.records * (shape.message_bytes + 16) + 128);
        let options = RecordEncodeOptions {
            version: 2,
            compression: shape.compression,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
            .context("encoding a record batch")?;
        ensure!(buf.len() > HEADER_BYTES, "encoder produced a short batch");
        // Not an idempotent producer: the base sequence must read "none" (-1).
        buf[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        verify(&buf).context("the encoder's batch")?;
        let tail_crc = crc32c::crc32c(&buf[HEADER_BYTES..]);
        let tail_len = buf.len() - HEADER_BYTES;
        let advance = std::array::from_fn(|bit| crc32c::crc32c_combine(1 << bit, 0, tail_len));
        Ok(Self {
            bytes: buf.freeze(),
            tail_crc,
            advance,
        })
    }

    /// The CRC32C of a batch whose header (from the CRC's start) hashes to `head` and whose
    /// tail is this template's: what `crc32c_combine(head, tail_crc, tail length)` gives.
    fn crc_with_head(&self, head: u32) -> u32 {
        (0..32)
            .filter(|bit| head & (1 << bit) != 0)
            .fold(self.tail_crc, |crc, bit| crc ^ self.advance[bit])
    }

    /// Builds `count` templates of `shape` with distinct contents.
    ///
    /// # Errors
    /// As [`Template::build`].
    pub fn build_set(shape: &BatchShape, count: usize) -> anyhow::Result<Vec<Self>> {
        let now_ms = now_ms();
        (0..count as u64)
            .map(|seed| Self::build(shape, seed, now_ms))
            .collect()
    }

    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        read_i32(&self.bytes, RECORD_COUNT_OFFSET)
    }
}

/// Rewrites the first and max timestamps of the batch at the start of `batch` (a copy of
/// `template`) to `timestamp_ms` and fixes its CRC. Records keep their timestamp deltas of 0,
/// so every record reads as created at `timestamp_ms`.
///
/// # Panics
/// When `batch` does not start with `template`'s length (a bug in the caller).
pub fn stamp(batch: &mut [u8], template: &Template, timestamp_ms: i64) {
    let len = template.bytes.len();
    assert!(batch.len() >= len, "stamp target shorter than its template");
    let batch = &mut batch[..len];
    batch[FIRST_TIMESTAMP_OFFSET..FIRST_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&timestamp_ms.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&timestamp_ms.to_be_bytes());
    let head = crc32c::crc32c(&batch[CRC_START..HEADER_BYTES]);
    let crc = template.crc_with_head(head);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Checks that `batch` is one whole v2 batch whose stored CRC32C matches its contents.
///
/// # Errors
/// What does not check: length, magic or CRC.
pub fn verify(batch: &[u8]) -> anyhow::Result<()> {
    ensure!(batch.len() >= HEADER_BYTES, "batch shorter than a header");
    let length = read_i32(batch, LENGTH_OFFSET);
    ensure!(
        usize::try_from(length).ok().map(|l| l + 12) == Some(batch.len()),
        "batch length field {length} does not match {} bytes",
        batch.len()
    );
    ensure!(
        batch[MAGIC_OFFSET] == 2,
        "magic {} is not 2",
        batch[MAGIC_OFFSET]
    );
    let stored = u32::from_be_bytes(
        batch[CRC_OFFSET..CRC_OFFSET + 4]
            .try_into()
            .context("crc field")?,
    );
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    ensure!(
        stored == computed,
        "CRC32C mismatch: stored {stored:#x}, computed {computed:#x}"
    );
    Ok(())
}

/// The first timestamp of the batch at the start of `batch`, if it is long enough.
pub fn first_timestamp_ms(batch: &[u8]) -> Option<i64> {
    let field = batch.get(FIRST_TIMESTAMP_OFFSET..FIRST_TIMESTAMP_OFFSET + 8)?;
    Some(i64::from_be_bytes(field.try_into().ok()?))
}

/// Wall-clock ms since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn filling_shape_counts_records_per_batch() {
        let shape = BatchShape::filling(65536, 1024, Compression::None);
        assert_eq!(shape.records, 64);
        assert_eq!(shape.payload_bytes(), 65536);
        assert_eq!(BatchShape::filling(10, 100, Compression::None).records, 1);
    }

    #[test]
    fn built_batches_have_valid_crc_and_decode() {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let shape = BatchShape::filling(8192, 1000, compression);
            let t = Template::build(&shape, 7, 1_700_000_000_000).expect("builds");
            verify(&t.bytes).expect("crc valid");
            assert_eq!(t.record_count(), 8);
            let mut buf = t.bytes.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).expect("decodes");
            assert_eq!(sets.len(), 1);
            assert_eq!(sets[0].records.len(), 8);
            assert_eq!(
                sets[0].records[3].value.as_ref().map(Bytes::len),
                Some(1000)
            );
            assert!(sets[0].records.iter().all(|r| r.producer_id == -1));
            assert_eq!(read_i32(&t.bytes, BASE_SEQUENCE_OFFSET), -1);
        }
    }

    #[test]
    fn stamped_batch_keeps_a_valid_crc_and_carries_the_new_time() {
        let shape = BatchShape::filling(4096, 100, Compression::None);
        let t = Template::build(&shape, 1, 1000).expect("builds");
        let mut copy = t.bytes.to_vec();
        stamp(&mut copy, &t, 1_234_567);
        verify(&copy).expect("crc valid after stamp");
        assert_eq!(first_timestamp_ms(&copy), Some(1_234_567));
        let sets = RecordBatchDecoder::decode_all(&mut Bytes::from(copy)).expect("decodes");
        assert!(sets[0].records.iter().all(|r| r.timestamp == 1_234_567));
    }

    #[test]
    fn stamp_crc_matches_crc32c_combine_for_any_header() {
        for (bytes, compression) in [
            (1024, Compression::None),
            (65536, Compression::None),
            (16384, Compression::Lz4),
        ] {
            let t = Template::build(&BatchShape::filling(bytes, 100, compression), 3, 1000)
                .expect("builds");
            let tail_len = t.bytes.len() - HEADER_BYTES;
            for head in [0, 1, 0x8000_0000, 0xdead_beef, u32::MAX] {
                assert_eq!(
                    t.crc_with_head(head),
                    crc32c::crc32c_combine(head, t.tail_crc, tail_len)
                );
            }
        }
    }

    #[test]
    fn verify_rejects_a_flipped_byte() {
        let shape = BatchShape::filling(2048, 100, Compression::None);
        let t = Template::build(&shape, 2, 1000).expect("builds");
        let mut copy = t.bytes.to_vec();
        let last = copy.len() - 1;
        copy[last] ^= 1;
        assert!(verify(&copy).is_err());
    }

    #[test]
    fn template_sets_differ_in_content() {
        let shape = BatchShape::filling(1024, 100, Compression::None);
        let set = Template::build_set(&shape, 3).expect("builds");
        assert_ne!(set[0].bytes, set[1].bytes);
    }
}
