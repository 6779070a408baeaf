//! Writing to the offsets log: offset commits and group deletion.
//!
//! A commit is checked against the group (generation and member), each partition against the
//! topic metadata, and the accepted offsets are appended to this shard's partition of
//! `__consumer_offsets` (see [`super::record`]) before they enter the in-memory map and the
//! commit is answered: an answered commit survives a kill.

use std::time::{SystemTime, UNIX_EPOCH};

use super::coordinator::{GroupCoordinator, OffsetCommit};
use super::limits::{COMMIT_RECORDS_PER_BATCH_MAX, OFFSET_METADATA_BYTES_MAX};
use super::offsets::CommittedOffset;
use super::record::{encode_value, OffsetKey};
use super::GroupError;
use crate::{EngineError, Record, Shard, TopicPartition};

/// Per-partition outcome of a commit, in the order the partitions were given.
pub type CommitOutcome = Vec<(TopicPartition, Result<(), GroupError>)>;

impl GroupCoordinator {
    /// Commits offsets for a group and returns once they are stored (appended to the offsets
    /// log). Must run on the group's coordinator shard, with that shard's context.
    ///
    /// A member's commit must come from the current generation; an outsider's is accepted
    /// only while the group has no members; the gateway's always (see [`super::Committer`]).
    ///
    /// # Errors
    /// For the whole commit: [`GroupError::InvalidGroupId`], [`GroupError::UnknownMemberId`],
    /// [`GroupError::IllegalGeneration`], [`GroupError::RebalanceInProgress`]. Per partition:
    /// [`GroupError::UnknownTopicOrPartition`], [`GroupError::OffsetMetadataTooLarge`], and
    /// [`GroupError::CoordinatorNotAvailable`] when the offsets log refused the write.
    pub async fn commit_offsets(
        &self,
        shard: &Shard,
        commit: OffsetCommit,
    ) -> Result<CommitOutcome, GroupError> {
        self.check_commit(&commit)?;
        let now_ms = unix_ms();
        let mut outcome: CommitOutcome = Vec::with_capacity(commit.offsets.len());
        let mut accepted: Vec<(TopicPartition, CommittedOffset)> = Vec::new();
        for (tp, mut offset) in commit.offsets {
            match check_partition(shard, &tp, &offset) {
                Ok(()) => {
                    offset.commit_timestamp_ms = now_ms;
                    outcome.push((tp.clone(), Ok(())));
                    accepted.push((tp, offset));
                }
                Err(e) => outcome.push((tp, Err(e))),
            }
        }
        for chunk in accepted.chunks(COMMIT_RECORDS_PER_BATCH_MAX) {
            let records = chunk
                .iter()
                .map(|(tp, offset)| offset_record(&commit.group_id, tp, Some(offset), now_ms))
                .collect();
            match shard
                .append_internal_records(&self.offsets_tp(&commit.group_id), records)
                .await
            {
                Ok(appended) => {
                    for ((tp, offset), log_offset) in chunk.iter().zip(appended.base_offset.0..) {
                        self.store_offset(&commit.group_id, tp.clone(), offset.clone(), log_offset);
                    }
                }
                Err(e) => {
                    let error = append_error(&e);
                    tracing::warn!(group = %commit.group_id, error = %e, "offset commit not stored");
                    for (tp, _) in chunk {
                        if let Some(slot) = outcome.iter_mut().find(|(t, _)| t == tp) {
                            slot.1 = Err(error.clone());
                        }
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Deletes groups that have no members: writes a tombstone for each of their committed
    /// offsets, then forgets them. Must run on the groups' coordinator shard.
    ///
    /// # Errors
    /// Per group: [`GroupError::NonEmptyGroup`], [`GroupError::GroupIdNotFound`],
    /// [`GroupError::CoordinatorNotAvailable`] when the tombstones could not be written.
    pub async fn delete_groups(
        &self,
        shard: &Shard,
        group_ids: &[String],
    ) -> Vec<(String, Result<(), GroupError>)> {
        let mut results = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            let result = self.delete_group(shard, group_id).await;
            results.push((group_id.clone(), result));
        }
        results
    }

    async fn delete_group(&self, shard: &Shard, group_id: &str) -> Result<(), GroupError> {
        let partitions = self.deletable(group_id)?;
        let now_ms = unix_ms();
        for chunk in partitions.chunks(COMMIT_RECORDS_PER_BATCH_MAX) {
            let records = chunk
                .iter()
                .map(|tp| offset_record(group_id, tp, None, now_ms))
                .collect();
            if let Err(e) = shard
                .append_internal_records(&self.offsets_tp(group_id), records)
                .await
            {
                tracing::warn!(group = %group_id, error = %e, "group deletion not stored");
                return Err(append_error(&e));
            }
        }
        self.forget_group(group_id);
        Ok(())
    }
}

fn check_partition(
    shard: &Shard,
    tp: &TopicPartition,
    offset: &CommittedOffset,
) -> Result<(), GroupError> {
    let known = shard
        .topic(&tp.topic)
        .is_some_and(|t| tp.partition.0 < t.partitions);
    if !known {
        return Err(GroupError::UnknownTopicOrPartition);
    }
    if offset.metadata.as_ref().map_or(0, String::len) > OFFSET_METADATA_BYTES_MAX {
        return Err(GroupError::OffsetMetadataTooLarge);
    }
    Ok(())
}

/// One record of the offsets log; `None` writes a tombstone.
pub(super) fn offset_record(
    group_id: &str,
    tp: &TopicPartition,
    offset: Option<&CommittedOffset>,
    now_ms: i64,
) -> Record {
    let key = OffsetKey {
        group: group_id.to_owned(),
        tp: tp.clone(),
    };
    Record {
        key: Some(key.encode()),
        value: offset.map(encode_value),
        headers: Vec::new(),
        timestamp_ms: Some(now_ms),
    }
}

/// What a client is told when the offsets log refuses a write (as Kafka maps append errors).
fn append_error(e: &EngineError) -> GroupError {
    match e {
        EngineError::MessageTooLarge { .. } => GroupError::InvalidCommitOffsetSize,
        _ => GroupError::CoordinatorNotAvailable,
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
