//! Writing to the offsets log: offset commits, group deletion and offset deletion.
//!
//! A commit is checked against the group (generation and member), each partition against the
//! topic metadata, and the accepted offsets are appended to this shard's partition of
//! `__consumer_offsets` (see [`super::record`]) before they enter the in-memory map and the
//! commit is answered: an answered commit survives a kill. Every write holds a unit of the
//! coordinator's write gate while it runs, so that a cleaning of the log ([`super::cleaning`])
//! never runs beside it.

use glommio::sync::Permit;

use super::coordinator::{check_name, GroupCoordinator, OffsetCommit};
use super::limits::{COMMIT_RECORDS_PER_BATCH_MAX, OFFSET_METADATA_BYTES_MAX};
use super::offsets::CommittedOffset;
use super::record::{encode_value, OffsetKey};
use super::GroupError;
use crate::log_api::{Clock, SystemClock};
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
        let _writing = self.enter_writes().await?;
        let now_ms = unix_ms();
        let mut outcome: CommitOutcome = Vec::with_capacity(commit.offsets.len());
        let mut accepted: Vec<(TopicPartition, CommittedOffset)> = Vec::new();
        let offsets_tp = self.offsets_tp(&commit.group_id);
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
            match shard.append_internal_records(&offsets_tp, records).await {
                Ok(appended) => {
                    for ((tp, offset), log_offset) in chunk.iter().zip(appended.base_offset.0..) {
                        self.store_offset(&commit.group_id, tp.clone(), offset.clone(), log_offset);
                    }
                    self.clean_if_due(shard, &offsets_tp, &appended);
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

    pub(super) async fn delete_group(
        &self,
        shard: &Shard,
        group_id: &str,
    ) -> Result<(), GroupError> {
        let _writing = self.enter_writes().await?;
        let partitions = self.deletable(group_id)?;
        self.write_tombstones(shard, group_id, &partitions).await?;
        self.forget_group(group_id);
        Ok(())
    }

    /// Deletes a group's committed offsets of some partitions (OffsetDelete): a tombstone is
    /// written for each that has one, then it is forgotten. A group with no members loses any
    /// of them; one with members only those of topics none of its members subscribes to, and
    /// only if it is a consumer group (as in Kafka). Must run on the group's coordinator shard.
    ///
    /// # Errors
    /// For the whole request: [`GroupError::InvalidGroupId`], [`GroupError::GroupIdNotFound`],
    /// [`GroupError::NonEmptyGroup`], [`GroupError::CoordinatorNotAvailable`] when the
    /// tombstones could not be written. Per partition, in the order given:
    /// [`GroupError::UnknownTopicOrPartition`], [`GroupError::GroupSubscribedToTopic`].
    pub async fn delete_offsets(
        &self,
        shard: &Shard,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<CommitOutcome, GroupError> {
        check_name(group_id)?;
        let _writing = self.enter_writes().await?;
        let subscribed = self.offset_deletion_scope(group_id)?;
        let mut outcome: CommitOutcome = Vec::with_capacity(partitions.len());
        let mut doomed = Vec::new();
        for tp in partitions {
            let result = if !partition_exists(shard, &tp) {
                Err(GroupError::UnknownTopicOrPartition)
            } else if subscribed.as_ref().is_some_and(|s| s.includes(&tp.topic)) {
                Err(GroupError::GroupSubscribedToTopic)
            } else {
                Ok(())
            };
            if result.is_ok() && self.has_committed(group_id, &tp) {
                doomed.push(tp.clone());
            }
            outcome.push((tp, result));
        }
        self.write_tombstones(shard, group_id, &doomed).await?;
        for tp in &doomed {
            self.forget_offset(group_id, tp);
        }
        Ok(outcome)
    }

    /// Waits until this write to the offsets log may start (not while a cleaning runs), and
    /// holds its place until the returned permit is dropped.
    ///
    /// # Errors
    /// [`GroupError::CoordinatorNotAvailable`] when the engine is stopping.
    async fn enter_writes(&self) -> Result<Permit<'_>, GroupError> {
        self.write_gate
            .acquire_permit(1)
            .await
            .map_err(|_| GroupError::CoordinatorNotAvailable)
    }

    /// Appends a tombstone for each of `partitions`' offsets of `group_id`.
    async fn write_tombstones(
        &self,
        shard: &Shard,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<(), GroupError> {
        let now_ms = unix_ms();
        let offsets_tp = self.offsets_tp(group_id);
        for chunk in partitions.chunks(COMMIT_RECORDS_PER_BATCH_MAX) {
            let records = chunk
                .iter()
                .map(|tp| offset_record(group_id, tp, None, now_ms))
                .collect();
            match shard.append_internal_records(&offsets_tp, records).await {
                Ok(appended) => self.clean_if_due(shard, &offsets_tp, &appended),
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "offset tombstones not stored");
                    return Err(append_error(&e));
                }
            }
        }
        Ok(())
    }
}

fn partition_exists(shard: &Shard, tp: &TopicPartition) -> bool {
    shard
        .topic(&tp.topic)
        .is_some_and(|t| tp.partition.0 < t.partitions)
}

fn check_partition(
    shard: &Shard,
    tp: &TopicPartition,
    offset: &CommittedOffset,
) -> Result<(), GroupError> {
    if !partition_exists(shard, tp) {
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

/// The system clock in ms since the Unix epoch (the coordinators stamp commits and states with
/// it; partitions use their log's injected clock).
pub(crate) fn unix_ms() -> i64 {
    SystemClock.now_ms()
}
