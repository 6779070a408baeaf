//! Builds one Kafka v2 record batch from plain [`Record`]s, for embedded users who need not
//! know the batch format, and for tools that send plain records over the Kafka protocol.
//! Encoding (varints, CRC-32C, compression) is `kafka-protocol`'s; the batch is
//! non-idempotent (producer id -1, base sequence -1), uncompressed unless asked.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use spindle_log::LogError;

use crate::{EngineError, Record, Result};

/// Encodes `records` as one uncompressed batch; records without a timestamp get `now_ms`.
///
/// # Errors
/// [`EngineError::InvalidBatch`] when `records` is empty or the encoder fails.
pub(crate) fn encode(records: &[Record], now_ms: i64) -> Result<Bytes> {
    encode_batch(records, now_ms, Compression::None)
}

/// Encodes `records` as one batch compressed with `compression`; records without a timestamp
/// get `now_ms`.
///
/// # Errors
/// [`EngineError::InvalidBatch`] when `records` is empty or the encoder fails.
pub fn encode_batch(records: &[Record], now_ms: i64, compression: Compression) -> Result<Bytes> {
    if records.is_empty() {
        return Err(invalid("no records to produce"));
    }
    let encoded: Vec<KafkaRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch only while `offset - sequence` stays the
            // same, and takes the batch's base sequence from the first record: sequence i - 1
            // for record i yields one batch with base sequence -1 (not idempotent).
            sequence: i as i32 - 1,
            timestamp: r.timestamp_ms.unwrap_or(now_ms),
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, encoded.iter(), &options)
        .map_err(|e| invalid(&format!("encoding the batch failed: {e}")))?;
    Ok(buf.freeze())
}

fn invalid(reason: &str) -> EngineError {
    EngineError::InvalidBatch(LogError::InvalidConfig {
        reason: format!("plain records: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_records_become_one_non_idempotent_batch() {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                value: Some(Bytes::from(format!("v{i}"))),
                ..Record::default()
            })
            .collect();
        let bytes = encode(&records, 1_700_000_000_000).unwrap();
        let batches: Vec<_> = spindle_log::batch::batches(&bytes).collect();
        assert_eq!(batches.len(), 1);
        let (header, raw) = batches[0].as_ref().unwrap();
        assert_eq!(raw.len(), bytes.len());
        assert_eq!(header.last_offset_delta(), 4);
        assert_eq!(header.producer_id(), -1);
        assert_eq!(header.base_sequence(), -1);
        spindle_log::batch::validate(raw).unwrap();
    }

    #[test]
    fn a_compressed_batch_is_one_batch_of_its_codec() {
        let records: Vec<Record> = (0..100)
            .map(|i| Record {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from("v".repeat(100))),
                ..Record::default()
            })
            .collect();
        for codec in spindle_log::batch::codec::ALL {
            let bytes = encode_batch(&records, 1_700_000_000_000, codec).unwrap();
            let batches: Vec<_> = spindle_log::batch::batches(&bytes).collect();
            assert_eq!(batches.len(), 1, "{codec:?}");
            let (header, raw) = batches[0].as_ref().unwrap();
            assert_eq!(header.last_offset_delta(), 99);
            assert_eq!(header.compression(), codec as i16, "{codec:?}");
            spindle_log::batch::validate(raw).unwrap();
        }
    }
}
