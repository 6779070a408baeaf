//! Keeping `__consumer_offsets` short: a partition whose log has grown to many times its live
//! commits is rewritten at its tail and its log start moved past the old records.
//!
//! Every commit appends a record, so without cleaning an offsets partition grows for as long as
//! its groups commit, and every start replays all of it. Kafka compacts the topic; Spindle does
//! what compaction would leave, in two steps the log already has: it appends the partition's
//! live records again, exactly as the coordinator holds them (a record per group and partition,
//! each with its original commit time, and each group's last membership record), then moves
//! the log start to the first of them (as DeleteRecords does). Retention then deletes the
//! segments wholly below the start, and a restart replays only the rewrite and what came after
//! it.
//!
//! Why this is safe:
//! - Replay applies records in log order and the last one of a key wins; the rewrite holds the
//!   value of every live key, so replaying from its first record rebuilds the same state.
//! - No commit or tombstone may be in flight while the live commits are read and rewritten: a
//!   write appended before the rewrite but answered after the map was read would otherwise be
//!   overtaken by an older value, and then lost with the records below the new start. Writers
//!   hold one unit of [`GroupCoordinator::write_gate`] each; the cleaning takes all of them.
//!   glommio's semaphore serves waiters in order, so new writers queue behind a waiting
//!   cleaning instead of starving it.
//! - A crash in the middle leaves the old records, then part of the rewrite, then nothing else
//!   (no writer ran): replay still ends at the map the rewrite started from. The start moves
//!   only after the whole rewrite was appended.
//!
//! When: once a partition's log holds [`CLEAN_MIN_RECORDS`] and [`CLEAN_FACTOR`] times the
//! live commits the last cleaning kept, so a rewrite costs at most a fraction of the commits
//! that made it due. One cleaning runs at a time per coordinator, on the shard's background
//! queue.

use std::collections::HashMap;

use super::commit::offset_record;
use super::coordinator::GroupCoordinator;
use super::limits::{CLEAN_FACTOR, CLEAN_MIN_RECORDS, COMMIT_RECORDS_PER_BATCH_MAX};
use super::membership::membership_record;
use crate::{OffsetSpec, ProduceOutcome, Record, Result, Shard, TopicPartition};

/// The units of the write gate: more than there will ever be writers at once.
pub(super) const WRITE_GATE_UNITS: u64 = 1 << 40;

/// When each offsets partition of a coordinator is next due for cleaning.
#[derive(Debug, Default)]
pub(super) struct CleaningSchedule {
    /// Log length (records from the log start) at which a partition is due, by partition;
    /// [`CLEAN_MIN_RECORDS`] when absent.
    due_at: HashMap<u32, u64>,
    /// Whether a cleaning is running.
    running: bool,
}

impl CleaningSchedule {
    /// Notes that `partition`'s log now holds `kept` live commits (just rewritten, or just
    /// replayed): it is next due at [`CLEAN_FACTOR`] times that, and at least
    /// [`CLEAN_MIN_RECORDS`].
    fn kept(&mut self, partition: u32, kept: u64) {
        self.due_at
            .insert(partition, CLEAN_MIN_RECORDS.max(CLEAN_FACTOR * kept));
    }
}

impl GroupCoordinator {
    /// After a write to offsets partition `tp` that left its log as `outcome` says: starts
    /// cleaning the partition in the background if it is due and none is running.
    pub(super) fn clean_if_due(
        &self,
        shard: &Shard,
        tp: &TopicPartition,
        outcome: &ProduceOutcome,
    ) {
        let length = (outcome.last_offset.0 + 1).saturating_sub(outcome.log_start_offset.0);
        {
            let mut schedule = self.cleaning.borrow_mut();
            let due_at = schedule
                .due_at
                .get(&tp.partition.0)
                .copied()
                .unwrap_or(CLEAN_MIN_RECORDS);
            if schedule.running || length < due_at {
                return;
            }
            schedule.running = true;
        }
        let (task_shard, tp) = (shard.clone(), tp.clone());
        shard.spawn_background(async move {
            let coordinator = task_shard.local_groups();
            if let Err(e) = coordinator.clean(&task_shard, &tp).await {
                tracing::warn!(partition = %tp, error = %e, "cleaning the offsets log failed; it is tried again after the next commit");
            }
            coordinator.cleaning.borrow_mut().running = false;
        });
    }

    /// Sets when each of `partitions` is first due, from the live records replay found, as if a
    /// cleaning had just kept them (a log replayed whole is not rewritten again at once).
    pub(super) fn schedule_after_replay(&self, partitions: &[TopicPartition]) {
        for tp in partitions {
            let kept = self.live_records(tp).len() as u64;
            self.cleaning.borrow_mut().kept(tp.partition.0, kept);
        }
    }

    /// Rewrites the live records of offsets partition `tp` at its tail and moves its log start
    /// to the first of them (see the module docs).
    pub(super) async fn clean(&self, shard: &Shard, tp: &TopicPartition) -> Result<()> {
        let Ok(_all_writers) = self.write_gate.acquire_permit(WRITE_GATE_UNITS).await else {
            return Ok(()); // the engine is stopping
        };
        let live = self.live_records(tp);
        let kept = live.len() as u64;
        let earliest = shard.list_offset(tp, OffsetSpec::Earliest).await?;
        let old_start = earliest.map_or(0, |(offset, _)| offset.0);
        let mut new_start = None;
        let mut live = live.into_iter().peekable();
        while live.peek().is_some() {
            let records = live.by_ref().take(COMMIT_RECORDS_PER_BATCH_MAX).collect();
            let appended = shard.append_internal_records(tp, records).await?;
            new_start.get_or_insert(appended.base_offset);
        }
        let new_start = match new_start {
            Some(start) => start,
            // No live commit: everything below the tail can go.
            None => match shard.list_offset(tp, OffsetSpec::Latest).await? {
                Some((latest, _)) => latest,
                None => return Ok(()),
            },
        };
        shard.move_internal_log_start(tp, new_start).await?;
        shard.metrics().offsets_cleanings.add(1);
        self.cleaning.borrow_mut().kept(tp.partition.0, kept);
        tracing::info!(
            partition = %tp,
            records_kept = kept,
            records_dropped = new_start.0.saturating_sub(old_start),
            log_start = new_start.0,
            "cleaned the offsets log"
        );
        Ok(())
    }

    /// The records that hold what offsets partition `tp` holds now: each committed offset of
    /// its groups (with its original commit time), then each membership record.
    fn live_records(&self, tp: &TopicPartition) -> Vec<Record> {
        let offsets = self.offsets.borrow();
        let mut records: Vec<Record> = offsets
            .group_ids()
            .filter(|group| self.offsets_tp(group) == *tp)
            .flat_map(|group| {
                offsets.group(group).into_iter().flat_map(move |stored| {
                    stored.iter().map(move |(committed_tp, s)| {
                        let committed = &s.committed;
                        offset_record(
                            group,
                            committed_tp,
                            Some(committed),
                            committed.commit_timestamp_ms,
                        )
                    })
                })
            })
            .collect();
        let membership = self.membership.borrow();
        let groups = membership
            .stored
            .iter()
            .filter(|(group, _)| self.offsets_tp(group) == *tp);
        records.extend(groups.map(|(group, value)| membership_record(group, Some(value.clone()))));
        records
    }
}
