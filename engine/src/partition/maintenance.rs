//! A partition's background work, run from the shard's background queue: the `interval:MS`
//! fsync timer, retention, compaction passes and producer snapshots.

use std::time::{Duration, Instant};

use spindle_log::{Cleanable, CompactionOutcome};

use super::producer::encode_snapshot;
use super::Partition;
use crate::{CleanupPolicy, FsyncPolicy, Result, TopicConfig};

/// A compacted topic's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Compaction {
    pub(super) policy: CleanupPolicy,
    delete_retention_ms: u64,
    min_cleanable_dirty_ppm: u32,
    min_lag_ms: u64,
    max_lag_ms: u64,
}

impl Compaction {
    pub(super) fn of(config: &TopicConfig) -> Option<Compaction> {
        config.cleanup_policy.compacts().then_some(Compaction {
            policy: config.cleanup_policy,
            delete_retention_ms: config.delete_retention_ms,
            min_cleanable_dirty_ppm: config.min_cleanable_dirty_ppm,
            min_lag_ms: config.min_compaction_lag_ms,
            max_lag_ms: config.max_compaction_lag_ms,
        })
    }

    /// Whether a pass is due at `now_ms`: some sealed bytes were written since the last one,
    /// and they are at least the topic's `min.cleanable.dirty.ratio` of all sealed bytes, or
    /// the oldest of them waited `max.compaction.lag.ms`.
    pub(super) fn due(self, cleanable: Cleanable, now_ms: i64) -> bool {
        let Cleanable {
            dirty_bytes,
            sealed_bytes,
            oldest_dirty_timestamp,
        } = cleanable;
        let by_ratio = u128::from(dirty_bytes) * 1_000_000
            >= u128::from(sealed_bytes) * u128::from(self.min_cleanable_dirty_ppm);
        // Kafka's default, `i64::MAX`, never forces a pass; a segment without timestamps
        // (`i64::MIN`) says nothing of its age.
        let by_lag = self.max_lag_ms < i64::MAX as u64
            && oldest_dirty_timestamp.is_some_and(|ts| {
                ts != i64::MIN && i128::from(now_ms) - i128::from(ts) >= i128::from(self.max_lag_ms)
            });
        dirty_bytes > 0 && (by_ratio || by_lag)
    }
}

impl Partition {
    /// The `interval:MS` period, if the partition has one.
    pub(crate) fn fsync_interval(&self) -> Option<Duration> {
        match self.log.config().fsync {
            FsyncPolicy::IntervalMs(ms) => Some(Duration::from_millis(ms)),
            FsyncPolicy::Batch | FsyncPolicy::Never => None,
        }
    }

    /// Syncs the log if its `interval:MS` period has passed and something was written since.
    ///
    /// # Errors
    /// The sync's I/O error.
    pub(crate) async fn sync_if_due(&self, now: Instant) -> Result<()> {
        let Some(interval) = self.fsync_interval() else {
            return Ok(());
        };
        let written = self.log.high_watermark();
        if written == self.synced_to.get() || now < self.last_sync_at.get() + interval {
            return Ok(());
        }
        self.log.sync().await?;
        self.last_sync_at.set(now);
        self.synced_to.set(written);
        Ok(())
    }

    /// Rolls and deletes old segments by the topic's retention settings.
    ///
    /// # Errors
    /// I/O.
    pub(crate) async fn enforce_retention(&self) -> Result<()> {
        let outcome = self.log.enforce_retention().await?;
        self.txns.borrow_mut().forget_below(self.log.start_offset());
        if outcome.segments_deleted > 0 {
            tracing::info!(
                partition = %self.tp,
                segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted,
                "retention deleted segments"
            );
        }
        Ok(())
    }

    /// Runs a compaction pass if the topic is compacted and one is due; returns what it did.
    ///
    /// # Errors
    /// I/O, or a sealed batch that no longer checks.
    pub(crate) async fn compact_if_due(&self) -> Result<Option<CompactionOutcome>> {
        let Some(compaction) = self.compaction.get() else {
            return Ok(None);
        };
        if !compaction.due(self.log.cleanable(), self.clock.now_ms()) {
            return Ok(None);
        }
        let outcome = self
            .log
            .compact_transactions(
                compaction.delete_retention_ms,
                compaction.min_lag_ms,
                &|producer_id, base| self.txns.borrow().fate(producer_id, base),
            )
            .await?;
        if outcome.segments_rewritten > 0 {
            tracing::info!(
                partition = %self.tp,
                segments = outcome.segments_rewritten,
                merged = outcome.segments_merged,
                records_removed = outcome.records_removed,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                "compaction rewrote segments"
            );
        }
        Ok(Some(outcome))
    }

    /// Saves the producer table as a snapshot of the log if the log rolled since the last one,
    /// so that a restart after a crash finds one within the sealed segments recovery may replay
    /// (see `spindle_log::limits::SNAPSHOT_REPLAY_BYTES_MAX`) and reads no further to know every
    /// producer. The shard calls it every `SNAPSHOT_CHECK_INTERVAL`.
    ///
    /// # Errors
    /// I/O.
    pub(crate) async fn snapshot_producers_if_rolled(&self) -> Result<()> {
        let rolled = self
            .snapshot_at
            .get()
            .is_none_or(|at| at < self.log.active_segment_base());
        if rolled {
            self.snapshot_producers().await?;
        }
        Ok(())
    }

    /// Saves the producer table as it is at the high watermark (what was appended but not yet
    /// written left out) as the log's producer snapshot. Nothing is saved for a partition that
    /// has never seen an idempotent producer.
    pub(super) async fn snapshot_producers(&self) -> Result<()> {
        let end = self.log.high_watermark();
        if self.snapshot_at.get() == Some(end) {
            return Ok(());
        }
        let body = {
            let producers = self.producers.borrow();
            if producers.len() == 0 && self.snapshot_at.get().is_none() {
                return Ok(());
            }
            encode_snapshot(&producers, &mut self.txns.borrow_mut(), end)
        };
        self.log.save_producer_snapshot(end, &body).await?;
        self.snapshot_at.set(Some(end));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_due_by_dirty_ratio_or_by_the_maximum_lag() {
        let mut config = TopicConfig::default();
        config.set("cleanup.policy", "compact").expect("valid");
        config.set("max.compaction.lag.ms", "60000").expect("valid");
        let compaction = Compaction::of(&config).expect("compacted");
        let cleanable = |dirty_bytes, oldest| Cleanable {
            dirty_bytes,
            sealed_bytes: 1000,
            oldest_dirty_timestamp: oldest,
        };
        // Half the sealed bytes dirty meets the default ratio of 0.5.
        assert!(compaction.due(cleanable(500, Some(0)), 1_000));
        assert!(!compaction.due(cleanable(100, Some(0)), 59_999));
        assert!(
            compaction.due(cleanable(100, Some(0)), 60_000),
            "waited the maximum lag"
        );
        assert!(
            !compaction.due(cleanable(0, None), i64::MAX),
            "nothing dirty"
        );
        config
            .set("max.compaction.lag.ms", "9223372036854775807")
            .expect("valid");
        let never = Compaction::of(&config).expect("compacted");
        assert!(
            !never.due(cleanable(100, Some(i64::MIN)), i64::MAX),
            "no overflow"
        );
    }
}
