//! Replay of a shard's partitions of `__consumer_offsets` at start: committed offsets into its
//! [`OffsetStore`], groups' membership records into a map by group id.
//!
//! The partition is read from its log start to its high watermark, batch by batch; each
//! record is applied in order (the last record of a key wins, a tombstone deletes). A record
//! this build cannot decode (a newer format version, damage the batch CRC did not catch) is
//! skipped with a warning rather than failing the start: one unreadable commit must not keep
//! every group of the shard from working.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::limits::RECOVERY_FETCH_BYTES;
use super::offsets::OffsetStore;
use super::record::{DecodeError, RecordKey};
use crate::log_api::batch::BatchHeader;
use crate::{EngineError, FetchRequest, Offset, Result, Shard, TopicPartition};

/// What replay rebuilds from a coordinator's offsets partitions.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) offsets: OffsetStore,
    /// The value of each group's last membership record.
    pub(crate) memberships: HashMap<String, Bytes>,
}

impl Replayed {
    /// Applies the record at `log_offset`.
    fn apply(
        &mut self,
        log_offset: u64,
        key: &[u8],
        value: Option<&Bytes>,
    ) -> std::result::Result<(), DecodeError> {
        match RecordKey::decode(key)? {
            RecordKey::Offset(key) => self.offsets.apply(log_offset, key, value)?,
            RecordKey::Group(group) => match value {
                Some(value) => {
                    self.memberships.insert(group, value.clone());
                }
                None => {
                    self.memberships.remove(&group);
                }
            },
        }
        Ok(())
    }
}

/// Reads the whole offsets partition `tp` into `store`.
///
/// # Errors
/// I/O reading the log. A missing offsets partition is not an error: it is reported and
/// replayed as empty.
pub(crate) async fn replay(shard: &Shard, tp: &TopicPartition, store: &mut Replayed) -> Result<()> {
    let mut next = Offset(0);
    let mut records = 0u64;
    loop {
        let request = FetchRequest {
            tp: tp.clone(),
            offset: next,
            max_bytes: RECOVERY_FETCH_BYTES,
            max_wait: std::time::Duration::ZERO,
            min_bytes: 0,
            isolation: Default::default(),
        };
        let outcome = match shard.fetch(request).await {
            Ok(outcome) => outcome,
            Err(EngineError::OffsetOutOfRange { log_start, .. }) if log_start > next => {
                next = log_start;
                continue;
            }
            Err(EngineError::UnknownTopic(_) | EngineError::UnknownPartition { .. }) => {
                tracing::warn!(%tp, "offsets partition missing; starting with no committed offsets");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let before = next;
        for batch in &outcome.batches {
            let Some(after) = batch_end(batch) else {
                tracing::warn!(%tp, offset = next.0, "short batch in offsets log; stopping replay");
                return Ok(());
            };
            if after <= next.0 {
                continue;
            }
            records += apply_batch(store, tp, batch, next);
            next = Offset(after);
        }
        if next == before || next >= outcome.high_watermark {
            break;
        }
    }
    tracing::debug!(%tp, records, "offsets replayed");
    Ok(())
}

/// The offset after a v2 batch's last record, read from its header (base offset at bytes 0..8,
/// last offset delta at 23..27), so replay advances even over batches it cannot decode.
fn batch_end(batch: &[u8]) -> Option<u64> {
    let base = i64::from_be_bytes(batch.get(0..8)?.try_into().ok()?);
    let delta = i32::from_be_bytes(batch.get(23..27)?.try_into().ok()?);
    u64::try_from(base.checked_add(i64::from(delta))?.checked_add(1)?).ok()
}

/// Applies the records of one batch at or after `from`; returns how many were applied.
fn apply_batch(store: &mut Replayed, tp: &TopicPartition, batch: &Bytes, from: Offset) -> u64 {
    // The coordinator writes plain batches only; a compressed one did not come from it, and
    // decompressing it has no bound on what it expands to.
    let compression = BatchHeader::parse(batch).map(|header| header.compression());
    if compression.map_or(true, |codec| codec != 0) {
        tracing::warn!(%tp, "compressed or truncated batch in offsets log skipped");
        return 0;
    }
    let mut buf = batch.clone();
    let set = match RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(%tp, error = %e, "undecodable batch in offsets log skipped");
            return 0;
        }
    };
    let mut applied = 0;
    for record in set.records {
        let Ok(log_offset) = u64::try_from(record.offset) else {
            continue;
        };
        if record.control || log_offset < from.0 {
            continue;
        }
        let Some(key) = &record.key else {
            continue;
        };
        match store.apply(log_offset, key, record.value.as_ref()) {
            Ok(()) => applied += 1,
            Err(e) => {
                tracing::warn!(%tp, offset = record.offset, error = ?e, "offset record skipped")
            }
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::commit::offset_record;
    use crate::group::offsets::CommittedOffset;

    #[test]
    fn plain_batches_replay_and_compressed_ones_are_skipped_unopened() {
        let tp = TopicPartition::new(crate::CONSUMER_OFFSETS_TOPIC, 0);
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: 0,
        };
        let record = offset_record("g", &TopicPartition::new("t", 0), Some(&committed), 0);
        let plain = crate::batch_builder::encode(&[record], 0).unwrap();
        let mut compressed = plain.to_vec();
        compressed[22] |= 1; // gzip, as a forged batch could claim
        let mut store = Replayed::default();
        assert_eq!(
            apply_batch(&mut store, &tp, &Bytes::from(compressed), Offset(0)),
            0
        );
        assert!(store
            .offsets
            .get("g", &TopicPartition::new("t", 0))
            .is_none());
        assert_eq!(apply_batch(&mut store, &tp, &plain, Offset(0)), 1);
        assert_eq!(
            store
                .offsets
                .get("g", &TopicPartition::new("t", 0))
                .map(|c| c.offset),
            Some(42)
        );
    }
}
