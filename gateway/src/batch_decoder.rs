//! Stored Kafka v2 batches as gRPC records.
//!
//! A fetch returns whole batches exactly as stored (possibly compressed, possibly starting
//! before the offset asked for). `kafka_protocol`'s decoder parses them; each batch is decoded
//! on its own (its `decode()` reads only one batch). Records before the subscriber's position
//! are skipped, and so are control records (transaction markers), which Kafka consumers never
//! see either; both still advance the position.
//!
//! The log checked each batch when it was appended (framing, CRC, records count = last offset
//! delta + 1, and the records themselves when uncompressed), but not what a compressed batch
//! expands to nor the offsets its records claim, and the gateway runs in the shards' process.
//! (In a compacted topic a batch may hold fewer records than its offset range, or none: the
//! position still moves by the range.) So:
//! - decompression goes through [`spindle_log::batch::codec`], which stops at
//!   [`DECOMPRESSED_BATCH_BYTES_MAX`]; a batch past it, or declaring more than
//!   [`RECORDS_PER_BATCH_MAX`] records, ends the subscription with RESOURCE_EXHAUSTED naming the
//!   batch's offsets, from after which a client can subscribe again;
//! - a read decodes batches only until their records cost its byte budget (their decompressed
//!   bytes plus [`DECODED_RECORD_OVERHEAD_BYTES`] each) and leaves the rest for the next read,
//!   so a read of many small, well-compressed batches, or of many tiny records, is bounded too;
//! - the position moves by the batch header (base offset + last offset delta + 1, the offsets
//!   the log assigned), never by a record's own offset delta: a record whose offset is outside
//!   its batch's range, or not after the record before it, is skipped (and logged).
//!
//! A read-committed read comes with the aborted transactions its batches overlap (producer and
//! first offset, see `spindle_engine::FetchOutcome::aborted`); their records are left out as a
//! Kafka consumer leaves them out: from an aborted transaction's first offset, the producer's
//! transactional records are skipped until its marker.
//!
//! The decoder keeps headers in a map, so a record with two headers of the same key is read back
//! with the last of them only.

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::fmt::Display;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use tonic::Status;

use crate::limits::{
    DECODED_RECORD_OVERHEAD_BYTES, DECOMPRESSED_BATCH_BYTES_MAX, RECORDS_PER_BATCH_MAX,
    RECORD_BYTES_MIN,
};
use crate::proto::{ConsumedRecord, Header};
use spindle_engine::AbortedTransaction;
use spindle_log::batch::codec::{self as decompressor, DecompressError};
use spindle_log::batch::BatchHeader as StoredHeader;

/// Records decoded from one read, and where the next read starts.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records at or after the position, in offset order, without control records.
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last batch decoded (by its header), or the position if no batch
    /// reached it.
    pub next_offset: i64,
}

/// Where a read was made: what its records and errors name.
#[derive(Debug, Clone, Copy)]
pub struct ReadAt<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: u32,
    /// The subscriber's position: records before it are skipped.
    pub position: i64,
}

/// The bounds one decode keeps (the constants, or smaller ones in tests).
#[derive(Debug, Clone, Copy)]
struct Limits {
    decompressed_batch_bytes_max: usize,
    records_per_batch_max: usize,
}

const LIMITS: Limits = Limits {
    decompressed_batch_bytes_max: DECOMPRESSED_BATCH_BYTES_MAX,
    records_per_batch_max: RECORDS_PER_BATCH_MAX,
};

/// Decodes the `batches` of one read, keeping records from `at.position` on (those of the
/// `aborted` transactions left out), and stops before a
/// batch once those decoded cost `budget_bytes` (their decompressed bytes plus
/// [`DECODED_RECORD_OVERHEAD_BYTES`] per record; after at least one batch that reaches the
/// position). A batch that cannot be decoded after others that reach the position
/// ends the read early instead of failing it: the next read starts at that batch and fails.
///
/// # Errors
/// RESOURCE_EXHAUSTED when a batch decompresses to more than [`DECOMPRESSED_BATCH_BYTES_MAX`]
/// or declares more than [`RECORDS_PER_BATCH_MAX`] records; DATA_LOSS when a stored batch does
/// not decode (the log checked its CRC when it was written, so this means corruption or a
/// format the decoder does not know). Both name the topic, partition and offset.
pub fn decode(
    at: ReadAt<'_>,
    budget_bytes: usize,
    batches: &[Bytes],
    aborted: &[AbortedTransaction],
) -> Result<Decoded, Status> {
    decode_within(at, budget_bytes, LIMITS, batches, aborted).inspect_err(|status| {
        tracing::warn!(code = ?status.code(), "{}", status.message());
    })
}

fn decode_within(
    at: ReadAt<'_>,
    budget_bytes: usize,
    limits: Limits,
    batches: &[Bytes],
    aborted: &[AbortedTransaction],
) -> Result<Decoded, Status> {
    let mut decoded = Decoded {
        records: Vec::new(),
        next_offset: at.position,
    };
    let mut aborted = AbortedRecords::new(aborted);
    // What the records decoded so far cost in memory (see `cost`).
    let mut decoded_cost = 0usize;
    for batch in batches {
        // One `Bytes` may hold several batches back to back: decode until it is used up.
        let mut buf = batch.clone();
        while !buf.is_empty() {
            if decoded_cost >= budget_bytes && decoded.next_offset > at.position {
                // The next read starts at `next_offset` and reads the rest again.
                return Ok(decoded);
            }
            let stored_bytes = buf.len();
            let batch = BatchHeader::read(&buf)
                .map_err(|why| at.data_loss(at.position, &why))
                .and_then(|header| {
                    let (records, bytes) = decode_batch(at, &header, limits, &mut buf)?;
                    Ok((header, records, bytes))
                });
            let stored_bytes = stored_bytes - buf.len();
            let (header, records, bytes) = match batch {
                Ok(batch) => batch,
                // Serve what came before the batch at fault: the next read starts at it and
                // answers the error.
                Err(_) if decoded.next_offset > at.position => return Ok(decoded),
                Err(status) => return Err(status),
            };
            decoded_cost =
                decoded_cost.saturating_add(cost(bytes.max(stored_bytes), records.len()));
            take(at, &header, records, &mut aborted, &mut decoded.records);
            decoded.next_offset = decoded.next_offset.max(header.next_offset);
        }
    }
    Ok(decoded)
}

/// What decoding a batch's `records` from `bytes` of records costs in memory: the bytes (the
/// records' keys and values point into them) and each record's own structures.
fn cost(bytes: usize, records: usize) -> usize {
    bytes.saturating_add(records.saturating_mul(DECODED_RECORD_OVERHEAD_BYTES))
}

/// Decodes the batch at the front of `buf` (consuming it): its records, and the bytes they
/// decompressed to (0 for an uncompressed batch).
fn decode_batch(
    at: ReadAt<'_>,
    header: &BatchHeader,
    limits: Limits,
    buf: &mut Bytes,
) -> Result<(Vec<Record>, usize), Status> {
    if header.records_count > limits.records_per_batch_max {
        return Err(at.not_decoded(
            header,
            &format_args!(
                "it declares {} records, more than the {} a batch is decoded with",
                header.records_count, limits.records_per_batch_max
            ),
        ));
    }
    let decompressed_bytes = Cell::new(0);
    let decompress = |records: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let out =
            decompressor::decompress(records, compression, limits.decompressed_batch_bytes_max)?;
        // The decoder reserves room for the declared count before it reads a record.
        if header.records_count > out.len() / RECORD_BYTES_MIN {
            anyhow::bail!(
                "{} records declared in {} bytes of records",
                header.records_count,
                out.len()
            );
        }
        decompressed_bytes.set(out.len());
        Ok(out)
    };
    let set = RecordBatchDecoder::decode_with_custom_compression(buf, Some(decompress)).map_err(
        |err| match err.downcast_ref::<DecompressError>() {
            Some(too_large @ DecompressError::TooLarge { .. }) => at.not_decoded(header, too_large),
            _ => at.data_loss(header.base_offset, &format_args!("{err:#}")),
        },
    )?;
    Ok((set.records, decompressed_bytes.get()))
}

/// Which records belong to aborted transactions, followed record by record in offset order.
struct AbortedRecords {
    /// Aborted transactions not reached yet, by first offset: (first offset, producer).
    ahead: VecDeque<(i64, i64)>,
    /// Producers inside an aborted transaction at the current record.
    inside: HashSet<i64>,
}

impl AbortedRecords {
    fn new(aborted: &[AbortedTransaction]) -> Self {
        let mut ahead: Vec<(i64, i64)> = aborted
            .iter()
            .map(|a| {
                (
                    i64::try_from(a.first_offset.0).unwrap_or(i64::MAX),
                    a.producer_id,
                )
            })
            .collect();
        ahead.sort_unstable();
        Self {
            ahead: ahead.into(),
            inside: HashSet::new(),
        }
    }

    /// Whether `record` belongs to an aborted transaction. A marker (control record) ends its
    /// producer's transaction.
    fn drops(&mut self, record: &Record) -> bool {
        while let Some(&(first, producer)) = self.ahead.front() {
            if first > record.offset {
                break;
            }
            self.inside.insert(producer);
            self.ahead.pop_front();
        }
        if record.control {
            self.inside.remove(&record.producer_id);
            return false;
        }
        record.transactional && self.inside.contains(&record.producer_id)
    }
}

/// Moves the records of one batch at or after the position, control records and aborted
/// transactions' records aside, into `out`; skips (and logs) those whose offset its header does
/// not allow.
fn take(
    at: ReadAt<'_>,
    header: &BatchHeader,
    records: Vec<Record>,
    aborted: &mut AbortedRecords,
    out: &mut Vec<ConsumedRecord>,
) {
    let mut previous: Option<i64> = None;
    let mut stray = 0usize;
    for record in records {
        let allowed = (header.base_offset..header.next_offset).contains(&record.offset)
            && previous.is_none_or(|p| record.offset > p);
        if !allowed {
            stray += 1;
            continue;
        }
        previous = Some(record.offset);
        let dropped = aborted.drops(&record);
        if record.offset >= at.position && !record.control && !dropped {
            out.push(consumed(at.partition, header, record));
        }
    }
    if stray > 0 {
        tracing::warn!(
            topic = at.topic,
            partition = at.partition,
            base_offset = header.base_offset,
            next_offset = header.next_offset,
            stray,
            "records whose offsets are outside their batch's range or out of order were skipped"
        );
    }
}

impl ReadAt<'_> {
    /// DATA_LOSS for the stored batch at `offset`.
    fn data_loss(&self, offset: i64, why: &dyn Display) -> Status {
        Status::data_loss(format!(
            "topic {:?} partition {}: the stored batch at offset {offset} does not decode: {why}",
            self.topic, self.partition
        ))
    }

    /// RESOURCE_EXHAUSTED for a batch the gateway refuses to decode, with where to resume.
    fn not_decoded(&self, header: &BatchHeader, why: &dyn Display) -> Status {
        Status::resource_exhausted(format!(
            "topic {:?} partition {}: the batch at offsets {}..={} is not decoded: {why}; \
             subscribe from offset {} to read past it",
            self.topic,
            self.partition,
            header.base_offset,
            header.next_offset - 1,
            header.next_offset
        ))
    }
}

/// What the decoder needs of a v2 batch header, read before `kafka_protocol` decodes the batch.
#[derive(Debug)]
struct BatchHeader {
    /// The first offset of the batch.
    base_offset: i64,
    /// The offset after the batch: base offset + last offset delta + 1.
    next_offset: i64,
    /// The declared number of records.
    records_count: usize,
    /// The largest timestamp; every record's, when the batch carries the append time.
    max_timestamp: i64,
}

impl BatchHeader {
    fn read(batch: &[u8]) -> Result<Self, String> {
        let header = StoredHeader::parse(batch).map_err(|e| e.to_string())?;
        let (base_offset, last_offset_delta) = (header.base_offset(), header.last_offset_delta());
        let bad_offsets =
            || format!("base offset {base_offset} with last offset delta {last_offset_delta}");
        if base_offset < 0 || last_offset_delta < 0 {
            return Err(bad_offsets());
        }
        let next_offset = base_offset
            .checked_add(i64::from(last_offset_delta) + 1)
            .ok_or_else(bad_offsets)?;
        let records_count = usize::try_from(header.records_count())
            .map_err(|_| format!("negative records count {}", header.records_count()))?;
        Ok(Self {
            base_offset,
            next_offset,
            records_count,
            max_timestamp: header.max_timestamp(),
        })
    }
}

fn consumed(
    partition: u32,
    header: &BatchHeader,
    record: kafka_protocol::records::Record,
) -> ConsumedRecord {
    // In a batch stamped with the append time (LogAppendTime), every record's timestamp is the
    // batch's max timestamp, as Kafka consumers read it.
    let timestamp_ms = match record.timestamp_type {
        kafka_protocol::records::TimestampType::LogAppend => header.max_timestamp,
        kafka_protocol::records::TimestampType::Creation => record.timestamp,
    };
    ConsumedRecord {
        partition,
        offset: record.offset,
        timestamp_ms,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|(key, value)| Header {
                key: key.to_string(),
                value,
            })
            .collect(),
    }
}

/// The bytes a record occupies in a response, roughly: what the byte budgets count.
pub fn record_bytes(record: &ConsumedRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
        .sum();
    record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + headers
        + 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    use tonic::Code;

    const UNBOUNDED: usize = usize::MAX;

    fn at(position: i64) -> ReadAt<'static> {
        ReadAt {
            topic: "orders",
            partition: 3,
            position,
        }
    }

    /// A record whose sequence follows its offset, so that records encode as one batch.
    fn record(offset: i64, value_len: usize) -> Record {
        let mut headers = IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"v")),
        );
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: 1_700_000_000_000 + offset,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: (offset % 2 == 0).then(|| Bytes::from(vec![b'x'; value_len])),
            headers,
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Bytes {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf.freeze()
    }

    /// One batch of `count` records from `base`.
    fn batch(base: i64, count: i64, compression: Compression) -> Bytes {
        let records: Vec<Record> = (base..base + count).map(|o| record(o, 100)).collect();
        encode(&records, compression)
    }

    /// Byte positions in a v2 batch header of the fields `patched` replaces.
    const BASE_OFFSET_AT: usize = 0;
    const LAST_OFFSET_DELTA_AT: usize = 23;
    const RECORDS_COUNT_AT: usize = 57;

    /// `batch` (one batch) with its base offset, last offset delta and records count replaced
    /// and its CRC made to match, as a producer may craft it.
    fn patched(batch: &Bytes, base_offset: i64, last_offset_delta: i32, count: i32) -> Bytes {
        let mut bytes = BytesMut::from(&batch[..]);
        bytes[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
        bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        bytes[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes.freeze()
    }

    /// A batch from `base_offset` declaring `count` records over offsets up to `base_offset +
    /// count - 1` (as the log checks), whose records section is `records`, compressed with
    /// `compression`.
    fn raw_batch(base_offset: i64, count: i32, compression: Compression, records: &[u8]) -> Bytes {
        let mut bytes = BytesMut::new();
        bytes.put_i64(base_offset);
        bytes.put_i32(0); // batch length, below
        bytes.put_i32(0); // partition leader epoch
        bytes.put_i8(2); // magic
        bytes.put_u32(0); // CRC, below
        bytes.put_i16(compression as i16);
        bytes.put_i32(count - 1); // last offset delta
        bytes.put_i64(1_700_000_000_000);
        bytes.put_i64(1_700_000_000_000);
        bytes.put_i64(-1); // producer id
        bytes.put_i16(-1); // producer epoch
        bytes.put_i32(-1); // base sequence
        bytes.put_i32(count);
        bytes.put_slice(records);
        let length = i32::try_from(bytes.len() - 12).unwrap();
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes.freeze()
    }

    /// Records with these offset deltas and nothing else (null key and value, no header), as
    /// a records section: each is 7 bytes, the least a record takes.
    fn records_with_deltas(deltas: &[i8]) -> Vec<u8> {
        let zigzag = |v: i8| ((v << 1) ^ (v >> 7)) as u8;
        deltas
            .iter()
            .flat_map(|&delta| [zigzag(6), 0, 0, zigzag(delta), zigzag(-1), zigzag(-1), 0])
            .collect()
    }

    /// A zstd frame of `blocks` RLE blocks of 128 KiB zeros: 4 bytes per 128 KiB of output.
    fn zstd_zeros(blocks: usize) -> Vec<u8> {
        const BLOCK_BYTES: u32 = 128 << 10;
        // Magic, then a descriptor with no content size, checksum or dictionary, and a window
        // of 2^17 bytes (exponent 7, mantissa 0).
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let header = last | (1 << 1) | (BLOCK_BYTES << 3); // type 1: RLE
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.push(0);
        }
        frame
    }

    fn offsets(decoded: &Decoded) -> Vec<i64> {
        decoded.records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn decodes_every_batch_and_skips_records_before_the_position() {
        for codec in spindle_log::batch::codec::ALL {
            let batches = [batch(0, 5, Compression::None), batch(5, 5, codec)];
            let decoded = decode(at(2), UNBOUNDED, &batches, &[]).unwrap();
            assert_eq!(offsets(&decoded), [2, 3, 4, 5, 6, 7, 8, 9], "{codec:?}");
            assert_eq!(decoded.next_offset, 10);
            let first = &decoded.records[0];
            assert_eq!(first.partition, 3);
            assert_eq!(first.key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(first.value.as_ref().map(Bytes::len), Some(100));
            assert_eq!(decoded.records[1].value, None);
            assert_eq!(first.headers[0].key, "h");
            assert_eq!(first.timestamp_ms, 1_700_000_000_002);
            let last = &decoded.records[7];
            assert_eq!(last.key.as_deref(), Some(&b"k9"[..]));
        }
    }

    /// A batch of producer `producer_id`'s transaction over `offsets`, or its marker (one
    /// control record) when `offsets` is one offset and `marker` is set.
    fn transactional(producer_id: i64, offsets: std::ops::Range<i64>, marker: bool) -> Bytes {
        let records: Vec<Record> = offsets
            .map(|o| Record {
                transactional: true,
                control: marker,
                producer_id,
                producer_epoch: 0,
                // A marker's key: version 0, type 0 (abort) or 1 (commit); never read here.
                key: marker.then(|| Bytes::from_static(&[0, 0, 0, 0])),
                ..record(o, 10)
            })
            .collect();
        encode(&records, Compression::None)
    }

    #[test]
    fn a_read_committed_read_leaves_out_the_aborted_transactions_records() {
        let batches = [
            transactional(7, 0..3, false),
            transactional(7, 3..4, true),
            transactional(8, 4..6, false),
            batch(6, 2, Compression::None),
            transactional(7, 8..10, false),
            transactional(8, 10..11, true),
            transactional(7, 11..12, true),
        ];
        let aborted = [AbortedTransaction {
            producer_id: 7,
            first_offset: spindle_engine::Offset(0),
        }];
        let decoded = decode(at(0), UNBOUNDED, &batches, &aborted).unwrap();
        assert_eq!(
            offsets(&decoded),
            [4, 5, 6, 7, 8, 9],
            "producer 7's first transaction was aborted"
        );
        assert_eq!(decoded.next_offset, 12);
        // From inside the aborted transaction too.
        let decoded = decode(at(1), UNBOUNDED, &batches, &aborted).unwrap();
        assert_eq!(offsets(&decoded), [4, 5, 6, 7, 8, 9]);
        // Without aborted transactions every data record is read.
        let decoded = decode(at(0), UNBOUNDED, &batches, &[]).unwrap();
        assert_eq!(offsets(&decoded), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn nothing_after_the_position_keeps_it_and_garbage_is_data_loss() {
        let decoded = decode(at(7), UNBOUNDED, &[batch(0, 5, Compression::None)], &[]).unwrap();
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, 7);
        let garbage = Bytes::from(vec![0xffu8; 80]);
        let err = decode(at(0), UNBOUNDED, &[garbage], &[]).unwrap_err();
        assert_eq!(err.code(), Code::DataLoss);
        assert!(err.message().starts_with("topic \"orders\" partition 3: "));
        let short = Bytes::from_static(b"\0\0\0\0");
        let err = decode(at(0), UNBOUNDED, &[short], &[]).unwrap_err();
        assert_eq!(err.code(), Code::DataLoss, "{}", err.message());
    }

    #[test]
    fn a_batch_expanding_past_the_limit_is_refused_by_name() {
        // 1 GiB of zeros in 32 KiB of zstd, as a producer can store it.
        let bomb_frame = zstd_zeros(8192);
        assert!(bomb_frame.len() < 40 << 10);
        assert_eq!(
            zstd::decode_all(&zstd_zeros(3)[..]).unwrap(),
            vec![0; 3 << 17]
        );
        let bomb = raw_batch(5, 1, Compression::Zstd, &bomb_frame);

        let err = decode(at(5), UNBOUNDED, std::slice::from_ref(&bomb), &[]).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
        let message = err.message();
        for part in [
            "topic \"orders\" partition 3",
            "offsets 5..=5",
            &format!("more than {DECOMPRESSED_BATCH_BYTES_MAX} bytes"),
            "subscribe from offset 6",
        ] {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }

        // The records before it are served first; the read after them starts at it.
        let before = batch(0, 5, Compression::Zstd);
        let decoded = decode(at(0), UNBOUNDED, &[before, bomb], &[]).unwrap();
        assert_eq!(offsets(&decoded), [0, 1, 2, 3, 4]);
        assert_eq!(decoded.next_offset, 5);
    }

    #[test]
    fn every_codec_stops_at_the_decompressed_limit() {
        let records: Vec<Record> = (0..50).map(|o| record(o, 2000)).collect();
        for codec in spindle_log::batch::codec::ALL {
            let stored = encode(&records, codec);
            let tight = Limits {
                decompressed_batch_bytes_max: 20_000,
                ..LIMITS
            };
            let err = decode_within(at(0), UNBOUNDED, tight, std::slice::from_ref(&stored), &[])
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::ResourceExhausted,
                "{codec:?}: {}",
                err.message()
            );
            assert!(
                err.message().contains("offsets 0..=49"),
                "{}",
                err.message()
            );
            let roomy = Limits {
                decompressed_batch_bytes_max: 60_000,
                ..LIMITS
            };
            let decoded = decode_within(at(0), UNBOUNDED, roomy, &[stored], &[]).unwrap();
            assert_eq!(decoded.records.len(), 50, "{codec:?}");
        }
    }

    #[test]
    fn a_declared_records_count_is_checked_before_records_are_allocated() {
        let stored = batch(0, 3, Compression::Zstd);
        // As the log accepts it: records count = last offset delta + 1.
        let huge = patched(&stored, 0, 999_999_999, 1_000_000_000);
        let err = decode(at(0), UNBOUNDED, &[huge], &[]).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
        assert!(err.message().contains("declares 1000000000 records"));
        assert!(err.message().contains("subscribe from offset 1000000000"));
        // Within the bound but more than the decompressed bytes can hold.
        let inflated = patched(&stored, 0, 99_999, 100_000);
        let err = decode(at(0), UNBOUNDED, &[inflated], &[]).unwrap_err();
        assert_eq!(err.code(), Code::DataLoss, "{}", err.message());
    }

    #[test]
    fn the_next_offset_comes_from_the_batch_header_not_the_records() {
        for codec in [Compression::None, Compression::Lz4] {
            // Record deltas 0, 1, 1000 in a batch whose header says offsets 10..=12.
            let records = [record(0, 10), record(1, 10), record(1000, 10)];
            let crafted = patched(&encode(&records, codec), 10, 2, 3);
            let decoded = decode(at(10), UNBOUNDED, &[crafted], &[]).unwrap();
            assert_eq!(offsets(&decoded), [10, 11], "{codec:?}");
            assert_eq!(decoded.next_offset, 13);
        }
        for codec in [Compression::None, Compression::Zstd] {
            // Offsets 10, 5, 12, 12, 13 in a batch of 10..=14: the one before the batch and
            // the repeated one are skipped.
            let section = records_with_deltas(&[0, -5, 2, 2, 3]);
            let section = match codec {
                Compression::Zstd => zstd::encode_all(&section[..], 3).unwrap(),
                _ => section,
            };
            let crafted = raw_batch(10, 5, codec, &section);
            let decoded = decode(at(0), UNBOUNDED, std::slice::from_ref(&crafted), &[]).unwrap();
            assert_eq!(offsets(&decoded), [10, 12, 13], "{codec:?}");
            assert_eq!(decoded.next_offset, 15);
            let decoded = decode(at(13), UNBOUNDED, &[crafted], &[]).unwrap();
            assert_eq!(offsets(&decoded), [13]);
            assert_eq!(decoded.next_offset, 15);
        }
    }

    #[test]
    fn a_read_stops_once_its_batches_reach_the_byte_budget() {
        let batches: Vec<Bytes> = (0..4)
            .map(|i| batch(i * 10, 10, Compression::Zstd))
            .collect();
        let decompressed = |b: &Bytes| {
            let mut buf = b.clone();
            let size = Cell::new(0);
            RecordBatchDecoder::decode_with_custom_compression(
                &mut buf,
                Some(|r: &mut Bytes, c| {
                    let out = decompressor::decompress(r, c, usize::MAX)?;
                    size.set(out.len());
                    Ok(out)
                }),
            )
            .unwrap();
            size.get()
        };
        let one_batch = cost(decompressed(&batches[0]), 10);
        let decoded = decode(at(0), one_batch + 1, &batches, &[]).unwrap();
        assert_eq!(decoded.next_offset, 20);
        assert_eq!(offsets(&decoded), (0..20).collect::<Vec<_>>());
        // A read always gets past the position, whatever its budget.
        let decoded = decode(at(15), 0, &batches[1..], &[]).unwrap();
        assert_eq!(offsets(&decoded), (15..20).collect::<Vec<_>>());
        assert_eq!(decoded.next_offset, 20);
        // All four batches in one `Bytes`, as a fetch may return them.
        let joined: Vec<u8> = batches.iter().flat_map(|b| b.to_vec()).collect();
        let decoded = decode(at(0), 0, &[Bytes::from(joined)], &[]).unwrap();
        assert_eq!(decoded.next_offset, 10);
    }

    #[test]
    fn the_budget_counts_what_each_decoded_record_costs_beyond_its_bytes() {
        // Uncompressed batches of empty records: a 128 KiB budget holds all 8 as stored, but
        // not what the 1,000 decoded records of one cost.
        let batches: Vec<Bytes> = (0..8)
            .map(|i| {
                let records: Vec<Record> = (i * 1000..(i + 1) * 1000)
                    .map(|o| Record {
                        key: None,
                        headers: IndexMap::new(),
                        ..record(o, 0)
                    })
                    .collect();
                encode(&records, Compression::None)
            })
            .collect();
        let stored: usize = batches.iter().map(Bytes::len).sum();
        assert!(stored < 128 << 10, "{stored} bytes stored");
        let decoded = decode(at(0), 128 << 10, &batches, &[]).unwrap();
        assert_eq!(
            decoded.records.len(),
            1000,
            "one batch, then the budget is spent"
        );
        assert_eq!(decoded.next_offset, 1000);
        let decoded = decode(at(0), 8 * cost(batches[0].len(), 1000), &batches, &[]).unwrap();
        assert_eq!(
            decoded.next_offset, 8000,
            "a budget for all of them reads all of them"
        );
    }
}
