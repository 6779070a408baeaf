//! Stored Kafka v2 batches as gRPC records.
//!
//! A fetch returns whole batches exactly as stored (possibly compressed, possibly starting
//! before the offset asked for). `kafka_protocol`'s decoder decompresses and parses them; each
//! batch is decoded on its own (its `decode()` reads only one batch). Records before the
//! subscriber's position are skipped, and so are control records (transaction markers), which
//! Kafka consumers never see either; both still advance the position.
//!
//! The decoder keeps headers in a map, so a record with two headers of the same key is read back
//! with the last of them only.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use tonic::Status;

use crate::proto::{ConsumedRecord, Header};

/// Records decoded from one read, and where the next read starts.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records at or after the position, in offset order, without control records.
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last record seen (control records included), or the position if
    /// nothing was at or after it.
    pub next_offset: i64,
}

/// Decodes `batches` of `partition`, keeping records from `position` on.
///
/// # Errors
/// DATA_LOSS when a stored batch does not decode (the engine checked its CRC when it was
/// written, so this means corruption or a format the decoder does not know).
pub fn decode(partition: u32, position: i64, batches: &[Bytes]) -> Result<Decoded, Status> {
    let mut decoded = Decoded {
        records: Vec::new(),
        next_offset: position,
    };
    for batch in batches {
        // One `Bytes` may hold several batches back to back: decode until it is used up.
        let mut buf = batch.clone();
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf).map_err(|err| {
                Status::data_loss(format!(
                    "partition {partition}: stored batch does not decode: {err}"
                ))
            })?;
            for record in set.records {
                if record.offset < position {
                    continue;
                }
                decoded.next_offset = decoded.next_offset.max(record.offset + 1);
                if !record.control {
                    decoded.records.push(consumed(partition, record));
                }
            }
        }
    }
    Ok(decoded)
}

fn consumed(partition: u32, record: kafka_protocol::records::Record) -> ConsumedRecord {
    ConsumedRecord {
        partition,
        offset: record.offset,
        timestamp_ms: record.timestamp,
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
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(base: i64, count: i64, compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| {
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
                    offset: base + i,
                    sequence: -1,
                    timestamp: 1_700_000_000_000 + i,
                    key: Some(Bytes::from(format!("k{}", base + i))),
                    value: (i % 2 == 0).then(|| Bytes::from(vec![b'x'; 100])),
                    headers,
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_every_batch_and_skips_records_before_the_position() {
        let batches = [
            batch(0, 5, Compression::None),
            batch(5, 5, Compression::Lz4),
        ];
        let decoded = decode(3, 2, &batches).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(decoded.next_offset, 10);
        let first = &decoded.records[0];
        assert_eq!(first.partition, 3);
        assert_eq!(first.key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(first.value.as_ref().map(Bytes::len), Some(100));
        assert_eq!(decoded.records[1].value, None);
        assert_eq!(first.headers[0].key, "h");
        assert_eq!(first.timestamp_ms, 1_700_000_000_002);
    }

    #[test]
    fn nothing_after_the_position_keeps_it_and_garbage_is_data_loss() {
        let decoded = decode(0, 7, &[batch(0, 5, Compression::None)]).unwrap();
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, 7);
        let garbage = Bytes::from(vec![0xffu8; 80]);
        assert_eq!(
            decode(0, 0, &[garbage]).unwrap_err().code(),
            tonic::Code::DataLoss
        );
    }
}
