//! Transaction markers: the control batches that end a producer's transaction in a partition.
//!
//! A marker is a batch with the transactional and control attributes set, the producer's id and
//! epoch, no sequence, and one record whose key is `version i16 = 0, type i16` (0 abort,
//! 1 commit) and whose value is `version i16 = 0, coordinator epoch i32`, as Kafka writes them.
//! Consumers never hand control records to the application; a read-committed consumer drops the
//! records of the aborted transactions its fetch answer lists.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::BatchHeader;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnMarker {
    /// Its records are dropped by read-committed consumers.
    Abort,
    /// Its records are visible to read-committed consumers.
    Commit,
}

impl TxnMarker {
    fn wire_type(self) -> i16 {
        match self {
            TxnMarker::Abort => 0,
            TxnMarker::Commit => 1,
        }
    }
}

/// The header of a batch from an idempotent or transactional producer (producer id ≥ 0), with
/// the marker it carries if it is a control batch.
#[derive(Debug, Clone, Copy)]
pub struct ProducerBatchHeader {
    /// The batch header.
    pub header: BatchHeader,
    /// For a transaction marker, how the transaction ended.
    pub marker: Option<TxnMarker>,
}

impl ProducerBatchHeader {
    /// The producer fields of the validated batch `bytes`, if a producer with an id wrote it.
    pub fn of(bytes: &[u8]) -> Option<ProducerBatchHeader> {
        let header = *BatchHeader::parse(bytes).ok()?;
        if header.producer_id() < 0 {
            return None;
        }
        let marker = if header.is_control() {
            marker_of(bytes)
        } else {
            None
        };
        Some(ProducerBatchHeader { header, marker })
    }
}

/// A control batch ending producer `producer_id`'s transaction at `epoch` with `marker`, at base
/// offset 0 (the log assigns the real one), stamped `now_ms`.
pub fn encode_marker(
    producer_id: i64,
    epoch: i16,
    marker: TxnMarker,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.wire_type().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
        delete_horizon: false,
    };
    let mut out = BytesMut::new();
    // One uncompressed record of a few bytes: the encoder has nothing it could fail on.
    RecordBatchEncoder::encode(
        &mut out,
        std::iter::once(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("a marker batch encodes");
    out.freeze()
}

/// The marker a validated control batch carries, or `None` for one that is not a transaction
/// marker (or does not parse).
pub fn marker_of(batch: &[u8]) -> Option<TxnMarker> {
    let mut bytes = Bytes::copy_from_slice(batch);
    let decoded = RecordBatchDecoder::decode(&mut bytes).ok()?;
    let key = decoded.records.first()?.key.as_ref()?;
    match key.get(2..4)? {
        [0, 0] => Some(TxnMarker::Abort),
        [0, 1] => Some(TxnMarker::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_as_written() {
        for marker in [TxnMarker::Abort, TxnMarker::Commit] {
            let batch = encode_marker(42, 3, marker, 0, 1_000);
            let (header, _) = crate::batch::validate(&batch).expect("a valid batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id(), header.producer_epoch()), (42, 3));
            let read = ProducerBatchHeader::of(&batch).expect("a producer's batch");
            assert_eq!(read.marker, Some(marker));
        }
        let data = crate::testing::BatchBuilder::new(0)
            .producer(42, 3, 0)
            .records(1, 10)
            .build();
        assert_eq!(ProducerBatchHeader::of(&data).map(|h| h.marker), Some(None));
        assert!(ProducerBatchHeader::of(&crate::testing::batch(1, 10, 0)).is_none());
    }
}
