//! What the cleaner does to one batch: read its records' keys, and rewrite it without the
//! records compaction removes.
//!
//! A rewritten batch keeps its offset range: the same base offset and last offset delta, with
//! fewer records inside (each keeps its offset delta and timestamp delta, so no record is
//! re-encoded: the kept records' bytes are copied as they are). This is what Kafka's cleaner
//! does with v2 batches, and what lets consumers move on by the batch's last offset. The base
//! timestamp, max timestamp and producer fields stay; the records count, the length and the
//! CRC-32C change. A compressed batch is decompressed (bounded, [`codec::decompress`]), and its
//! kept records compressed again with the same codec. Control batches are never rewritten.

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use crate::batch::codec::{self, DecompressError};
use crate::batch::header::BatchHeader;
use crate::batch::record::read_varlong;
use crate::limits::{
    BATCH_BYTES_MAX, BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
};

/// Most bytes a compressed batch's records may expand to for the cleaner to read them; a batch
/// past it is kept whole, and its keys are not mapped.
pub const DECOMPRESSED_BYTES_MAX: usize = 128 << 20;

/// One record as the cleaner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedRecord<'a> {
    /// The record's offset (the batch's base offset + its offset delta).
    pub offset: i64,
    /// Its key, `None` for a record without one.
    pub key: Option<&'a [u8]>,
    /// Whether its value is null: a tombstone, when it has a key.
    pub tombstone: bool,
    /// The whole record as stored: length prefix and body.
    pub raw: &'a [u8],
}

/// Why the cleaner could not read a batch's records (the batch is then kept as it is).
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// The records did not decompress (corrupt, or larger than [`DECOMPRESSED_BYTES_MAX`]).
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    /// The attributes name a codec Kafka does not define.
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    /// A record does not parse or does not fit the records section.
    #[error("a record does not parse")]
    BadRecord,
    /// Compressing the kept records failed.
    #[error("compressing the kept records failed: {0}")]
    Compress(String),
}

/// What cleaning did to a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Every record stays: the batch is kept byte for byte.
    Unchanged,
    /// Some records went: the batch as rewritten.
    Rewritten(Vec<u8>),
    /// No record stays.
    Emptied,
}

/// The records section of a validated batch, decompressed if need be.
/// A batch's records section as records: as stored when uncompressed, else decompressed (at most
/// [`DECOMPRESSED_BYTES_MAX`]).
///
/// # Errors
/// [`CleanError`] when the section does not fit the batch, the codec is unknown or the records
/// do not decompress.
pub(crate) fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
) -> Result<Cow<'a, [u8]>, CleanError> {
    let section = batch
        .get(BATCH_HEADER_BYTES..header.total_bytes())
        .ok_or(CleanError::BadRecord)?;
    match compression_of(header)? {
        Compression::None => Ok(Cow::Borrowed(section)),
        // The decompressed bytes are the only reference to their buffer: no copy back.
        codec => Ok(Cow::Owned(Vec::from(codec::decompress(
            &Bytes::copy_from_slice(section),
            codec,
            DECOMPRESSED_BYTES_MAX,
        )?))),
    }
}

fn compression_of(header: &BatchHeader) -> Result<Compression, CleanError> {
    Ok(match header.compression() {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        other => return Err(CleanError::UnknownCodec(other)),
    })
}

/// Parses every record of an uncompressed records section.
fn parse_records(section: &[u8], base_offset: i64) -> Result<Vec<KeyedRecord<'_>>, CleanError> {
    let mut records = Vec::new();
    let mut rest = section;
    while !rest.is_empty() {
        let (len, n) = read_varlong(rest).ok_or(CleanError::BadRecord)?;
        let len = usize::try_from(len).map_err(|_| CleanError::BadRecord)?;
        let end = n.checked_add(len).ok_or(CleanError::BadRecord)?;
        let raw = rest.get(..end).ok_or(CleanError::BadRecord)?;
        let fields = record_fields(&raw[n..])?;
        records.push(KeyedRecord {
            offset: base_offset.saturating_add(fields.offset_delta),
            key: fields.key,
            tombstone: fields.tombstone,
            raw,
        });
        rest = &rest[end..];
    }
    Ok(records)
}

/// The fields of a record the log looks at.
struct RecordFields<'a> {
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<&'a [u8]>,
    /// Whether the value is null.
    tombstone: bool,
}

/// A record body's (after its length) fields.
fn record_fields(body: &[u8]) -> Result<RecordFields<'_>, CleanError> {
    // Attributes (one byte), then the timestamp delta, the offset delta and the key.
    let mut body = body.get(1..).ok_or(CleanError::BadRecord)?;
    let timestamp_delta = take_varlong(&mut body)?;
    let offset_delta = take_varlong(&mut body)?;
    let key_len = take_varlong(&mut body)?;
    let key = if key_len < 0 {
        None
    } else {
        let len = usize::try_from(key_len).map_err(|_| CleanError::BadRecord)?;
        let key = body.get(..len).ok_or(CleanError::BadRecord)?;
        body = &body[len..];
        Some(key)
    };
    let value_len = take_varlong(&mut body)?;
    Ok(RecordFields {
        timestamp_delta,
        offset_delta,
        key,
        tombstone: value_len < 0,
    })
}

/// Whether a validated batch holds a record without a key (a control batch holds none).
///
/// # Errors
/// [`CleanError`] when the records cannot be read.
pub fn has_record_without_key(batch: &[u8]) -> Result<bool, CleanError> {
    let header = header_of(batch)?;
    if header.is_control() {
        return Ok(false);
    }
    any_record(batch, header, |r| r.key.is_none())
}

/// The first record timestamp of a validated batch outside `min..=max`, if any. Records without
/// a timestamp (-1), control batches and log-append-time batches have none to judge, as in
/// Kafka's check of `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms`.
///
/// # Errors
/// [`CleanError`] when the records cannot be read.
pub fn timestamp_outside(batch: &[u8], min: i64, max: i64) -> Result<Option<i64>, CleanError> {
    let header = header_of(batch)?;
    if header.is_control() || header.is_log_append_time() {
        return Ok(None);
    }
    let base = header.base_timestamp();
    let mut outside = None;
    any_record(batch, header, |r| {
        let ts = base.saturating_add(r.timestamp_delta);
        let out = ts != UNSET_TIMESTAMP && !(min..=max).contains(&ts);
        if out {
            outside = Some(ts);
        }
        out
    })?;
    Ok(outside)
}

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp.
const UNSET_TIMESTAMP: i64 = -1;

/// Whether any record of a validated batch meets `pred`, stopping at the first that does.
/// Records are read one at a time from a decompressing stream, so that the memory it takes is
/// one record's, however far the batch expands; it reads at most [`DECOMPRESSED_BYTES_MAX`] of
/// records (snappy, whose Kafka framing is not streamed here, is decompressed whole up to that).
fn any_record(
    batch: &[u8],
    header: &BatchHeader,
    mut pred: impl FnMut(&RecordFields<'_>) -> bool,
) -> Result<bool, CleanError> {
    let section = batch
        .get(BATCH_HEADER_BYTES..header.total_bytes())
        .ok_or(CleanError::BadRecord)?;
    let Some(mut reader) = codec::reader(section, compression_of(header)?)? else {
        let section = records_section(batch, header)?;
        let mut rest: &[u8] = &section;
        while !rest.is_empty() {
            let len =
                usize::try_from(take_varlong(&mut rest)?).map_err(|_| CleanError::BadRecord)?;
            let body = rest.get(..len).ok_or(CleanError::BadRecord)?;
            if pred(&record_fields(body)?) {
                return Ok(true);
            }
            rest = &rest[len..];
        }
        return Ok(false);
    };
    let mut record = Vec::new();
    // Bounds the time as the stream bounds the memory: a small batch may expand to gigabytes.
    let mut read = 0usize;
    while let Some(len) = read_length(&mut reader)? {
        if len > BATCH_BYTES_MAX {
            return Err(CleanError::BadRecord);
        }
        read = read.saturating_add(len);
        if read > DECOMPRESSED_BYTES_MAX {
            return Err(DecompressError::TooLarge {
                limit_bytes: DECOMPRESSED_BYTES_MAX,
            }
            .into());
        }
        record.resize(len, 0);
        reader
            .read_exact(&mut record)
            .map_err(|_| CleanError::BadRecord)?;
        if pred(&record_fields(&record)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a record's length (a zigzag varint) from `reader`; `None` at the end of the records.
fn read_length(reader: &mut dyn Read) -> Result<Option<usize>, CleanError> {
    let mut raw = [0u8; 10];
    for i in 0..raw.len() {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(1) => raw[i] = byte[0],
            _ => return Err(CleanError::BadRecord),
        }
        if byte[0] & 0x80 == 0 {
            let (len, _) = read_varlong(&raw[..=i]).ok_or(CleanError::BadRecord)?;
            return usize::try_from(len)
                .map(Some)
                .map_err(|_| CleanError::BadRecord);
        }
    }
    Err(CleanError::BadRecord)
}

/// Reads a zigzag varint from the front of `buf` and moves past it.
fn take_varlong(buf: &mut &[u8]) -> Result<i64, CleanError> {
    let (v, used) = read_varlong(buf).ok_or(CleanError::BadRecord)?;
    *buf = &buf[used..];
    Ok(v)
}

/// Calls `each` with every record of a batch, in order (nothing for a control batch). The
/// batch should have been validated: this reads its records, and checks nothing else.
///
/// # Errors
/// [`CleanError`] when the records cannot be read.
pub fn for_each_record(
    batch: &[u8],
    mut each: impl FnMut(&KeyedRecord<'_>),
) -> Result<(), CleanError> {
    let header = header_of(batch)?;
    if header.is_control() {
        return Ok(());
    }
    let section = records_section(batch, header)?;
    for record in parse_records(&section, header.base_offset())? {
        each(&record);
    }
    Ok(())
}

/// Rewrites a validated batch with only the records `keep` says stay. Control batches are never
/// changed.
///
/// # Errors
/// [`CleanError`] when the records cannot be read or compressed again.
pub fn clean_batch(
    batch: &[u8],
    mut keep: impl FnMut(&KeyedRecord<'_>) -> bool,
) -> Result<Cleaned, CleanError> {
    let header = *header_of(batch)?;
    if header.is_control() {
        return Ok(Cleaned::Unchanged);
    }
    let codec = compression_of(&header)?;
    let section = records_section(batch, &header)?;
    let records = parse_records(&section, header.base_offset())?;
    let kept: Vec<&KeyedRecord<'_>> = records.iter().filter(|r| keep(r)).collect();
    if kept.len() == records.len() {
        return Ok(Cleaned::Unchanged);
    }
    if kept.is_empty() {
        return Ok(Cleaned::Emptied);
    }
    let mut plain = Vec::with_capacity(kept.iter().map(|r| r.raw.len()).sum());
    for record in &kept {
        plain.extend_from_slice(record.raw);
    }
    let section = match codec {
        Compression::None => Bytes::from(plain),
        codec => codec::compress(&plain, codec).map_err(CleanError::Compress)?,
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&section);
    let count = i32::try_from(kept.len()).map_err(|_| CleanError::BadRecord)?;
    reseal(&mut out, |h| h.set_records_count(count));
    Ok(Cleaned::Rewritten(out))
}

/// A batch with no records covering offsets `base ..= base + last_offset_delta`, which stands
/// in for batches the cleaner emptied where no kept batch before them can cover their offsets.
pub fn empty_batch(
    base: i64,
    last_offset_delta: i32,
    max_timestamp: i64,
    leader_epoch: i32,
) -> Vec<u8> {
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    out[..8].copy_from_slice(&base.to_be_bytes());
    out[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    out[16] = 2;
    out[27..35].copy_from_slice(&max_timestamp.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    out[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    out[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    reseal(&mut out, |h| h.set_last_offset_delta(last_offset_delta));
    out
}

/// Makes a kept batch also cover the offsets after it up to `last_offset_delta` from its base
/// (those of emptied batches that followed it).
pub fn extend_last_offset(batch: &mut [u8], last_offset_delta: i32) {
    reseal(batch, |h| h.set_last_offset_delta(last_offset_delta));
}

/// Applies `change` to the header of `batch`, then sets its length to the bytes it holds and
/// recomputes its CRC-32C.
fn reseal(batch: &mut [u8], change: impl FnOnce(&mut BatchHeader)) {
    let length = i32::try_from(batch.len() - BATCH_LOG_OVERHEAD_BYTES)
        .expect("a cleaned batch is no longer than the batch it came from");
    let header = BatchHeader::parse_mut(batch);
    change(header);
    header.set_batch_length(length);
    let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
    BatchHeader::parse_mut(batch).set_crc(crc);
}

fn header_of(batch: &[u8]) -> Result<&BatchHeader, CleanError> {
    BatchHeader::parse(batch).map_err(|_| CleanError::BadRecord)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate_stored;
    use crate::testing::{keyed_batch, KeyValue};

    fn keys_of(batch: &[u8]) -> Vec<(i64, Option<Vec<u8>>, bool)> {
        let mut out = Vec::new();
        for_each_record(batch, |r| {
            out.push((r.offset, r.key.map(<[u8]>::to_vec), r.tombstone))
        })
        .unwrap();
        out
    }

    #[test]
    fn keeps_offsets_and_range_and_reseals() {
        for codec in crate::batch::codec::ALL {
            let records: Vec<KeyValue<'_>> = vec![
                (Some(b"a"), Some(b"1")),
                (Some(b"b"), Some(b"2")),
                (Some(b"a"), None),
                (None, Some(b"4")),
            ];
            let batch = keyed_batch(100, &records, codec);
            assert_eq!(
                keys_of(&batch),
                vec![
                    (100, Some(b"a".to_vec()), false),
                    (101, Some(b"b".to_vec()), false),
                    (102, Some(b"a".to_vec()), true),
                    (103, None, false),
                ],
                "{codec:?}"
            );
            let Cleaned::Rewritten(out) = clean_batch(&batch, |r| r.offset != 100).unwrap() else {
                panic!("{codec:?}: a record went");
            };
            let (header, total) = validate_stored(&out).unwrap();
            assert_eq!(total, out.len());
            assert_eq!(header.base_offset(), 100);
            assert_eq!(header.last_offset_delta(), 3);
            assert_eq!(header.records_count(), 3);
            assert_eq!(header.compression(), batch[22] as i16 & 7);
            assert_eq!(
                keys_of(&out).iter().map(|k| k.0).collect::<Vec<_>>(),
                [101, 102, 103]
            );
            assert_eq!(clean_batch(&batch, |_| true).unwrap(), Cleaned::Unchanged);
            assert_eq!(clean_batch(&batch, |_| false).unwrap(), Cleaned::Emptied);
        }
    }

    #[test]
    fn empty_and_extended_batches_check_as_stored() {
        let empty = empty_batch(7, 4, 1234, 3);
        let (header, total) = validate_stored(&empty).unwrap();
        assert_eq!(total, BATCH_HEADER_BYTES);
        assert_eq!((header.base_offset(), header.last_offset()), (7, 11));
        assert_eq!((header.records_count(), header.max_timestamp()), (0, 1234));
        assert!(
            crate::batch::validate(&empty).is_err(),
            "no producer sends this"
        );

        let mut batch = keyed_batch(0, &[(Some(b"k"), Some(b"v"))], Compression::None);
        extend_last_offset(&mut batch, 9);
        let (header, _) = validate_stored(&batch).unwrap();
        assert_eq!((header.last_offset(), header.records_count()), (9, 1));
    }

    #[test]
    fn a_record_without_a_key_is_found_in_every_codec() {
        for codec in crate::batch::codec::ALL {
            let keyed = keyed_batch(0, &[(Some(b"a"), Some(b"1")), (Some(b"b"), None)], codec);
            assert!(!has_record_without_key(&keyed).unwrap(), "{codec:?}");
            let mixed = keyed_batch(0, &[(Some(b"a"), Some(b"1")), (None, Some(b"2"))], codec);
            assert!(has_record_without_key(&mixed).unwrap(), "{codec:?}");
        }
    }

    #[test]
    fn a_record_timestamp_outside_a_window_is_found_in_every_codec() {
        for codec in crate::batch::codec::ALL {
            // Records at 1000, 1100, 1200 and 1300.
            let batch = crate::testing::BatchBuilder::new(1_000)
                .timestamp_step(100)
                .compression(codec)
                .records(4, 10)
                .build();
            assert_eq!(
                timestamp_outside(&batch, 1_000, 1_300).ok(),
                Some(None),
                "{codec:?}"
            );
            assert_eq!(
                timestamp_outside(&batch, 1_100, 1_300).ok(),
                Some(Some(1_000)),
                "{codec:?}"
            );
            assert_eq!(
                timestamp_outside(&batch, 0, 1_250).ok(),
                Some(Some(1_300)),
                "{codec:?}"
            );
        }
        // Records without a timestamp are not judged.
        let unset = crate::testing::BatchBuilder::new(-1).records(2, 10).build();
        assert_eq!(timestamp_outside(&unset, 0, 10).ok(), Some(None));
    }

    #[test]
    fn a_batch_expanding_past_the_limit_is_refused() {
        // 2,049 keyed records of 64 KiB of zeros: just over 128 MiB of records, little zstd.
        let value = vec![0u8; 64 << 10];
        let records: Vec<KeyValue<'_>> = (0..2049)
            .map(|_| (Some(&b"k"[..]), Some(&value[..])))
            .collect();
        let bomb = keyed_batch(0, &records, Compression::Zstd);
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        assert!(matches!(
            has_record_without_key(&bomb),
            Err(CleanError::Decompress(DecompressError::TooLarge { .. }))
        ));
    }

    #[test]
    fn unreadable_records_are_an_error_not_a_panic() {
        let mut batch = keyed_batch(0, &[(Some(b"key"), Some(b"value"))], Compression::None);
        // Claim a key longer than the record.
        let key_len_at = BATCH_HEADER_BYTES + 4;
        batch[key_len_at] = 0x7e;
        assert!(matches!(
            clean_batch(&batch, |_| true),
            Err(CleanError::BadRecord)
        ));
    }
}
